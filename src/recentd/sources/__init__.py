"""Producers of evidence: one narrow :class:`Source` interface for all of them.

Rules of this package:

1. A source turns one outside medium into values of one type ``T``: a log file, the
   journal, stdin, the PAM hook's socket and the fleet's stream into
   :class:`~recentd.observation.Observation` values (:data:`ObservationSource`); the
   live queue (:mod:`~recentd.sources.queue`) and a capture file
   (:mod:`~recentd.sources.capture`) into *packet batches*. Parsing lives elsewhere
   (pure); a source only reads, remembers where it is, and hands lines to its parser.
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

Why packets come in batches, not as observations (decided for issue 11): the queue
carries ~50k packets a second to the live engine and a replay ~300k+, and each packet
is decided from its raw bytes — often without being decoded at all (remembered
decisions). An ``Observation`` per packet (an object, an address parsed, a wall time)
would cost more than deciding the packet. So the protocol is generic in what ``read()``
returns — ``Source[T]``, ``read() -> Sequence[T]`` — and a packet source's ``T`` is a
batch whose packets stay in their receive buffer (the queue's
:class:`~recentd.live.nfqueue.Batch`, a capture's column
:class:`~recentd.packets.columns.Chunk` or single record): one value per receive, none
per packet. Everything else about a source — a descriptor to wait on, never blocking,
never raising for what it reads, a status, a checkpoint, ``close`` — is the same
contract, checked by the same suite. Two things a packet source adds, outside the
protocol: the queue takes verdicts back (:meth:`~recentd.sources.queue.QueueSource.answer`,
the pipeline's output), and its medium keeps nothing while it is closed (the kernel
destroys an unbound queue's packets, or passes them with ``--queue-bypass``), so its
checkpoint is empty and the suite checks it as a live medium (``keeps=False``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

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


T_co = TypeVar("T_co", covariant=True)


class Source(Protocol[T_co]):
    """One producer of evidence, of ``T_co`` values. See the package rules."""

    #: Names the source in status output and metrics: ``"file /var/log/auth.log"``.
    name: str

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when :meth:`read` may return something;
        ``None`` when the source must be polled (on the daemon's timer)."""
        ...

    def read(self) -> Sequence[T_co]:
        """What is ready now, in the order it happened; empty when nothing is. Never
        blocks. A packet batch may be valid only until the next ``read`` (the queue
        receives into one buffer)."""
        ...

    def status(self) -> SourceStatus: ...

    def checkpoint(self) -> Checkpoint:
        """Where the source is: opening it again from this reads nothing twice, misses nothing."""
        ...

    def close(self) -> None:
        """Release the medium; safe to call twice."""
        ...


#: A source of observations: log files, the journal, stdin, the PAM hook, the fleet.
ObservationSource = Source[Observation]
