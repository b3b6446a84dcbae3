"""The daemon's figures read in one place: for the control ``Stats`` reply (``recentd top``)
and for the Prometheus collector.

Rules:

1. Read only: nothing here changes the daemon. Containers the loop mutates are copied
   first (``list(d.values())``: one C-level copy, atomic under the GIL), because the
   HTTP exposition runs in prometheus-client's server thread.
2. Values out are plain JSON (``Stats`` travels over the control socket).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recentd.logs.observe import ObservingParser
from recentd.metrics.tally import origin_class
from recentd.recent.table import EntryView
from recentd.recent.ticks import ClockReading, ticks_to_ns

if TYPE_CHECKING:
    from recentd.daemon import Daemon, _Watched

#: Bans and near-threshold addresses sent to ``top`` at most (it shows a screen's worth).
MAX_ROWS = 500
HOOK_NAMES = ("prerouting", "input", "forward", "output", "postrouting")


@dataclass(frozen=True, slots=True)
class SourceFigures:
    """One source's counts (see :class:`~recentd.logs.observe.ObservingParser`)."""

    name: str
    lines: int
    matched: int
    unparsed: int
    observations: int
    lag_s: float
    state: str


def source_figures(watched: _Watched) -> SourceFigures:
    parser = getattr(watched.source, "parser", None)
    lines = matched = unparsed = 0
    if isinstance(parser, ObservingParser):
        lines, matched, unparsed = parser.lines_read, parser.lines_matched, parser.lines_unparsed
    status = watched.source.status()
    return SourceFigures(watched.spec.key, lines, matched, unparsed + status.skipped,
                         watched.observations, watched.lag_s, status.state.value)  # fmt: skip


def sources(daemon: Daemon) -> Iterator[SourceFigures]:
    for watched in list(daemon.sources):
        yield source_figures(watched)


def offloaded_list(daemon: Daemon) -> str:
    planner = daemon.planner
    return planner.case.name if planner is not None else ""


def bans(daemon: Daemon) -> list[Any]:
    """The bans in force (a copy)."""
    enforcer = daemon.enforcer
    return list(enforcer.active.values()) if enforcer is not None else []


def hits_within(entry: EntryView, now: int, seconds: int, hz: int) -> int:
    """Stamps of ``entry`` no older than ``seconds`` at tick ``now`` (as ``--seconds``)."""
    oldest = now - seconds * hz
    return sum(1 for stamp in entry.stamps if stamp >= oldest)


def near_threshold(daemon: Daemon, now: ClockReading) -> list[dict[str, Any]]:
    """Addresses of the offloaded list with at least half the rule's hits, not yet banned."""
    planner = daemon.planner
    if planner is None:
        return []
    case = planner.case
    table = daemon.tables.get(case.name)
    if table is None:
        return []
    banned = {(ban.family, int(ban.address)) for ban in bans(daemon)}
    rows: list[dict[str, Any]] = []
    for entry in list(table):
        if (entry.family, entry.addr) in banned:
            continue
        hits = hits_within(entry, now.tick, case.seconds, now.hz)
        if hits * 2 >= case.hitcount:
            address = ipaddress.ip_address(entry.addr) if entry.family == 4 else \
                ipaddress.IPv6Address(entry.addr)  # fmt: skip
            rows.append({"address": str(address), "list": case.name, "hits": hits,
                         "threshold": case.hitcount, "seconds": case.seconds})  # fmt: skip
    rows.sort(key=lambda row: -int(row["hits"]))
    return rows[:MAX_ROWS]


def counters(daemon: Daemon) -> dict[str, int | float]:
    c = daemon.pipeline.counters
    store = daemon.store
    return {
        "accepted": c.accepted, "dropped": c.dropped, "undecodable": c.undecodable,
        "remembered": c.remembered, "banned_drops": c.banned_drops,
        "observations": daemon.observations, "reloads": daemon.reloads,
        "bans_active": len(bans(daemon)),
        "journal_writes": store.writes if store is not None else 0,
        "stamps_replayed": daemon.stamps_read,
        "stamp_log_overflows": 0 if daemon.stamp_reader is None else daemon.stamp_reader.lost,
    }  # fmt: skip


def daemon_stats(daemon: Daemon, readable: Callable[[str], bool]) -> dict[str, Any]:
    """The fields of a :class:`~recentd.control.protocol.StatsReply`, at the daemon's clock."""
    now = daemon.clock.read()
    offloaded = offloaded_list(daemon)
    lists = [{"name": table.name, "entries": len(table), "evictions": table.evictions}
             for table in daemon.tables if readable(table.name)]  # fmt: skip
    ban_rows = []
    if offloaded and readable(offloaded):
        for ban in bans(daemon)[:MAX_ROWS]:
            ban_rows.append({"address": str(ban.address), "list": offloaded,
                             "expiry_wall_ns": ban.expiry_wall_ns, "origin": ban.origin,
                             "origin_class": origin_class(ban.origin),
                             "reason": ban.reason})  # fmt: skip
    events = [{"wall_ns": e.wall_ns, "kind": e.kind, "address": e.address, "list": e.list,
               "origin": e.origin, "reason": e.reason, "expiry_wall_ns": e.expiry_wall_ns}
              for e in list(daemon.tally.events) if readable(e.list)]  # fmt: skip
    health = dict(daemon.health)
    for figures in sources(daemon):
        health.setdefault(f"source {figures.name}", figures.state)
    return {
        "wall_ns": now.wall_ns,
        "counters": counters(daemon),
        "lists": lists,
        "bans": ban_rows,
        "near": [row for row in near_threshold(daemon, now) if readable(row["list"])],
        "events": events[-50:],
        "health": health,
        "sparkline": daemon.tally.sparkline(now.wall_ns),
    }


def expiry_in_s(expiry_wall_ns: int, wall_ns: int) -> float:
    return max(0.0, (expiry_wall_ns - wall_ns) / 1e9)


__all__ = ["HOOK_NAMES", "SourceFigures", "counters", "daemon_stats", "expiry_in_s",
           "hits_within", "near_threshold", "source_figures", "sources", "ticks_to_ns"]
