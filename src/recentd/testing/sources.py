"""The :class:`~recentd.sources.Source` conformance suite, and an in-memory source.

A real source is checked through a :class:`SourceHarness`: something that can open the
source (fresh, or from a checkpoint) and put evidence into its medium (append lines to a
file, send entries to a journal, write to a pipe, append records to a capture, send
packets through a queued hook). :func:`check_source` then asserts the package rules of
:mod:`recentd.sources`: nothing before anything is written, everything written comes out
once and in order, a reopened source resumes exactly, damaged input neither stops it nor
hides what follows, the status is a status and the checkpoint JSON, ``close`` twice is
harmless.

A packet source is checked the same way, with two differences it states: what it
returns is turned into :class:`Expected` values by the harness's reading of its batches
(``seen=``; the evidence asked for is then ``None``, "a packet"), and a live medium that
keeps nothing while the source is closed (the queue) is written to after the reopening
instead of before it (``keeps=False``).
"""

from __future__ import annotations

import ipaddress
import json
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from recentd.observation import Address, Evidence, Observation, Origin
from recentd.sources import Checkpoint, Source, SourceState, SourceStatus

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Expected:
    """What an observation must say for the suite to count it as the one written; for
    a packet source, a packet from ``address`` (``evidence`` None) stamped ``wall_ns``."""

    evidence: Evidence | None
    address: Address
    wall_ns: int

    @classmethod
    def of(cls, observation: Observation) -> Expected:
        return cls(observation.evidence, observation.address, observation.wall_ns)


#: How a harness reads what a source returned: one ``read``'s items → the evidence in
#: them, in order (a queue's batches are valid only until the next read: the suite calls
#: it after each one).
Reading = Callable[[Sequence[T]], list["Expected"]]


class SourceHarness(Protocol[T_co]):
    """How the suite drives one kind of source."""

    def open(self, checkpoint: Checkpoint | None) -> Source[T_co]:
        """A new source over the medium, resuming from ``checkpoint`` when given."""
        ...

    def emit(self, batch: Sequence[Expected]) -> None:
        """Put evidence into the medium that the source must report as ``batch``."""
        ...

    def emit_garbage(self) -> None:
        """Put something into the medium the source cannot understand (random bytes, an
        overlong line, invalid UTF-8); it must report nothing for it."""
        ...


def drain(source: Source[Observation], count: int, *, timeout_s: float = 5.0
          ) -> list[Observation]:  # fmt: skip
    """Read until ``count`` observations came out or ``timeout_s`` passed; then one more
    read, so that a source reporting too much is caught."""
    found: list[Observation] = []

    def take(items: Sequence[Observation]) -> int:
        found.extend(items)
        return len(items)

    _drain(source, count, take, timeout_s)
    return found


def _drain(source: Source[T], count: int, take: Callable[[Sequence[T]], int],
           timeout_s: float) -> None:  # fmt: skip
    """Read until ``take`` (called on each read's items, at once) counted ``count`` or
    ``timeout_s`` passed; then one more read."""
    taken = 0
    deadline = time.monotonic() + timeout_s
    while taken < count and time.monotonic() < deadline:
        taken += take(source.read())
        if taken >= count:
            break
        fd = source.fileno()
        wait = min(0.05, max(0.0, deadline - time.monotonic()))
        if fd is None:
            time.sleep(wait)
        else:
            select.select([fd], [], [], wait)
    take(source.read())


def _observations(found: Sequence[Observation]) -> list[Expected]:
    return [Expected.of(observation) for observation in found]


def _read_all(source: Source[T], count: int, reading: Reading[T], timeout_s: float
              ) -> list[Expected]:  # fmt: skip
    got: list[Expected] = []

    def take(items: Sequence[T]) -> int:
        seen = reading(items)
        got.extend(seen)
        return len(seen)

    _drain(source, count, take, timeout_s)
    return got


def check_source(harness: SourceHarness[T], *, seen: Reading[T] | None = None,
                 keeps: bool = True, evidence: Evidence = Evidence.AUTH_FAILURE,
                 timeout_s: float = 5.0) -> None:  # fmt: skip
    """Assert the :mod:`recentd.sources` rules for the source ``harness`` opens.

    Args:
        seen: the evidence in what one ``read`` returned; by default each item is an
            :class:`Observation`. Given for a packet source, which is then asked for
            packets (:class:`Expected` with ``evidence`` None).
        keeps: the medium keeps what is written while no source is open (a file, a
            journal, a pipe, a capture); ``False`` for a live medium (the queue), which
            is then written to once the source is open again.
        evidence: what an observation source is asked to carry (a log: failed logins;
            the fleet: its bans).

    Raises:
        AssertionError: naming the rule broken and what came out instead.
    """
    reading = seen if seen is not None else cast("Reading[T]", _observations)
    kind = evidence if seen is None else None
    first = [Expected(kind, _address(i), 1_700_000_000_000_000_000 + i * 10**9)
             for i in range(1, 6)]  # fmt: skip
    later = [Expected(kind, _address(i), 1_700_000_100_000_000_000 + i * 10**9)
             for i in range(6, 10)]  # fmt: skip
    source = harness.open(None)
    try:
        assert not source.read(), "a new source reports evidence nobody wrote"
        _status_is_valid(source.status())
        harness.emit(first)
        got = _read_all(source, len(first), reading, timeout_s)
        assert got == first, f"written {first}, read {got}"
        harness.emit_garbage()
        harness.emit(later[:1])
        got = _read_all(source, 1, reading, timeout_s)
        assert got == later[:1], f"after damaged input, written {later[:1]}, read {got}"
        _status_is_valid(source.status())
        checkpoint = dict(source.checkpoint())
        assert json.loads(json.dumps(checkpoint)) == checkpoint, f"{checkpoint} is not JSON"
    finally:
        source.close()
        source.close()
    if keeps:
        harness.emit(later[1:])
    resumed = harness.open(checkpoint)
    try:
        if not keeps:
            harness.emit(later[1:])
        got = _read_all(resumed, len(later) - 1, reading, timeout_s)
        assert got == later[1:], f"reopened from {checkpoint}: expected {later[1:]}, read {got}"
    finally:
        resumed.close()


def _status_is_valid(status: SourceStatus) -> None:
    assert isinstance(status.state, SourceState), f"status {status!r} has no SourceState"
    assert status.skipped >= 0, f"status {status!r} counts negative skips"


def _address(i: int) -> Address:
    return ipaddress.ip_address(f"192.0.2.{i}")


@dataclass
class ListSource:
    """An in-memory source: observations pushed in come out of :meth:`read`, in order.

    Its checkpoint is how many observations have been read, so reopening a
    :class:`ListSource` over the same ``medium`` list resumes exactly.
    """

    medium: list[Observation] = field(default_factory=list)
    name: str = "list"
    position: int = 0
    closed: bool = False

    def push(self, *observations: Observation) -> None:
        self.medium.extend(observations)

    def fileno(self) -> int | None:
        return None

    def read(self) -> list[Observation]:
        if self.closed:
            return []
        ready = self.medium[self.position :]
        self.position = len(self.medium)
        return ready

    def status(self) -> SourceStatus:
        return SourceStatus(SourceState.OK)

    def checkpoint(self) -> Checkpoint:
        return {"position": self.position}

    def close(self) -> None:
        self.closed = True


@dataclass
class ListHarness:
    """Drives :class:`ListSource` through :func:`check_source` (and shows how to write one)."""

    medium: list[Observation] = field(default_factory=list)

    def open(self, checkpoint: Checkpoint | None) -> Source[Observation]:
        position = checkpoint["position"] if checkpoint else 0
        assert isinstance(position, int)
        return ListSource(self.medium, position=position)

    def emit(self, batch: Sequence[Expected]) -> None:
        for item in batch:
            assert item.evidence is not None, "a list source holds observations"
            self.medium.append(
                Observation(item.evidence, item.address, item.wall_ns, Origin("list", "test")))

    def emit_garbage(self) -> None:
        """A list holds only observations: there is nothing malformed to put in it."""
