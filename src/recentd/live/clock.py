"""The daemon's clock: monotonic nanoseconds turned into the core's ticks.

The core never reads a clock (``now`` is an argument); this is the one object the
daemon reads it from, and tests pass a :class:`FakeClock` instead.
"""

from __future__ import annotations

import time
from typing import Protocol

from recentd.recent.ticks import DEFAULT_HZ, ns_to_ticks


class Clock(Protocol):
    hz: int

    def now_ns(self) -> int: ...

    def now_ticks(self) -> int: ...


class MonotonicClock:
    """``time.monotonic_ns()`` in ticks of ``hz`` (never jumps with the wall clock)."""

    def __init__(self, hz: int = DEFAULT_HZ) -> None:
        self.hz = hz

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def now_ticks(self) -> int:
        return ns_to_ticks(time.monotonic_ns(), self.hz)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, hz: int = DEFAULT_HZ, start_ns: int = 0) -> None:
        self.hz = hz
        self._ns = start_ns

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock never goes back (advance({seconds}))")
        self._ns += round(seconds * 1e9)

    def now_ns(self) -> int:
        return self._ns

    def now_ticks(self) -> int:
        return ns_to_ticks(self._ns, self.hz)
