"""The queue source's statuses, with a stand-in for the kernel's queue (the real one is
tests/sources/test_queue_netns.py): a refused bind, a failing receive, and recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

from recentd.errors import BackendError
from recentd.live.nfqnl import QueuedPacket, packet_message
from recentd.live.nfqueue import Batch
from recentd.sources import SourceState
from recentd.sources.queue import QueueSource


@dataclass
class StandIn:
    """What the source uses of a RawQueue: receive, answer, fileno, close."""

    ready: list[Batch] = field(default_factory=list)
    failing: str = ""
    answered: list[tuple[list[int], list[int]]] = field(default_factory=list)
    closed: bool = False
    received: int = 0

    def fileno(self) -> int:
        return 7

    def receive(self, limit: int) -> Batch:
        if self.failing:
            raise BackendError(self.failing, backend="nfqueue")
        return self.ready.pop(0) if self.ready else Batch(memoryview(b""))

    def answer(self, batch: Batch, verdicts: list[int]) -> None:
        self.answered.append((batch.ids, verdicts))

    def close(self) -> None:
        self.closed = True


def batch_of(*ids: int) -> Batch:
    return Batch.of(b"".join(packet_message(QueuedPacket(i, 1, bytes(40))) for i in ids))


def test_a_refused_bind_is_degraded_and_retried_on_each_read() -> None:
    kernel = StandIn(ready=[batch_of(1, 2)])
    attempts: list[str] = []

    def bind() -> StandIn:
        attempts.append("bind")
        if len(attempts) < 3:
            raise BackendError("queue 5: bind queue: errno 1", backend="nfqueue")
        return kernel

    source = QueueSource(bind)  # type: ignore[arg-type]
    assert (source.status().state, source.fileno()) == (SourceState.DEGRADED, None)
    assert "bind queue" in source.status().detail
    assert source.read() == []                                       # second try: refused
    [batch] = source.read()                                          # third: bound, read
    assert (batch.ids, source.status().state, source.fileno()) == ([1, 2], SourceState.OK, 7)
    source.answer(batch, [1, 0])
    assert kernel.answered == [([1, 2], [1, 0])]


def test_a_failing_receive_degrades_the_source_until_one_succeeds() -> None:
    kernel = StandIn(failing="queue 5: recvmmsg: errno 14")
    source = QueueSource(lambda: kernel)  # type: ignore[arg-type, return-value]
    assert source.read() == []
    assert source.status().state is SourceState.DEGRADED
    assert source.status().detail == "nfqueue: queue 5: recvmmsg: errno 14"
    kernel.failing, kernel.ready = "", [batch_of(9)]
    assert [batch.ids for batch in source.read()] == [[9]]
    assert source.status().state is SourceState.OK
    assert source.read() == []                                       # nothing queued
    assert source.checkpoint() == {}                                 # nothing to resume
    source.close()
    source.close()
    assert kernel.closed and source.read() == [] and source.fileno() is None
