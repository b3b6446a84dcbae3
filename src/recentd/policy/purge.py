"""Purge: entries idle longer than their list's ``purge_after`` are removed.

DenyHosts' ``PURGE_DENY``, and the seed's weekly cron flush done right: per list, and
only what has been quiet long enough. *Idle* is the time since the entry's last stamp
(``last_seen``): a packet rule's ``--set``/``--update``, a log line or a control write
all refresh it.

Pure: :func:`plan_purge` takes the tables, each list's limit in ticks and ``now``, and
returns the removals; the daemon carries them out on its timer (and withdraws a ban
whose entry went, as for any removal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recentd.recent.registry import RecentTables


@dataclass(frozen=True, slots=True)
class Purge:
    """Remove ``addr`` (``family``) from ``table``: idle for ``idle_ticks``."""

    table: str
    family: int
    addr: int
    idle_ticks: int


def plan_purge(tables: RecentTables, limits: Mapping[str, int], now: int) -> list[Purge]:
    """The entries of each list in ``limits`` (name → idle ticks allowed, > 0) idle for
    longer than their limit at ``now``, least recently refreshed first."""
    out: list[Purge] = []
    for name, limit in limits.items():
        table = tables.get(name)
        if table is None or limit <= 0:
            continue
        for entry in table:
            idle = now - entry.last_seen
            if idle > limit:
                out.append(Purge(name, entry.family, entry.addr, idle))
    return out


def carry_out(tables: RecentTables, purges: list[Purge]) -> list[Purge]:
    """Remove each planned entry; returns those that were still there."""
    done = []
    for purge in purges:
        table = tables.get(purge.table)
        if table is not None and table.remove(purge.family, purge.addr):
            done.append(purge)
    return done
