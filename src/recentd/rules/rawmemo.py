"""Decisions found by a packet's raw header bytes: no decoding for a packet like one
decided before.

The engine remembers decisions by the fields its rules read (:mod:`recentd.rules.memo`).
Decoding a packet to get those fields costs more than the look-up itself, so the live
pipeline and replay keep a second map in front of the engine's: from a key made of
what the caller knows of the packet besides its bytes (queue, hook, interfaces, mark;
its conntrack state), its captured length, and its header bytes where the rules read
fields or the decoder makes its checks (:attr:`RawMemo.mask`), to the engine's
remembered entry. Equal keys mean equal decoded fields, so the entry is the one the
engine itself would find; whether it still holds (tables unchanged, time within its
span) is the engine's check (:meth:`~recentd.rules.Engine.reuse`), made at every use.

Only what the decoder reads at fixed offsets is keyed: option-less, unfragmented
IPv4 carrying TCP or UDP, at least 40 bytes captured (:func:`fixed_offsets`) — a SYN
flood's packets. Every other packet takes the ordinary path.
"""

from __future__ import annotations

from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, Packet
from recentd.rules.evaluate import Engine
from recentd.rules.memo import Remembered
from recentd.rules.model import Hook

#: Header bytes a key covers: the IPv4 header and the first 16 bytes of TCP/UDP.
KEYED = 36
#: Bytes the decoder's fast path checks whatever the rules read: version and header
#: length, total length, fragment bits, protocol, TCP data offset.
_ALWAYS = ((0, 1), (2, 4), (6, 8), (9, 10), (32, 33))
#: Where each packet field lies (fields with no bytes here follow from the ones above,
#: or are constants on this path: family, length, ICMP fields, fragment state).
_FIELD_BYTES = {"ttl": (8, 9), "src": (12, 16), "dst": (16, 20), "sport": (20, 22),
                "dport": (22, 24), "tcp_seq": (24, 28), "tcp_ack": (28, 32),
                "tcp_flags": (33, 34), "tcp_window": (34, 36)}
#: Capacity: a full map starts afresh (ever new sources gain nothing from it).
CAPACITY = 1 << 16


def byte_mask(fields: tuple[str, ...]) -> int:
    """The mask, over the first :data:`KEYED` bytes read as one big-endian integer,
    of the bytes a key keeps for rules that read ``fields``."""
    mask = 0
    spans = [*_ALWAYS, *(_FIELD_BYTES[name] for name in fields if name in _FIELD_BYTES)]
    for first, end in spans:
        for index in range(first, end):
            mask |= 0xFF << ((KEYED - 1 - index) * 8)
    return mask


class RawMemo:
    """Raw-bytes keys → the engine's remembered decisions.

    A key is the caller's: a tuple of what it knows of the packet besides its bytes,
    its captured length and the first :data:`KEYED` header bytes under
    :attr:`mask` (as an integer, or as bytes under :attr:`mask_bytes`).

    Args:
        engine: the rule engine whose remembered decisions are found here.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._fields: tuple[str, ...] = ()
        self.mask = 0
        self.mask_bytes = bytes(KEYED)
        self._found: dict[object, Remembered] = {}
        #: The remembered decision for a key, if any (``dict.get`` itself: per packet).
        self.get = self._found.get
        self.sync()

    def sync(self) -> None:
        """Follow the engine's rules: new rules may read other fields (call per batch)."""
        if self.engine.memo_fields is not self._fields:
            self._fields = self.engine.memo_fields
            self.mask = byte_mask(self._fields)
            self.mask_bytes = self.mask.to_bytes(KEYED, "big")
            self._found.clear()

    def remember(self, key: object, packet: Packet, hook: Hook, ctstate: int) -> None:
        """After the engine decided ``packet`` (whose bytes took the decoder's fixed
        offsets: :func:`fixed_offsets`): keep what it remembered, if anything."""
        remembered = self.engine.recall(packet, hook, ctstate)
        if remembered is None:
            return
        if len(self._found) >= CAPACITY:
            self._found.clear()
        self._found[key] = remembered

    def __len__(self) -> int:
        return len(self._found)


def fixed_offsets(payload: bytes | memoryview) -> bool:
    """Whether the decoder reads this packet at fixed offsets: option-less,
    unfragmented IPv4 TCP/UDP (its fast path's conditions, at least 40 bytes)."""
    if len(payload) < 40 or payload[0] != 0x45:
        return False
    total = int.from_bytes(payload[2:4], "big")
    if payload[6] & 0x3F or payload[7] or not 20 <= total <= len(payload):
        return False
    if payload[9] == IPPROTO_TCP:
        header = (payload[32] >> 4) << 2
        return header >= 20 and 20 + header <= total
    return payload[9] == IPPROTO_UDP and total >= 28
