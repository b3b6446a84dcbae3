"""The fixed layout: option-less, unfragmented IPv4 carrying TCP or UDP, whose every
field lies at a fixed offset — a flood's packets, read without decoding.

Rules:

1. A packet (its bytes from the IP header on) is *fixed* exactly when at least
   :data:`MIN_BYTES` bytes are captured; the first byte is ``0x45`` (version 4, a
   20-byte header); no fragment bits are set (more-fragments, offset); the total
   length lies between 20 and the bytes captured; and it carries TCP whose data
   offset is at least 20 bytes and ends within the total length, or UDP with a total
   length of at least 28.
2. One definition, in two forms side by side: :func:`is_fixed` for one packet's
   bytes, :func:`fixed_rows` for a chunk of packets' header rows in numpy (which this
   module does not import: the rows bring their own methods, and the live daemon runs
   without numpy). ``tests/packets/test_layout.py`` holds the two forms to each other
   and to the decoder.
3. Who relies on it: the decoder's fast path takes exactly the fixed packets
   (``decode_ip``, which keeps an inline copy of the test: see there), the columnar
   reader marks exactly them (``columns``), and raw-bytes keys are made only for them
   (``rules.rawmemo``, ``live.verdict``).
4. Where a fixed packet's fields lie: :data:`FIELD_BYTES`; the bytes the test itself
   reads: :data:`CHECKED_BYTES`; both within the first :data:`HEAD_BYTES` bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["CHECKED_BYTES", "FIELD_BYTES", "HEAD_BYTES", "MIN_BYTES", "fixed_rows", "is_fixed"]

#: Bytes captured at least (the decoder's fast path reads this many in one unpack).
MIN_BYTES = 40
#: Header bytes a fixed packet is known by: the IPv4 header and the first 16 bytes of
#: TCP/UDP (where the rules read fields, and where the test below looks).
HEAD_BYTES = 36
#: Where each packet field lies, as ``(first, end)`` byte offsets (fields not listed
#: follow from the bytes checked, or are constants of the layout: family, length, ICMP
#: fields, fragment state).
FIELD_BYTES: Mapping[str, tuple[int, int]] = {
    "ttl": (8, 9), "src": (12, 16), "dst": (16, 20), "sport": (20, 22), "dport": (22, 24),
    "tcp_seq": (24, 28), "tcp_ack": (28, 32), "tcp_flags": (33, 34), "tcp_window": (34, 36),
}  # fmt: skip
#: The bytes the test reads, whatever the rules read: version and header length, total
#: length, fragment bits, protocol, TCP data offset.
CHECKED_BYTES: tuple[tuple[int, int], ...] = ((0, 1), (2, 4), (6, 8), (9, 10), (32, 33))

_V4_NO_OPTIONS = 0x45
_FRAGMENT_BITS_HIGH = 0x3F  # the high byte's share of MF and the offset (DF is free)


def is_fixed(payload: bytes | bytearray | memoryview) -> bool:
    """Whether ``payload`` (from the IP header on) has the fixed layout (rule 1)."""
    if len(payload) < MIN_BYTES or payload[0] != _V4_NO_OPTIONS:
        return False
    total = (payload[2] << 8) | payload[3]
    if payload[6] & _FRAGMENT_BITS_HIGH or payload[7] or not 20 <= total <= len(payload):
        return False
    if payload[9] == IPPROTO_TCP:
        header = (payload[32] >> 4) << 2
        return header >= 20 and 20 + header <= total
    return payload[9] == IPPROTO_UDP and total >= 28


def fixed_rows(rows: npt.NDArray[np.uint8], size: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """:func:`is_fixed` for many packets at once: ``rows`` holds each packet's first
    :data:`MIN_BYTES` bytes (junk where ``size``, the bytes captured, is smaller)."""
    total = (rows[:, 2].astype("int64") << 8) | rows[:, 3]
    proto = rows[:, 9]
    header = (rows[:, 32] >> 4).astype("int64") << 2
    fixed: npt.NDArray[np.bool_] = (size >= MIN_BYTES) & (rows[:, 0] == _V4_NO_OPTIONS)
    fixed &= ((rows[:, 6] & _FRAGMENT_BITS_HIGH) == 0) & (rows[:, 7] == 0)
    fixed &= (total >= 20) & (total <= size)
    tcp = (proto == IPPROTO_TCP) & (header >= 20) & (20 + header <= total)
    fixed &= tcp | ((proto == IPPROTO_UDP) & (total >= 28))
    return fixed
