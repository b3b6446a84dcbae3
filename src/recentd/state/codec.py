"""Table contents as record payloads, with stamps stored as ages.

A stamp is a tick of the daemon's monotonic clock, which restarts at boot, so a
stamp alone means nothing after a reboot. Each record therefore carries the pair
(``wall_ns``, ``tick``) read when it was written, and each stamp is stored as its
age at that tick. Restoring at (``now_wall_ns``, ``now_ticks``)::

    elapsed   = ticks in (now_wall_ns - wall_ns), never negative
    new_stamp = now_ticks - (age + elapsed)

so an entry last seen 30 s before a shutdown that lasted 60 s is 90 s old after
the reboot, whatever the new clock's origin. Ages are rescaled if HZ changed. The
pair is a :class:`recentd.clock.ClockReading` and the re-basing is
:func:`recentd.clock.tick_of_wall`: one mapping between the clocks, for the whole project.

Payload of one record (a journal record, or a chunk of a snapshot)::

    {"wall_ns": W, "tick": T, "hz": H,
     "tables": {"SSH": {"f": 1,                          # flush first (optional)
                        "d": [[family, addr], ...],      # then delete (optional)
                        "u": [[family, addr, ttl, index, age0, age1, ...], ...]}}}

``u`` rows are in LRU order, oldest first, and are loaded in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recentd.recent import EntryView, RecentTables, TableChanges
from recentd.recent.ticks import ClockReading, tick_of_wall


def entry_rows(entries: Iterable[EntryView], tick: int) -> list[list[int]]:
    """Entries as ``u`` rows, stamps turned into ages at ``tick``."""
    return [
        [e.family, e.addr, e.ttl, e.index, *[tick - stamp for stamp in e.stamps]] for e in entries
    ]


def changes_body(changes: TableChanges, tick: int) -> dict[str, Any]:
    """One table's part of a journal record; empty when nothing changed."""
    body: dict[str, Any] = {}
    if changes.flushed:
        body["f"] = 1
    if changes.deleted:
        body["d"] = [list(pair) for pair in changes.deleted]
    if changes.updated:
        body["u"] = entry_rows(changes.updated, tick)
    return body


def payload(clock: ClockReading, tables: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {"wall_ns": clock.wall_ns, "tick": clock.tick, "hz": clock.hz, "tables": tables}


@dataclass
class ApplyReport:
    """What applying records did: entries loaded, and tables no rule holds any more
    (their records are dropped, as the kernel drops a table with its last rule)."""

    loaded: int = 0
    skipped_tables: set[str] = field(default_factory=set)


def apply_payload(
    record: dict[str, Any], tables: RecentTables, now: ClockReading, report: ApplyReport
) -> None:
    """Replay one record onto ``tables`` at ``now``.

    Raises:
        KeyError, TypeError, ValueError: a malformed record (the caller names the file).
    """
    shift = _shift(record, now)
    scale = (record["hz"], now.hz)
    for name, body in record["tables"].items():
        table = tables.get(name)
        if table is None:
            report.skipped_tables.add(name)
            continue
        if body.get("f"):
            table.flush()
        for family, addr in body.get("d", ()):
            table.remove(family, addr)
        for row in body.get("u", ()):
            table.load(_view(row, shift, scale))
            report.loaded += 1


def _shift(record: dict[str, Any], now: ClockReading) -> int:
    """``now_ticks - elapsed``: what an age is subtracted from (the record's own tick)."""
    return tick_of_wall(now, int(record["wall_ns"]))


def _view(row: list[int], shift: int, scale: tuple[int, int]) -> EntryView:
    family, addr, ttl, index, *ages = row
    old_hz, new_hz = scale
    if old_hz != new_hz:
        ages = [age * new_hz // old_hz for age in ages]
    stamps = tuple(shift - age for age in ages)
    if family not in (4, 6) or not stamps:
        raise ValueError(f"bad entry row {row[:4]}")
    return EntryView(family, addr, ttl, index, stamps, stamps[(index - 1) % len(stamps)])
