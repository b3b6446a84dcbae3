"""The local outbox: this host's own fleet events, kept until Redis took them.

Rules of this module:

1. An event enters the outbox (one JSON line, written at once: a crash of the process
   keeps it) and is fsynced before it is sent, once per batch (group commit: a burst of
   1,000 bans costs one fsync, not 1,000), so neither a Redis outage nor a restart of the
   host loses it; it leaves only after Redis acknowledged it (the file is then
   rewritten: temporary file, fsync, rename).
2. A crash between Redis's acknowledgement and the rewrite sends an event twice; the
   receivers' rules (latest expiry wins) make a repeat harmless.
3. Safe between two threads: the daemon's loop appends, the publisher takes and
   acknowledges.
4. A damaged line (a torn write at power loss) is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TextIO

from recentd.errors import StateFileError


class Outbox:
    """The file ``path`` of events (field mappings, see :mod:`recentd.fleet.events`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        self._lock = threading.Lock()
        self._pending: list[dict[str, str]] = []
        self._load()
        self._file = self._open_append()
        if self.skipped:  # a torn last line would swallow the next event appended
            self.acknowledge(0)

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateFileError(f"fleet outbox unreadable: {exc}", path=self.path) from exc
        for line in text.splitlines():
            try:
                fields = json.loads(line)
            except ValueError:
                self.skipped += 1
                continue
            if isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values()):
                self._pending.append(fields)
            else:
                self.skipped += 1

    def _open_append(self) -> TextIO:
        try:
            return self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc

    def append(self, events: list[dict[str, str]]) -> None:
        """Keep ``events`` until :meth:`acknowledge` (written now, fsynced by :meth:`sync`)."""
        lines = "".join(json.dumps(fields, separators=(",", ":")) + "\n" for fields in events)
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

    def pending(self, limit: int = 1000) -> list[dict[str, str]]:
        """The oldest ``limit`` events not yet acknowledged, in order."""
        with self._lock:
            return self._pending[:limit]

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def acknowledge(self, count: int) -> None:
        """Forget the oldest ``count`` events: Redis holds them."""
        with self._lock:
            del self._pending[:count]
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                with tmp.open("w", encoding="utf-8") as out:
                    out.writelines(json.dumps(f, separators=(",", ":")) + "\n"
                                   for f in self._pending)  # fmt: skip
                    out.flush()
                    os.fsync(out.fileno())
                tmp.replace(self.path)
                self._file.close()
                self._file = self._open_append()
            except OSError as exc:
                raise StateFileError(f"fleet outbox unwritable: {exc}", path=self.path) from exc

    def close(self) -> None:
        with self._lock:
            self._file.close()
