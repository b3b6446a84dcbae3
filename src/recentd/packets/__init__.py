"""Packets: decoding raw bytes and captures into :class:`Packet` values, and connection tracking.

``recentd.packets.factory`` (building packets and capture files for tests and
benchmarks) is deliberately not re-exported: nothing in production needs it.
"""

from recentd.packets.capture import CapturedPacket, capture_packet_count, read_capture
from recentd.packets.conntrack import (
    ConnTracker,
    CtDir,
    CtResult,
    CtState,
    Pending,
    TcpState,
    Timeouts,
)
from recentd.packets.decode import decode_ip
from recentd.packets.packet import ABSENT, Family, Packet, ip_of

__all__ = [
    "ABSENT",
    "CapturedPacket",
    "ConnTracker",
    "CtDir",
    "CtResult",
    "CtState",
    "Family",
    "Packet",
    "Pending",
    "TcpState",
    "Timeouts",
    "capture_packet_count",
    "decode_ip",
    "ip_of",
    "read_capture",
]
