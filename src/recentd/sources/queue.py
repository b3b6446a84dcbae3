"""The live NFQUEUE as a :class:`~recentd.sources.Source` of packet batches.

The socket work stays in :mod:`recentd.live.nfqueue` (raw netlink, ``recvmmsg`` into one
buffer, coalesced verdicts); this adapter gives it the sources' contract, so the daemon
reads its packets as it reads every other medium.

Rules of this module:

1. ``read()`` is one receive: ``[]`` when nothing is queued, else one
   :class:`~recentd.live.nfqueue.Batch` — parallel lists over the receive buffer, no
   object per packet. A batch is valid until the next ``read`` (the buffer is reused),
   and every batch read must be answered (:meth:`QueueSource.answer`) before then: the
   kernel holds each queued packet until its verdict.
2. Never raises for what it reads: a failing receive makes the source ``degraded`` (the
   reason in :meth:`QueueSource.status`), and the next ``read`` tries again; a queue the
   kernel refused to bind is ``degraded`` too, and binding is retried on each ``read``
   (the daemon refuses to start on one: :meth:`QueueSource.bound`).
3. The medium keeps nothing while the source is closed: closing the socket makes the
   kernel destroy the queue (its packets pass with ``--queue-bypass``, else are dropped),
   so there is no position to resume and the checkpoint is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from recentd.errors import BackendError
from recentd.live.nfqueue import Batch, RawQueue
from recentd.sources import Checkpoint, SourceState, SourceStatus

#: Opens (binds) the queue; raises :class:`BackendError` when the kernel refuses.
QueueOpener = Callable[[], RawQueue]


class QueueSource:
    """NFQUEUE packets, a batch per receive (see the module rules).

    Args:
        open_queue: binds the queue (e.g. ``lambda: RawQueue(100, count=5)``); called now,
            and again on a later ``read`` while it fails.
        name: how status output names it.
        limit: most packets per receive.
    """

    def __init__(self, open_queue: QueueOpener, *, name: str = "nfqueue",
                 limit: int = 256) -> None:  # fmt: skip
        self.name = name
        self._open_queue = open_queue
        self._limit = limit
        self._queue: RawQueue | None = None
        self._closed = False
        self._problem = ""
        self._bind()

    @classmethod
    def of(cls, queue_num: int, *, count: int = 1, fail_open: bool = True,
           limit: int = 256) -> QueueSource:  # fmt: skip
        """Queues ``queue_num`` … ``queue_num + count - 1`` on one socket."""
        last = queue_num + count - 1
        name = f"nfqueue {queue_num}" + (f"-{last}" if count > 1 else "")
        return cls(lambda: RawQueue(queue_num, count=count, fail_open=fail_open, limit=limit),
                   name=name, limit=limit)  # fmt: skip

    def bound(self) -> RawQueue:
        """The bound queue.

        Raises:
            BackendError: the kernel refused to bind it (the reason from the last try).
        """
        if self._queue is None:
            raise BackendError(self._problem or "queue closed", backend="nfqueue")
        return self._queue

    # -- the Source protocol --------------------------------------------------------------

    def fileno(self) -> int | None:
        return self._queue.fileno() if self._queue is not None else None

    def read(self) -> Sequence[Batch]:
        queue = self._queue
        if queue is None:
            if self._closed or not self._bind():
                return []
            queue = self.bound()
        try:
            batch = queue.receive(self._limit)
        except BackendError as exc:
            self._problem = str(exc)
            return []
        self._problem = ""
        return [batch] if batch.ids else []

    def status(self) -> SourceStatus:
        if self._closed:
            return SourceStatus(SourceState.FINISHED, "closed")
        if self._problem:
            return SourceStatus(SourceState.DEGRADED, self._problem)
        return SourceStatus(SourceState.OK)

    def checkpoint(self) -> Checkpoint:
        """Empty: the kernel keeps nothing for a closed queue (rule 3)."""
        return {}

    def close(self) -> None:
        self._closed = True
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()

    # -- the way back -----------------------------------------------------------------------

    def answer(self, batch: Batch, verdicts: list[int]) -> None:
        """Send the verdicts of ``batch`` (the one ``read`` last returned), in one datagram.

        Raises:
            BackendError: the kernel refused the verdicts (the queue is unusable).
        """
        self.bound().answer(batch, verdicts)

    @property
    def received(self) -> int:
        """Packets received since the queue was bound."""
        return self._queue.received if self._queue is not None else 0

    def _bind(self) -> bool:
        try:
            self._queue = self._open_queue()
        except BackendError as exc:
            self._problem = str(exc)
            return False
        self._problem = ""
        return True
