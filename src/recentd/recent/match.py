"""A `-m recent` rule's options, as one immutable value, and the ring size it implies.

Theory of operation (spec §2): a rule names a table, picks the packet's source or
destination address (``side``), masks it with the *table's* mask, and then does
one of four things to the entry it finds:

- ``SET``: create or stamp the entry; always matches (``!`` never matches).
- ``CHECK`` (``--rcheck``): match if the entry satisfies ``--seconds``/``--hitcount``.
- ``UPDATE``: like CHECK, and stamp the entry when the (inverted) result is true.
- ``REMOVE``: delete the entry; match if it was there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from recentd.recent.params import MAX_NSTAMPS

#: The kernel's default mask: all 16 bytes of ``union nf_inet_addr`` set.
ALL_ONES_MASK = (1 << 128) - 1
#: Ring size when no rule asks for more (hitcount 0 → 32 slots, spec §1.6).
DEFAULT_RING = 32


class Command(Enum):
    """What a rule does to the table (exactly one per rule)."""

    SET = "SET"
    CHECK = "CHECK"
    UPDATE = "UPDATE"
    REMOVE = "REMOVE"

    @property
    def option(self) -> str:
        """The iptables option spelling (``--rcheck`` for CHECK)."""
        return "--rcheck" if self is Command.CHECK else f"--{self.value.lower()}"


class Side(Enum):
    """Which address of the IP header the rule records and looks up."""

    SOURCE = "source"
    DEST = "dest"


@dataclass(frozen=True, slots=True)
class RecentMatch:
    """One `-m recent` match, as iptables hands it to the kernel (xt_recent_mtinfo_v1).

    Attributes:
        command: one :class:`Command`.
        name: the table name (≤ 199 characters).
        seconds: window in seconds; 0 means "no time filter".
        hitcount: hits needed within the window; 0 means "none".
        rttl: the packet's TTL must equal the recorded one (``--rttl``).
        reap: drop one stale entry per matching packet (``--reap``).
        side: :class:`Side`.
        mask: the 16-byte address mask as a 128-bit integer, first byte most
            significant. An IPv4 address uses the top 32 bits.
        invert: ``!`` was given: the result is inverted and side effects follow it.
    """

    command: Command
    name: str = "DEFAULT"
    seconds: int = 0
    hitcount: int = 0
    rttl: bool = False
    reap: bool = False
    side: Side = Side.SOURCE
    mask: int = ALL_ONES_MASK
    invert: bool = False

    def ring_slots(self, ip_pkt_list_tot: int = 0) -> int:
        """How many stamps per entry this rule needs the table to keep (spec §1.6)."""
        return RecentMatch.ring_for(self.hitcount, ip_pkt_list_tot)

    @staticmethod
    def ring_for(hitcount: int, ip_pkt_list_tot: int = 0) -> int:
        """Ring size for a rule with this hitcount under this module parameter."""
        if ip_pkt_list_tot and hitcount < ip_pkt_list_tot:
            return _roundup_pow2(ip_pkt_list_tot)
        if hitcount:
            return min(_roundup_pow2(hitcount), MAX_NSTAMPS)
        return DEFAULT_RING


def _roundup_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def masks_by_family(mask: int) -> tuple[int, int]:
    """The (IPv4, IPv6) masks to apply to 32- and 128-bit addresses."""
    return mask >> 96, mask
