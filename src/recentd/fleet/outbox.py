"""The local outbox: this host's own fleet events, kept until Redis took them.

Rules of this module:

1. An event enters the outbox as one line (its text, :mod:`recentd.fleet.events`),
   written at once — from then on a crash of the process keeps it — and is fsynced
   before it is sent, once per batch (group commit: a burst of 1,000 bans costs one
   fsync, not 1,000) — from then on a power loss keeps it too; it leaves only after
   Redis acknowledged it: the file is emptied (without an fsync: see rule 2) when
   everything was acknowledged, rewritten (temporary file, fsync, rename) when more
   than :data:`COMPACT_AFTER` acknowledged lines pile up before it, and at close.
2. A crash before the file forgot an acknowledged event sends it again; the receivers'
   rules (a repeat changes nothing and costs nothing against the caps) make it harmless.
3. One writer: the publisher thread appends, takes and acknowledges (the daemon's loop
   hands it events through memory, so a ban never waits for a disk or for a lock
   held while the file is rewritten); the lock only guards against misuse.
4. A damaged line (a torn write at power loss: the last line without its newline, or
   a line that is not an event) is skipped and counted, never fatal.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TextIO

from recentd.errors import StateFileError
from recentd.fleet.events import FleetMessageError, decode

#: Acknowledged lines kept at the head of the file before it is rewritten.
COMPACT_AFTER = 20_000


class Outbox:
    """The file ``path`` of events (their texts, see :mod:`recentd.fleet.events`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        self._lock = threading.Lock()
        self._pending: list[str] = []
        #: Lines at the head of the file already acknowledged (not in ``_pending``).
        self._acknowledged = 0
        self._load()
        self._file = self._open_append()
        if self.skipped:  # a torn last line would swallow the next event appended
            self._rewrite()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateFileError(f"fleet outbox unreadable: {exc}", path=self.path) from exc
        lines = text.split("\n")
        if lines[-1]:  # the last line lost its newline: torn
            self.skipped += 1
        for line in lines[:-1]:
            try:
                decode("outbox", line)
            except FleetMessageError:
                self.skipped += 1
                continue
            self._pending.append(line)

    def _open_append(self) -> TextIO:
        try:
            return self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc

    def append(self, events: list[str]) -> None:
        """Keep ``events`` until :meth:`acknowledge` (written now, fsynced by :meth:`sync`)."""
        lines = "\n".join(events) + "\n"
        with self._lock:
            try:
                self._file.write(lines)
                self._file.flush()
            except OSError as exc:
                raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc
            self._pending.extend(events)

    def sync(self) -> None:
        """Make every event appended so far durable (rule 1)."""
        with self._lock:
            try:
                os.fsync(self._file.fileno())
            except OSError as exc:
                raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc

    def pending(self, limit: int = 1000) -> list[str]:
        """The oldest ``limit`` events not yet acknowledged, in order."""
        with self._lock:
            return self._pending[:limit]

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def acknowledge(self, count: int) -> None:
        """Forget the oldest ``count`` events: Redis holds them (rule 1)."""
        with self._lock:
            del self._pending[:count]
            self._acknowledged += count
            if not self._pending:
                self._truncate()
            elif self._acknowledged > COMPACT_AFTER:
                self._rewrite()

    def _truncate(self) -> None:
        # No fsync: lines a power loss brings back were acknowledged, and are sent again
        # harmlessly (rule 2); the next batch's fsync makes the new length durable.
        try:
            self._file.truncate(0)
            self._file.seek(0)
        except OSError as exc:
            raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc
        self._acknowledged = 0

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as out:
                out.writelines(line + "\n" for line in self._pending)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
            self._file.close()
            self._file = self._open_append()
        except OSError as exc:
            raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc
        self._acknowledged = 0

    def close(self) -> None:
        """Leave only the unacknowledged events in the file, and close it."""
        with self._lock:
            try:
                if self._acknowledged:
                    self._rewrite()
            finally:
                self._file.close()
