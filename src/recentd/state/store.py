"""Durable table state: a snapshot plus an append-only journal, in one directory.

Files in the state directory (default ``/var/lib/recentd``)::

    snapshot       every table at one moment; its header names generation G
    journal.G      changes since that snapshot, one record per record() call

Theory of operation:

1. ``restore`` loads ``snapshot`` (generation G, or 0 if there is none) and then
   replays ``journal.G``. A torn last journal record (a crash mid-append) is
   ignored and cut off; any other damage, or a file of another format version,
   raises :class:`StateFileError` naming the file and versions, and leaves every
   file as it was (a good journal is never thrown away behind the user's back).
2. ``record`` appends the changes since the last call, read from the store's own
   subscription to each table's change feed (:meth:`RecentTable.subscribe`: other
   consumers read the same feed without taking changes from the store; a subscription
   that fell too far behind gets its table written whole); ``sync`` makes everything
   recorded durable (fsync). A control write is acknowledged only after both.
3. ``compact`` writes a new snapshot (generation G+1) to a temporary file,
   fsyncs it, renames it over ``snapshot``, starts ``journal.G+1`` and only then
   removes ``journal.G``. A crash at any point leaves a snapshot and the journal
   that goes with it; a leftover older journal is removed on the next restore.
   ``record`` compacts by itself once the journal outgrows ``compact_bytes``.

The store never reads a clock: every call is given the wall-clock time (ns) and
the daemon's tick, which is what lets a restore after a reboot recompute every
stamp against the new monotonic clock (see :mod:`recentd.state.codec`).

Usage by the daemon::

    store = StateStore(Path("/var/lib/recentd"))
    now = clock.read()                                  # recentd.clock: both clocks at once
    store.restore(tables, now.tick, now.wall_ns)        # after the rules made the tables
    ...
    store.record(tables, now.wall_ns, now.tick)         # periodically, and on writes
    store.sync()                                        # before acknowledging a write
    store.close()
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from recentd import defaults
from recentd.clock import ClockReading
from recentd.errors import StateFileError
from recentd.metrics.tally import Histogram
from recentd.recent import RecentTable, RecentTables, Subscription
from recentd.state.codec import (
    ApplyReport,
    apply_payload,
    changes_body,
    entry_rows,
    payload,
)
from recentd.state.framing import MAGIC, frame, read_records

#: Version of the state format; another version is refused, never guessed at.
STATE_VERSION = 1
FORMAT_NAME = "recentd-state"
DEFAULT_STATE_DIR = defaults.STATE_DIR
SNAPSHOT = "snapshot"
#: Rows per snapshot record: bounded records keep memory flat on write and read.
_CHUNK = 5000


class StateStore:
    """The state directory of one daemon.

    Args:
        directory: where the files live; created (0700) if missing.
        compact_bytes: journal size past which :meth:`record` compacts.
    """

    def __init__(self, directory: Path, *, compact_bytes: int = 16 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.compact_bytes = compact_bytes
        self.generation = 0
        self._fd: int | None = None
        self._journal_bytes = 0
        self._records = 0
        self._tracked: dict[str, Subscription] = {}
        #: Journal records appended, and the fsyncs of :meth:`sync` (for metrics).
        self.writes = 0
        self.fsync_seconds = Histogram()

    # ---- restore ------------------------------------------------------------------

    def restore(self, tables: RecentTables, now_ticks: int, wall_ns: int) -> ApplyReport:
        """Load the saved state into ``tables`` and open the journal for appending.

        Call once, after the rules created the tables and before any ``record``.
        Entries of tables that no longer exist are dropped (reported in the result).

        Raises:
            StateFileError: a damaged file or another format version.
        """
        self._make_directory()
        now = ClockReading(wall_ns, now_ticks, tables.hz)
        report = ApplyReport()
        snapshot = self.directory / SNAPSHOT
        self.generation = self._load_snapshot(snapshot, tables, now, report)
        journal = self._journal_path(self.generation)
        end = self._replay_journal(journal, tables, now, report) if journal.exists() else None
        self._start_tracking(tables)
        self._open_journal(journal, end)
        self._remove_stale_journals()
        return report

    def _load_snapshot(
        self, path: Path, tables: RecentTables, now: ClockReading, report: ApplyReport
    ) -> int:
        if not path.exists():
            self._refuse_orphan_journals()
            return 0
        records = read_records(path)
        if records.torn_at is not None:
            raise StateFileError(f"truncated at byte {records.torn_at}", path=path)
        header = _check_header(records.payloads, path, "snapshot")
        body = records.payloads[1:]
        if not body or body[-1] != {"end": True}:
            raise StateFileError("incomplete snapshot (no end record)", path=path)
        for record in body[:-1]:
            _apply(record, tables, now, report, path)
        return int(header["generation"])

    def _replay_journal(
        self, path: Path, tables: RecentTables, now: ClockReading, report: ApplyReport
    ) -> int:
        records = read_records(path)
        if not records.payloads:  # torn inside the header: nothing was ever recorded
            return -1
        _check_header(records.payloads, path, "journal", self.generation)
        for record in records.payloads[1:]:
            _apply(record, tables, now, report, path)
        self._records = len(records.payloads) - 1
        return records.end

    def _refuse_orphan_journals(self) -> None:
        orphans = [p.name for p in self._journals() if p.name != "journal.0"]
        if orphans:
            raise StateFileError(
                f"{orphans[0]} continues a snapshot that is missing; restore the "
                "snapshot or move the journal aside",
                path=self.directory / orphans[0],
            )

    def _start_tracking(self, tables: RecentTables) -> None:
        for subscription in self._tracked.values():
            subscription.close()
        self._tracked = {table.name: table.subscribe() for table in tables}

    # ---- record and sync ------------------------------------------------------------

    def record(self, tables: RecentTables, wall_ns: int, now_ticks: int) -> bool:
        """Append what changed since the last call; returns whether anything did.

        Not durable until :meth:`sync`. Compacts when the journal is large.
        """
        clock = ClockReading(wall_ns, now_ticks, tables.hz)
        bodies = self._drain(tables, now_ticks)
        if not bodies:
            return False
        self._append(frame(payload(clock, bodies)))
        self._records += 1
        self.writes += 1
        if self._journal_bytes > self.compact_bytes:
            self.compact(tables, wall_ns, now_ticks)
        return True

    def _drain(self, tables: RecentTables, tick: int) -> dict[str, dict[str, Any]]:
        bodies: dict[str, dict[str, Any]] = {}
        for name in set(self._tracked) - set(tables.names()):
            bodies[name] = {"f": 1}  # the table went with its last rule
            self._tracked.pop(name).close()
        for table in tables:
            subscription = self._tracked.get(table.name)
            if subscription is None or subscription.table is not table:
                # A table new since the last record (or re-created): write it whole.
                if subscription is not None:
                    subscription.close()
                self._tracked[table.name] = table.subscribe()
                bodies[table.name] = {"f": 1, "u": entry_rows(table, tick)}
                continue
            changes = subscription.read()
            if changes.resync:  # fell too far behind: the table whole is smaller anyway
                bodies[table.name] = {"f": 1, "u": entry_rows(table, tick)}
                continue
            body = changes_body(changes, tick)
            if body:
                bodies[table.name] = body
        return bodies

    def sync(self) -> None:
        """Make every recorded change durable (fsync)."""
        fd = self._journal_fd()
        started = time.perf_counter()
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._io_error("cannot sync", exc) from exc
        self.fsync_seconds.observe(time.perf_counter() - started)

    # ---- compaction ----------------------------------------------------------------

    def compact(self, tables: RecentTables, wall_ns: int, now_ticks: int) -> None:
        """Replace snapshot and journal by a snapshot of ``tables`` as they are now."""
        self._journal_fd()
        self._start_tracking(tables)  # the snapshot covers every pending change
        generation = self.generation + 1
        self._write_snapshot(tables, ClockReading(wall_ns, now_ticks, tables.hz), generation)
        old = self._journal_path(self.generation)
        self._close_journal()
        self.generation = generation
        self._records = 0
        self._open_journal(self._journal_path(generation), None)
        with contextlib.suppress(FileNotFoundError):
            old.unlink()

    def _write_snapshot(self, tables: RecentTables, clock: ClockReading, generation: int) -> None:
        path = self.directory / SNAPSHOT
        temporary = path.with_name(SNAPSHOT + ".tmp")
        try:
            with temporary.open("wb") as out:
                out.write(MAGIC + frame(_header("snapshot", generation)))
                for table in tables:
                    _write_table(out, table, clock)
                out.write(frame({"end": True}))
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(path)
            self._sync_directory()
        except OSError as exc:
            raise self._io_error("cannot write the snapshot", exc) from exc

    # ---- status and closing ----------------------------------------------------------

    def status(self) -> dict[str, int | str]:
        """Figures for ``recentd ctl status``."""
        return {
            "state_dir": str(self.directory),
            "generation": self.generation,
            "journal_bytes": self._journal_bytes,
            "journal_records": self._records,
        }

    def close(self) -> None:
        """Sync and close the journal (the daemon calls this on a clean shutdown)."""
        if self._fd is not None:
            self.sync()
        self._close_journal()
        for subscription in self._tracked.values():
            subscription.close()
        self._tracked = {}

    # ---- files -----------------------------------------------------------------------

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._io_error("cannot create the state directory", exc) from exc

    def _journal_path(self, generation: int) -> Path:
        return self.directory / f"journal.{generation}"

    def _journals(self) -> list[Path]:
        return sorted(self.directory.glob("journal.*"))

    def _remove_stale_journals(self) -> None:
        """Journals an interrupted compaction left behind, and its unfinished snapshot."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / (SNAPSHOT + ".tmp")).unlink()
        current = self._journal_path(self.generation)
        for path in self._journals():
            if path != current and path.name.removeprefix("journal.").isdigit():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _open_journal(self, path: Path, end: int | None) -> None:
        """Open ``path`` for appending at ``end`` (cutting a torn tail), or create it."""
        try:
            if end is None or end < 0:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
                os.write(fd, MAGIC + frame(_header("journal", self.generation)))
                os.fsync(fd)
                self._sync_directory()
            else:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                os.truncate(fd, end)
            self._journal_bytes = os.fstat(fd).st_size
        except OSError as exc:
            raise self._io_error(f"cannot open {path.name}", exc) from exc
        self._fd = fd

    def _append(self, data: bytes) -> None:
        fd = self._journal_fd()
        try:
            os.write(fd, data)
        except OSError as exc:
            raise self._io_error("cannot append to the journal", exc) from exc
        self._journal_bytes += len(data)

    def _journal_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("the store is not open; call restore() first")
        return self._fd

    def _close_journal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _io_error(self, what: str, exc: OSError) -> StateFileError:
        return StateFileError(f"{what}: {exc.strerror or exc}", path=self.directory)


def _header(kind: str, generation: int) -> dict[str, Any]:
    return {"format": FORMAT_NAME, "version": STATE_VERSION, "kind": kind, "generation": generation}


def _check_header(
    payloads: list[dict[str, Any]], path: Path, kind: str, generation: int | None = None
) -> dict[str, Any]:
    header = payloads[0] if payloads else {}
    if header.get("format") != FORMAT_NAME:
        raise StateFileError("not a recentd state file (no header)", path=path)
    if header.get("version") != STATE_VERSION:
        raise StateFileError(
            f"state format version {header.get('version')!r}, this recentd reads "
            f"version {STATE_VERSION}",
            path=path,
            found=header.get("version"),
            expected=STATE_VERSION,
        )
    if header.get("kind") != kind or not isinstance(header.get("generation"), int):
        raise StateFileError(f"expected a {kind} header, found {header!r}", path=path)
    if generation is not None and header["generation"] != generation:
        raise StateFileError(
            f"journal of generation {header['generation']}, expected {generation}", path=path
        )
    return header


def _apply(
    record: dict[str, Any], tables: RecentTables, now: ClockReading, report: ApplyReport, path: Path
) -> None:
    try:
        apply_payload(record, tables, now, report)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFileError(f"malformed record: {exc!r}", path=path) from None


def _write_table(out: Any, table: RecentTable, clock: ClockReading) -> None:
    rows = entry_rows(table, clock.tick)
    first = True
    for start in range(0, max(len(rows), 1), _CHUNK):
        body: dict[str, Any] = {"u": rows[start : start + _CHUNK]}
        if first:
            body["f"] = 1
            first = False
        out.write(frame(payload(clock, {table.name: body})))
