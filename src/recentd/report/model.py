"""What a report shows, as values both replays fill (pure: no clock, no plotting).

The timeline is kept per source and per second while a replay runs (a day of traffic is
at most 86 400 seconds per source, and few sources are busy), and cut into
``buckets`` equal steps at :meth:`TimelineBuilder.build`, for the ``top`` sources by
attempts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SourceTimeline:
    """One source's counts per step: attempts, drops, and bans (0 or 1 per step)."""

    source: str
    attempts: tuple[int, ...]
    drops: tuple[int, ...]
    bans: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Timeline:
    """Steps of ``step_s`` seconds from ``start_ns`` (epoch ns), one row per top source."""

    start_ns: int
    step_s: float
    sources: tuple[SourceTimeline, ...]


@dataclass(frozen=True, slots=True)
class RuleCounter:
    """A rule and what it matched (``where``: ``"filter SSH_CHECK #3"``, or a log route)."""

    where: str
    rule: str
    packets: int
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class BanRow:
    """Who was banned (or dropped), from when until when (epoch ns; None: still), and why."""

    who: str
    when_ns: int
    until_ns: int | None
    why: str


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report shows.

    Attributes:
        title: the page's heading ("recentd replay attack.pcap").
        subject: one line under it (the rules file, the totals).
        timeline: attempts, drops and bans over time for the top sources.
        attempts_per_source: every source's number of attempts (the distribution).
        rules: the rule counters (packets: iptables -L -v; logs: the routes).
        bans: the table of bans.
        notes: lines shown as they are (the summary a replay prints).
    """

    title: str
    subject: str
    timeline: Timeline
    attempts_per_source: tuple[int, ...]
    rules: tuple[RuleCounter, ...] = ()
    bans: tuple[BanRow, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class _Source:
    attempts: Counter[int] = field(default_factory=Counter)
    drops: Counter[int] = field(default_factory=Counter)
    bans: Counter[int] = field(default_factory=Counter)
    total: int = 0


@dataclass
class TimelineBuilder:
    """Gathers a replay's events; :meth:`build` gives the timeline and the distribution."""

    sources: dict[str, _Source] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int = 0

    def _source(self, source: str, ts_ns: int) -> _Source:
        if self.first_ns is None or ts_ns < self.first_ns:
            self.first_ns = ts_ns
        self.last_ns = max(self.last_ns, ts_ns)
        found = self.sources.get(source)
        if found is None:
            found = self.sources[source] = _Source()
        return found

    def attempt(self, source: str, ts_ns: int) -> None:
        entry = self._source(source, ts_ns)
        entry.attempts[ts_ns // NS] += 1
        entry.total += 1

    def drop(self, source: str, ts_ns: int) -> None:
        self._source(source, ts_ns).drops[ts_ns // NS] += 1

    def ban(self, source: str, ts_ns: int) -> None:
        self._source(source, ts_ns).bans[ts_ns // NS] += 1

    def build(self, top: int = 5, buckets: int = 60) -> tuple[Timeline, tuple[int, ...]]:
        """The ``top`` sources' timelines in ``buckets`` steps, and all sources' attempts."""
        start = (self.first_ns or 0) // NS
        span = max(1, self.last_ns // NS - start + 1)
        step = max(1, -(-span // buckets))  # whole seconds, ceiling
        count = -(-span // step)
        ranked = sorted(self.sources.items(), key=lambda item: (-item[1].total, item[0]))

        def cut(counts: Counter[int]) -> tuple[int, ...]:
            steps = [0] * count
            for second, n in counts.items():
                steps[min(count - 1, (second - start) // step)] += n
            return tuple(steps)

        rows = tuple(SourceTimeline(name, cut(s.attempts), cut(s.drops), cut(s.bans))
                     for name, s in ranked[:top])  # fmt: skip
        distribution = tuple(s.total for _, s in ranked if s.total)
        return Timeline(start * NS, float(step), rows), distribution
