"""Daemon-lifetime tallies: what outlives a reload, and the recent events ``top`` shows.

Pure: values in (commands, durations, ``now``), counts out; no clock is read here.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from recentd.commands import Ban, Command

#: Latency buckets in seconds (a libnftables transaction is ~0.2 ms; an fsync ~1-20 ms).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0)  # fmt: skip
#: How many ban/unban events ``recentd top`` can show.
EVENTS_KEPT = 200
#: Minutes of ban counts kept for the sparkline.
MINUTES_KEPT = 30


def origin_class(origin: str) -> str:
    """The origin's kind, without the file, line or address it names (a label value)."""
    return origin.split(" ", 1)[0] or "unknown"


@dataclass
class Histogram:
    """Cumulative-on-read latency histogram: ``counts[i]`` observations ≤ ``bounds[i]``
    (not cumulative as stored; the last slot is +Inf)."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as the exposition writes them, ``+Inf`` last."""
        running, out = 0, []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """A ban or unban carried out: for ``recentd top``'s tail."""

    wall_ns: int
    kind: str  # "ban" | "unban"
    address: str
    list: str
    origin: str
    reason: str
    expiry_wall_ns: int = 0


@dataclass
class Tally:
    """Counts the daemon keeps for its whole life (see the package rules)."""

    #: (kind, list, origin class) → commands carried out.
    commands: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (operation, outcome) → backend calls; outcome is "ok" or "error".
    backend_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    backend_seconds: dict[str, Histogram] = field(default_factory=dict)
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    #: minute (wall_ns // 60e9) → bans pushed in it, the last MINUTES_KEPT minutes.
    bans_per_minute: dict[int, int] = field(default_factory=dict)
    #: Login events from the PAM hook, by event ("open", "close").
    logins: Counter[str] = field(default_factory=Counter)

    def command(self, command: Command, table: str, wall_ns: int) -> None:
        """A command the backend carried out, at wall time ``wall_ns``."""
        self.commands_carried_out((command,), table, wall_ns)

    def commands_carried_out(self, commands: Sequence[Command], table: str,
                             wall_ns: int) -> None:  # fmt: skip
        """Commands one backend transaction carried out, at wall time ``wall_ns``: the
        same counts as one :meth:`command` each, added once per kind and origin class;
        only the last :data:`EVENTS_KEPT` become events (the older ones would leave the
        tail at once)."""
        counted: dict[tuple[str, str], int] = {}
        bans = 0
        for command in commands:
            kind = "ban" if type(command) is Ban else "unban"
            bans += kind == "ban"
            key = (kind, origin_class(command.origin))
            counted[key] = counted.get(key, 0) + 1
        for (kind, origin), count in counted.items():
            self.commands[kind, table, origin] += count
        if bans:
            minute = wall_ns // 60_000_000_000
            self.bans_per_minute[minute] = self.bans_per_minute.get(minute, 0) + bans
            for old in [m for m in self.bans_per_minute if m <= minute - MINUTES_KEPT]:
                del self.bans_per_minute[old]
        self.events.extend(
            Event(wall_ns, "ban", str(command.address), table, command.origin, command.reason,
                  command.expiry_wall_ns) if isinstance(command, Ban) else
            Event(wall_ns, "unban", str(command.address), table, command.origin,
                  command.reason)
            for command in commands[-EVENTS_KEPT:])  # fmt: skip

    def backend_call(self, operation: str, seconds: float, ok: bool) -> None:
        self.backend_calls[operation, "ok" if ok else "error"] += 1
        histogram = self.backend_seconds.get(operation)
        if histogram is None:
            histogram = self.backend_seconds[operation] = Histogram()
        histogram.observe(seconds)

    def sparkline(self, wall_ns: int, minutes: int = 15) -> list[int]:
        """Bans pushed in each of the last ``minutes`` minutes, oldest first."""
        now = wall_ns // 60_000_000_000
        return [self.bans_per_minute.get(m, 0) for m in range(now - minutes + 1, now + 1)]
