"""Fresh-source templates: the first packet of a source no table knows, decided once per
packet shape.

Theory of operation. A flood from ever new (spoofed) sources defeats remembered
decisions (:mod:`recentd.rules.memo`): every packet has a source never seen, and its
walk changes a table (the recipe's ``--set``), so nothing is remembered. But the walk
of such a packet does not depend on *which* new source it is, when

1. every `recent` match of the rule set keys its table by the source (``--rsource``,
   the default) and none reaps (``--reap`` looks at another entry), and no other part
   of the rules reads the source address (``-s``, ``iprange``, …): the source then
   enters the walk only as a key into the tables;
2. no table the rules name has an entry for the source (:meth:`Fresh.unknown`): every
   `recent` match answers as for an absent entry until the walk creates one, and on
   the entry it created (stamps of ``now`` only) as that entry dictates — the same
   answers for every such source, at every tick;
3. the walk went through nothing volatile and its decision carries nothing of the
   packet's own (no LOG event, no mark, not REJECT) — as for remembered decisions.

Then the walk is a function of the packet's *shape* — hook, ``local``, conntrack state
and the fields the rules read but the source (:attr:`Fresh.fields`) — and so are its
effects: the rules' counters it bumps, and, per table, an entry created at ``now``
with some stamps and the packet's TTL (or TTL + 1, on a hook with an output device),
the LRU head evicted first if the table was full (creating an entry evicts; the
entry, never moved before it, is then at the tail) — or created and removed again
(``--remove``), which leaves only the eviction. A :class:`Template` records that, learnt
from one walk (:meth:`Fresh.learn`), and :meth:`Template.apply` repeats it for any other
source of that shape that no table knows, without walking the rules; it is valid for the
rule set it was learnt under (``generation``).

It is exact, not a heuristic: ``tests/rules/test_evaluate_fresh.py`` runs random rule sets
over traffic from many sources, with and without templates, and requires the same
decisions, counters and tables. Its gain is a spoofed flood: a new source costs a
look-up per table and the table writes, not a walk through the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from recentd.packets.packet import Packet
from recentd.recent import RecentMatch, RecentTable, RecentTables, Side
from recentd.rules.memo import ip_reads
from recentd.rules.model import Ruleset

#: Templates kept per rule set; a full map starts afresh (a rule set has few shapes).
CAPACITY = 1 << 12


class Write(NamedTuple):
    """One table's share of a template (rule 2's effects).

    Attributes:
        table: the table.
        forwarded: the entry's TTL is the packet's + 1 (in 8 bits), not the packet's.
        stamps: the entry's stamps (all ``now``).
        kept: the entry stays (else the walk removed it again: only the eviction stays).
    """

    table: RecentTable
    forwarded: bool
    stamps: int
    kept: bool


class Template(NamedTuple):
    """What a walk did to the first packet of a source no table knows.

    Attributes:
        decision: the engine's (interned) decision.
        bumps: the counters (``[packets, bytes]``) the walk incremented.
        writes: per table it created an entry in, what it left there.
        generation: the engine's rule-set generation it was learnt under.
        accepts: whether the decision is ACCEPT.
    """

    decision: Any
    bumps: tuple[list[int], ...]
    writes: tuple[Write, ...]
    generation: int
    accepts: bool

    def apply(self, family: int, src: int, ttl: int, now: int, length: int) -> Any:
        """Repeat the walk's effects for a packet from ``src`` (which no table knows) of
        this template's shape, ``length`` bytes and TTL ``ttl``, at ``now``; its decision."""
        for counters in self.bumps:
            counters[0] += 1
            counters[1] += length
        for table, forwarded, stamps, kept in self.writes:
            if stamps == 1 and kept:  # the common entry: place's defaults (no keywords)
                table.place(family, src, (ttl + 1) & 0xFF if forwarded else ttl, now)
            else:
                table.place(family, src, (ttl + 1) & 0xFF if forwarded else ttl, now,
                            stamps=stamps, kept=kept)
        return self.decision


class Fresh:
    """A rule set's fresh-source templates, by shape key.

    Args:
        tables: every table the rule set's `recent` matches name.
        fields: indexes of the :class:`Packet` fields a shape is made of.
    """

    def __init__(self, tables: Sequence[RecentTable], fields: tuple[int, ...]) -> None:
        self.tables = tuple(tables)
        #: The shape fields' names (for raw-bytes keys: :mod:`recentd.rules.rawmemo`).
        self.fields = tuple(Packet._fields[index] for index in fields)
        self.shape: Callable[[Packet], object] = itemgetter(*fields)
        self._templates: dict[object, Template] = {}
        #: The template for a shape key, if any (``dict.get`` itself: per packet).
        self.get = self._templates.get
        #: Each table's IPv4 mask and entries (``RecentTable.index4``): :meth:`unknown`
        #: for IPv4, inline where it runs per packet.
        self.index4 = tuple(table.index4() for table in self.tables)

    @classmethod
    def of(cls, ruleset: Ruleset, specs: Sequence[RecentMatch], tables: RecentTables,
           key_fields: tuple[int, ...]) -> Fresh | None:
        """The templates of a rule set whose compiled `recent` matches are ``specs`` and
        whose remembered decisions are keyed by ``key_fields``, or None where rule 1 does
        not hold (or no `recent` match writes anything: remembered decisions suffice)."""
        if not specs or any(spec.side is not Side.SOURCE or spec.reap for spec in specs):
            return None
        if "src" in _other_reads(ruleset):
            return None
        found: dict[str, RecentTable] = {}
        for spec in specs:
            table = tables.get(spec.name)
            if table is None:  # pragma: no cover - every compiled match holds its table
                return None
            found[spec.name] = table
        src = Packet._fields.index("src")
        return cls(list(found.values()), tuple(index for index in key_fields if index != src))

    def unknown(self, family: int, src: int) -> bool:
        """Whether no table has an entry a packet from ``src`` would find (rule 2)."""
        if family == 4:
            return all(src & mask not in entries for mask, entries in self.index4)
        return not any(table.knows(family, src) for table in self.tables)

    def counts(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Each table's ``created`` and ``evictions`` counts (taken before a walk that
        may :meth:`learn`: see :meth:`writes`)."""
        tables = self.tables
        return tuple(table.created for table in tables), tuple(table.evictions for table in tables)

    def learn(self, key: object, template: Template) -> None:
        if len(self._templates) >= CAPACITY:
            self._templates.clear()
        self._templates[key] = template

    def writes(self, created: tuple[int, ...], evicted: tuple[int, ...], *, family: int,
               src: int, ttl: int, now: int) -> tuple[Write, ...] | None:
        """After a walk of a packet from ``src`` that no table knew, taken at ``now``
        with tables' ``created`` counts ``created`` and ``evictions`` ``evicted`` before
        it: what it left, as writes — or None when that is not what rule 2 says a walk
        leaves (then no template is learnt)."""
        writes: list[Write] = []
        for table, before, evictions_before in zip(self.tables, created, evicted, strict=True):
            made, evictions = table.created - before, table.evictions - evictions_before
            entry = table.entry_of(family, src)
            if not made:
                if evictions or entry is not None:  # pragma: no cover - rule 1 rules it out
                    return None
                continue
            if evictions > 1:  # pragma: no cover - one creation while full evicts once
                return None
            if entry is None:
                writes.append(Write(table, False, 0, False))
                continue
            entry_ttl, index, *stamps = entry
            if index != len(stamps) or len(stamps) > table.ring or \
                    any(stamp != now for stamp in stamps):  # pragma: no cover - rule 2
                return None
            if entry_ttl == ttl:
                forwarded = False
            elif entry_ttl == (ttl + 1) & 0xFF:
                forwarded = True
            else:  # pragma: no cover - a walk writes the packet's TTL or TTL + 1
                return None
            writes.append(Write(table, forwarded, len(stamps), True))
        return tuple(writes)


def _other_reads(ruleset: Ruleset) -> set[str]:
    """The packet fields read by the rule set's parts other than `recent` matches."""
    names: set[str] = set()
    for table in ruleset.tables:
        for chain in table.chains:
            for rule in chain.rules:
                names |= ip_reads(rule.ip)
                for match in rule.matches:
                    if match.ext.recent(match.spec) is None:
                        names |= match.ext.reads(match.spec) or frozenset()
                if rule.target.ext is not None:
                    names |= rule.target.ext.reads(rule.target.spec) or frozenset()
    return names
