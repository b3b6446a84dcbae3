"""Producers of evidence: one narrow :class:`Source` interface for all of them.

Rules of this package:

1. A source turns one outside medium (a log file, the journal, stdin, the PAM hook's
   socket, the fleet's stream, a capture) into :class:`~recentd.observation.Observation`
   values. Parsing lives elsewhere (pure); a source only reads, remembers where it is, and
   hands lines to its parser.
2. The daemon's loop is one thread: a source never blocks. It offers a file descriptor
   that becomes readable when there may be something to read (``fileno()``; ``None``
   when it can only be polled, which the loop does on its timer), and :meth:`Source.read`
   returns what is ready now — possibly nothing.
3. A source never raises for what it reads: damaged input is skipped and counted, and a
   missing or unreadable medium is a :class:`SourceStatus` (``waiting`` or ``degraded``,
   with the reason), retried, never a crash. Only a programming error escapes.
4. A source can say where it is (:meth:`Source.checkpoint`, a JSON-able mapping) and be
   opened again from there, so a restart neither counts a line twice nor misses one.
5. Every source, and the fake in :mod:`recentd.testing`, passes the conformance suite
   :func:`recentd.testing.sources.check_source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from recentd.observation import Observation

#: A source's position, as it is saved between runs (JSON-able values only).
Checkpoint = Mapping[str, object]


class SourceState(Enum):
    OK = "ok"  # reading
    WAITING = "waiting"  # the medium is not there (yet): a file not created, no journal
    DEGRADED = "degraded"  # the medium is there but failing (unreadable, permission denied)
    FINISHED = "finished"  # a finite source (a file being scanned, stdin) read to its end


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How a source is doing, for ``ctl status`` and metrics.

    Attributes:
        state: see :class:`SourceState`.
        detail: why, in words ("no such file: /var/log/auth.log; retrying every 5 s").
        skipped: lines (or records) read but not understood, since the source opened.
    """

    state: SourceState
    detail: str = ""
    skipped: int = 0


class Source(Protocol):
    """One producer of evidence. See the package rules."""

    #: Names the source in status output and metrics: ``"file /var/log/auth.log"``.
    name: str

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when :meth:`read` may return something;
        ``None`` when the source must be polled (on the daemon's timer)."""
        ...

    def read(self) -> list[Observation]:
        """What is ready now, in the order it happened; ``[]`` when nothing is. Never blocks."""
        ...

    def status(self) -> SourceStatus: ...

    def checkpoint(self) -> Checkpoint:
        """Where the source is: opening it again from this reads nothing twice, misses nothing."""
        ...

    def close(self) -> None:
        """Release the medium; safe to call twice."""
        ...
