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
span) is the record's own check (:meth:`~recentd.rules.memo.Remembered.holds`, through
:meth:`~recentd.rules.Engine.reuse`), made at every use.

Only packets of the fixed layout are keyed (:mod:`recentd.packets.layout`:
option-less, unfragmented IPv4 carrying TCP or UDP, at least 40 bytes captured) — a
SYN flood's packets. Every other packet takes the ordinary path.

A second map does the same for the engine's fresh-source templates
(:mod:`recentd.rules.fresh`), keyed alike under :attr:`RawMemo.fresh_mask` — the bytes of
the template's shape fields, so not the source address's: a template found there holds
for a packet whose source no table knows (:meth:`~recentd.rules.fresh.Fresh.unknown`,
checked at every use, as its ``generation``).
"""

from __future__ import annotations

from collections.abc import Mapping

from recentd.packets.layout import CHECKED_BYTES, FIELD_BYTES, HEAD_BYTES
from recentd.packets.packet import Packet
from recentd.rules.evaluate import Engine
from recentd.rules.fresh import Template
from recentd.rules.memo import Remembered
from recentd.rules.model import Hook

#: Capacity: a full map starts afresh (ever new sources gain nothing from it).
CAPACITY = 1 << 16


def byte_mask(fields: tuple[str, ...]) -> int:
    """The mask, over the first :data:`~recentd.packets.layout.HEAD_BYTES` bytes read as
    one big-endian integer, of the bytes a key keeps for rules that read ``fields``."""
    mask = 0
    spans = [*CHECKED_BYTES, *(FIELD_BYTES[name] for name in fields if name in FIELD_BYTES)]
    for first, end in spans:
        for index in range(first, end):
            mask |= 0xFF << ((HEAD_BYTES - 1 - index) * 8)
    return mask


class RawMemo:
    """Raw-bytes keys → the engine's remembered decisions.

    A key is the caller's: a tuple of what it knows of the packet besides its bytes,
    its captured length and the first :data:`~recentd.packets.layout.HEAD_BYTES` header
    bytes under :attr:`mask` (as an integer, or as bytes under :attr:`mask_bytes`).

    Args:
        engine: the rule engine whose remembered decisions are found here.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._fields: tuple[str, ...] = ()
        self.mask = 0
        self.mask_bytes = bytes(HEAD_BYTES)
        self._found: dict[object, Remembered] = {}
        #: The remembered decision for a key, if any (``dict.get`` itself: per packet).
        self.get = self._found.get
        self._fresh: object = None
        #: The mask of fresh-source keys (None: the engine's rules allow no templates).
        self.fresh_mask: int | None = None
        self.fresh_mask_bytes = bytes(HEAD_BYTES)
        self.fresh_index4: tuple[tuple[int, Mapping[int, list[int]]], ...] = ()
        self._templates: dict[object, Template] = {}
        #: The template for a fresh-source key, if any (``dict.get`` itself).
        self.get_template = self._templates.get
        self.sync()

    def sync(self) -> None:
        """Follow the engine's rules: new rules may read other fields (call per batch)."""
        if self.engine.memo_fields is not self._fields:
            self._fields = self.engine.memo_fields
            self.mask = byte_mask(self._fields)
            self.mask_bytes = self.mask.to_bytes(HEAD_BYTES, "big")
            self._found.clear()
        fresh = self.engine.fresh
        if fresh is not self._fresh:
            self._fresh = fresh
            self._templates.clear()
            self.fresh_mask = None if fresh is None else byte_mask(fresh.fields)
            self.fresh_mask_bytes = (self.fresh_mask or 0).to_bytes(HEAD_BYTES, "big")
            #: the tables' IPv4 masks and entries (``Fresh.index4``)
            self.fresh_index4 = () if fresh is None else fresh.index4

    def remember(self, key: object, packet: Packet, hook: Hook, ctstate: int) -> None:
        """After the engine decided ``packet`` (whose bytes have the fixed layout:
        :func:`~recentd.packets.layout.is_fixed`): keep what it remembered, if anything."""
        remembered = self.engine.recall(packet, hook, ctstate)
        if remembered is None:
            return
        if len(self._found) >= CAPACITY:
            self._found.clear()
        self._found[key] = remembered

    def remember_fresh(self, key: object, packet: Packet, hook: Hook, ctstate: int) -> None:
        """After the engine decided ``packet`` (fixed layout): keep the template of its
        shape, if the engine has one."""
        template = self.engine.recall_fresh(packet, hook, ctstate)
        if template is None:
            return
        if len(self._templates) >= CAPACITY:
            self._templates.clear()
        self._templates[key] = template

    def __len__(self) -> int:
        return len(self._found)

