"""Packets: decoding raw bytes and captures into :class:`Packet` values, and connection tracking.

``recentd.packets.factory`` (building packets and capture files for tests and
benchmarks) is deliberately not re-exported: nothing in production needs it.

Names are imported on first use (PEP 562): a module that needs only :class:`Packet` (the
rule extensions, so ``recentd rules check``) does not load captures and conntrack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    **dict.fromkeys(("CapturedPacket", "capture_packet_count", "read_capture"), "capture"),
    **dict.fromkeys(("ConnTracker", "CtDir", "CtResult", "CtState", "Pending", "TcpState",
                     "Timeouts"), "conntrack"),
    "decode_ip": "decode",
    **dict.fromkeys(("ABSENT", "Family", "Packet", "ip_of"), "packet"),
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'recentd.packets' has no attribute {name!r}")
    return getattr(importlib.import_module(f"recentd.packets.{home}"), name)
