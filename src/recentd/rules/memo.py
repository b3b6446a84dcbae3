"""Remembered decisions: a packet like one already decided gets the same decision.

Theory of operation. The engine is a function of the packet, its hook, its
conntrack state and the time, and of the state it keeps (`recent` tables, limit
buckets, counters). Most packets of a flood change none of that state: their
source is over its limit, an ``--rcheck`` drops them, nothing is written. The
decision for such a packet depends only on the fields of it that the rules read,
its conntrack state and hook, the tables as they are, and the time. So a
decision that

1. changed no table (the tables' shared version, bumped by every change to any
   entry, is the same after it as before),
2. went through nothing *volatile* — an extension with state of its own or a
   clock (limit, hashlimit, CONNMARK, ``--reap``; see ``Extension.reads``), and
3. carries nothing of the packet's own (no LOG event, no mark, not REJECT: the
   engine's interned decisions),

is remembered under its key — hook, ``local``, conntrack state and the fields the
rules read (:func:`key_fields`) — with the tables' version and the ticks over
which it holds: from its ``now`` up to the first tick at which a `recent` match
it went through would answer otherwise (``RecentTable.stable_until``). Time only
takes stamps out of windows, so before that tick every match answers as it did.
A later packet with the same key, while the version is unchanged and its time
in that span, gets the same decision and the same counter increments without
walking the rules.

It is exact, not a heuristic: ``tests/rules/test_memo.py`` runs random rule sets
over random traffic with and without it and requires the same decisions,
counters and tables. Its gain is where floods are: one source over its limit
costs one dictionary look-up per packet instead of a walk through the rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

from recentd.packets.packet import Packet
from recentd.rules.extensions.base import PacketState
from recentd.rules.model import Ruleset

#: At most this many decisions are remembered; a full memo starts afresh (a flood of
#: ever new sources gains nothing from it, and must not grow it without bound).
CAPACITY = 1 << 16

#: Fields every key holds: the family picks the chains, and a packet's mark ends up
#: in its decision.
_ALWAYS = ("family", "mark")


class Remembered(NamedTuple):
    """One remembered decision: the record every user of remembered decisions reads
    (the engine, the raw-bytes map, replay's columns), with its one validity check.

    Attributes:
        decision: what the engine returned.
        bumps: the counters (``[packets, bytes]`` lists) the walk incremented: rules
            that matched, built-in chains whose policy applied.
        since, until: the ticks (inclusive) over which it holds.
        version: the tables' version it holds for.
        accepts: whether the decision is ACCEPT (read per packet by replay's fast path:
            cheaper than the decision's verdict).
    """

    decision: Any
    bumps: tuple[list[int], ...]
    since: int
    until: float
    version: int
    accepts: bool

    def holds(self, version: int, now: int) -> bool:
        """Whether it is still the decision: the tables are at ``version`` (nothing
        changed since) and tick ``now`` lies within its span.

        Copies: inline in ``Engine.evaluate`` and ``Engine.reuse`` (measured there), and
        in numpy form in replay's columns planner; ``tests/rules/test_memo.py`` and
        ``tests/live/test_rawmemo.py`` hold them to walking the rules."""
        return self.version == version and self.since <= now <= self.until

    def bump(self, length: int, packets: int = 1) -> None:
        """Count ``packets`` packets of ``length`` bytes in all into the counters the
        decision went through, as walking the rules would have."""
        for counters in self.bumps:
            counters[0] += packets
            counters[1] += length


def key_fields(ruleset: Ruleset) -> tuple[int, ...]:
    """Indexes of the :class:`Packet` fields the rule set's pure parts read.

    Parts that are not pure (``reads()`` is None) are left out: a decision that
    went through one is never remembered, so its key need not hold what it read.
    """
    names: set[str] = set(_ALWAYS)
    for table in ruleset.tables:
        for chain in table.chains:
            for rule in chain.rules:
                names |= ip_reads(rule.ip)
                for match in rule.matches:
                    names |= match.ext.reads(match.spec) or frozenset()
                if rule.target.ext is not None:
                    names |= rule.target.ext.reads(rule.target.spec) or frozenset()
    return tuple(sorted(Packet._fields.index(name) for name in names))


def ip_reads(ip: Any) -> set[str]:
    """The packet fields a rule's IP part reads."""
    reads = {name for name, used in (("src", ip.src is not None), ("dst", ip.dst is not None),
                                     ("iif", bool(ip.iif)), ("oif", bool(ip.oif)),
                                     ("proto", bool(ip.proto))) if used}
    if ip.fragment is not None:
        reads.add("frag_offset")
    return reads


def key_getter(fields: tuple[int, ...]) -> Callable[[Packet], object]:
    """The key part taken from a packet: its ``fields``, as one C-level call."""
    return itemgetter(*fields)


def until_of(state: PacketState, now: int) -> float:
    """The last tick at which every `recent` match the packet went through answers
    as it did at ``now`` (``inf``: for ever)."""
    until = math.inf
    for stable_until, spec, family, addr, ttl in state.reads:
        until = min(until, stable_until(spec, family, addr, ttl, now))
    return until
