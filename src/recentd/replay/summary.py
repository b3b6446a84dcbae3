"""What a replay reports: each packet's fate (:class:`ReplayVerdict`) and the totals
(:class:`ReplaySummary`, per source in :class:`SourceStats`).

Rules: a summary counts every record once, whichever strategy decided it
(:mod:`recentd.replay.strategy`); sources are keyed by ``(family, address)`` as
integers and turned into text only when printed.

Bounded whatever the number of sources: the totals (packets, verdicts) are exact;
per-source counts are a Space-Saving heavy-hitters summary (Metwally et al., 2005)
with batched eviction. At most ``2 * capacity`` sources are kept; when that many
are, the ``capacity`` sources with the highest upper bounds stay and the others go,
the largest upper bound that went becoming the :attr:`ReplaySummary.floor`. A source
(re)admitted later carries ``missed = floor``: the most it can have sent before.
Hence, for every source ever seen:

* kept: ``packets <= true count <= packets + missed`` (``packets`` and ``dropped``
  count exactly from its admission on; ``missed == 0``: exact);
* not kept: true count ``<= floor``, so any source that sent more than the floor
  is kept — a source that sent more than its share is listed, and a source that
  kept ahead of the floor from its first packet on has ``missed == 0``, its counts exact.

Cost: a new source is a dictionary insertion; a compaction sorts ``2 * capacity``
records once per ``capacity`` new sources — O(log capacity) per new source,
whatever the number of sources (a flood of ever new sources costs the same at its
end as at its start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from recentd.packets.conntrack import CtState
from recentd.packets.packet import Packet, ip_of


class ReplayVerdict(NamedTuple):
    """The fate of one captured packet.

    Attributes:
        n: 1-based packet number in the capture.
        ts_ns: its timestamp.
        verdict: ``"ACCEPT"``, ``"DROP"`` or ``"REJECT"``.
        hook: the hook it traversed, or ``None`` when it traversed none.
        packet: the decoded packet (``None`` for undecodable records).
        ctstate: its connection-tracking state.
        note: why it was not evaluated, when it was not.
    """

    n: int
    ts_ns: int
    verdict: str
    hook: str | None
    packet: Packet | None
    ctstate: CtState | None = None
    note: str = ""

    def as_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "n": self.n,
            "ts": f"{self.ts_ns // 1_000_000_000}.{self.ts_ns % 1_000_000_000:09d}",
            "verdict": self.verdict,
            "hook": self.hook,
        }
        if self.packet is not None:
            record["src"] = str(ip_of(self.packet.family, self.packet.src))
            record["dst"] = str(ip_of(self.packet.family, self.packet.dst))
            record["proto"] = self.packet.proto
        if self.ctstate is not None and self.ctstate.name:
            record["ctstate"] = self.ctstate.name
        if self.note:
            record["note"] = self.note
        return record


#: Per-source counts are kept for the heaviest this many sources (up to twice as many
#: between compactions): about 1 MB, whatever the number of sources.
SOURCES_KEPT = 4096


@dataclass(slots=True)
class SourceStats:
    """One source's counts since it was (last) admitted to the summary. ``first_n``:
    its first counted packet's number (ties in rankings keep first-seen order);
    ``first_drop_n``/``first_drop_ns``: its first counted drop's; ``missed``: at most
    this many of its packets went before (0: its counts are exact)."""

    first_n: int
    packets: int = 0
    dropped: int = 0
    first_drop_ns: int | None = None
    first_drop_n: int | None = None
    missed: int = 0

    @property
    def upper(self) -> int:
        """The most packets this source can have sent."""
        return self.packets + self.missed


@dataclass
class ReplaySummary:
    """Totals of a replay, per source address and overall."""

    packets: int = 0
    evaluated: int = 0
    undecodable: int = 0
    #: packets decided from remembered decisions by their raw bytes (replay's fast path)
    remembered: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    #: per source, keyed by (family, address): turned into text only when printed; the
    #: heaviest ones only (see the module's rules). The dict object never changes.
    sources: dict[tuple[int, int], SourceStats] = field(default_factory=dict)
    #: sources are kept for the heaviest ``capacity`` (up to twice as many at times)
    capacity: int = SOURCES_KEPT
    #: no source that is not kept sent more packets than this
    floor: int = 0
    #: sources admitted, ever (distinct sources seen are at most this many, at least
    #: as many as are kept)
    admitted: int = 0

    def admit(self, source: tuple[int, int], n: int, packets: int = 0,
              first_drop: tuple[int, int] | None = None) -> SourceStats:
        """A source not kept yet: its new record (first counted packet ``n``), with
        ``packets`` counted already — all dropped, the first as ``first_drop`` (its
        number and time), or none."""
        sources = self.sources
        if len(sources) >= 2 * self.capacity:
            self._compact()
        if first_drop is None:
            stats = SourceStats(n, packets, 0, None, None, self.floor)
        else:
            stats = SourceStats(n, packets, packets, first_drop[1], first_drop[0], self.floor)
        sources[source] = stats
        self.admitted += 1
        return stats

    def admit_many(self, sources: list[tuple[int, int]], numbers: list[int],
                   counts: list[int], first_drops: list[int] | None) -> None:
        """:meth:`admit` for each of ``sources`` (none kept yet) in turn, the first packet
        of each numbered ``numbers``, ``counts`` packets counted — all dropped, the first
        at ``first_drops`` (ns), or none (None): the same records and compactions,
        created a compaction's worth at a time."""
        kept, start, total = self.sources, 0, len(sources)
        while start < total:
            room = 2 * self.capacity - len(kept)
            if room <= 0:
                self._compact()
                continue
            stop, floor = min(start + room, total), self.floor
            if first_drops is None:
                made = [SourceStats(n, count, 0, None, None, floor) for n, count
                        in zip(numbers[start:stop], counts[start:stop], strict=True)]
            else:
                made = [SourceStats(n, count, count, ts_ns, n, floor) for n, count, ts_ns
                        in zip(numbers[start:stop], counts[start:stop],
                               first_drops[start:stop], strict=True)]
            kept.update(zip(sources[start:stop], made, strict=True))
            self.admitted += stop - start
            start = stop

    def _compact(self) -> None:
        """Keep the ``capacity`` sources with the highest upper bounds (in place; ties
        in the order they were kept: a stable sort)."""
        items = list(self.sources.items())
        uppers = [-(stats.packets + stats.missed) for _, stats in items]  # SourceStats.upper
        order = sorted(range(len(items)), key=uppers.__getitem__)
        kept = [items[index] for index in order[:self.capacity]]
        if len(order) > self.capacity:
            self.floor = max(self.floor, -uppers[order[self.capacity]])
        self.sources.clear()
        self.sources.update(kept)

    def add(self, result: ReplayVerdict) -> None:
        self.packets += 1
        self.verdicts[result.verdict] = self.verdicts.get(result.verdict, 0) + 1
        packet = result.packet
        if packet is None:
            self.undecodable += 1
            return
        if result.hook is None:
            return
        self.evaluated += 1
        stats = self.sources.get((packet.family, packet.src))
        if stats is None:
            stats = self.admit((packet.family, packet.src), result.n)
        stats.packets += 1
        if result.verdict != "ACCEPT":
            stats.dropped += 1
            if stats.first_drop_ns is None:
                stats.first_drop_ns, stats.first_drop_n = result.ts_ns, result.n

    def by_source(self) -> list[tuple[str, SourceStats]]:
        """The kept sources as text, most dropped first."""
        ranked = sorted(self.sources.items(),
                        key=lambda item: (-item[1].dropped, -item[1].packets, item[1].first_n))
        return [(str(ip_of(family, addr)), stats) for (family, addr), stats in ranked]
