"""The :class:`~recentd.sources.Source` conformance suite, and an in-memory source.

A real source is checked through a :class:`SourceHarness`: something that can open the
source (fresh, or from a checkpoint) and put evidence into its medium (append lines to a
file, send entries to a journal, write to a pipe). :func:`check_source` then asserts the
package rules of :mod:`recentd.sources`: nothing before anything is written, everything
written comes out once and in order, a reopened source resumes exactly, damaged input
neither stops it nor hides what follows, ``close`` twice is harmless.
"""

from __future__ import annotations

import ipaddress
import select
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from recentd.observation import Address, Evidence, Observation, Origin
from recentd.sources import Checkpoint, Source, SourceState, SourceStatus


@dataclass(frozen=True, slots=True)
class Expected:
    """What an observation must say for the suite to count it as the one written."""

    evidence: Evidence
    address: Address
    wall_ns: int

    @classmethod
    def of(cls, observation: Observation) -> Expected:
        return cls(observation.evidence, observation.address, observation.wall_ns)


class SourceHarness(Protocol):
    """How the suite drives one kind of source."""

    def open(self, checkpoint: Checkpoint | None) -> Source:
        """A new source over the medium, resuming from ``checkpoint`` when given."""
        ...

    def emit(self, batch: Sequence[Expected]) -> None:
        """Put evidence into the medium that the source must report as ``batch``."""
        ...

    def emit_garbage(self) -> None:
        """Put something into the medium the source cannot understand (random bytes, an
        overlong line, invalid UTF-8); it must report nothing for it."""
        ...


def drain(source: Source, count: int, *, timeout_s: float = 5.0) -> list[Observation]:
    """Read until ``count`` observations came out or ``timeout_s`` passed; then one more
    read, so that a source reporting too much is caught."""
    found: list[Observation] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < count and time.monotonic() < deadline:
        found += source.read()
        if len(found) >= count:
            break
        fd = source.fileno()
        wait = min(0.05, max(0.0, deadline - time.monotonic()))
        if fd is None:
            time.sleep(wait)
        else:
            select.select([fd], [], [], wait)
    found += source.read()
    return found


def _seen(found: Sequence[Observation]) -> list[Expected]:
    return [Expected.of(observation) for observation in found]


def check_source(harness: SourceHarness, *, timeout_s: float = 5.0) -> None:
    """Assert the :mod:`recentd.sources` rules for the source ``harness`` opens.

    Raises:
        AssertionError: naming the rule broken and what came out instead.
    """
    first = [
        Expected(Evidence.AUTH_FAILURE, _address(i), 1_700_000_000_000_000_000 + i * 10**9)
        for i in range(1, 6)
    ]
    later = [
        Expected(Evidence.AUTH_FAILURE, _address(i), 1_700_000_100_000_000_000 + i * 10**9)
        for i in range(6, 10)
    ]
    source = harness.open(None)
    try:
        assert source.read() == [], "a new source reports evidence nobody wrote"
        _status_is_valid(source.status())
        harness.emit(first)
        got = _seen(drain(source, len(first), timeout_s=timeout_s))
        assert got == first, f"written {first}, read {got}"
        harness.emit_garbage()
        harness.emit(later[:1])
        got = _seen(drain(source, 1, timeout_s=timeout_s))
        assert got == later[:1], f"after damaged input, written {later[:1]}, read {got}"
        _status_is_valid(source.status())
        checkpoint = dict(source.checkpoint())
    finally:
        source.close()
        source.close()
    harness.emit(later[1:])
    resumed = harness.open(checkpoint)
    try:
        got = _seen(drain(resumed, len(later) - 1, timeout_s=timeout_s))
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

    def open(self, checkpoint: Checkpoint | None) -> Source:
        position = checkpoint["position"] if checkpoint else 0
        assert isinstance(position, int)
        return ListSource(self.medium, position=position)

    def emit(self, batch: Sequence[Expected]) -> None:
        self.medium.extend(
            Observation(item.evidence, item.address, item.wall_ns, Origin("list", "test"))
            for item in batch
        )

    def emit_garbage(self) -> None:
        """A list holds only observations: there is nothing malformed to put in it."""
