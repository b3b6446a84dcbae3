"""The one clock module: monotonic ticks, wall time, and the mapping between them.

Rules of this module:

1. Decisions run on *ticks*: whole ``1/hz`` steps of the monotonic clock (the kernel's
   jiffies). A tick never jumps when the wall clock is set; its origin is the boot.
2. The *wall clock* (nanoseconds since the epoch) says when something happened to the
   outside world: an observation's time, a journal record's time, a ban's expiry shown to
   a user. It is read here and nowhere else (:func:`wall_now_ns`).
3. The two meet in a :class:`ClockReading` — both clocks read together — and the
   mapping between them is two pure functions of a reading: :func:`tick_of_wall` (when did
   this log line happen, in ticks?) and :func:`wall_of_tick` (when does this ban end, in
   wall time?). The state store uses the same mapping to re-base stamps after a reboot.
   The arithmetic itself lives in :mod:`recentd.recent.ticks` (pure, importable by the
   sans-I/O modules) and is re-exported here: import time from this module.
4. Everything that needs the time takes a :class:`Clock` object (trio's idea): the daemon
   passes :class:`MonotonicClock`, tests :class:`recentd.testing.clock.FakeClock`. The core
   (``recentd.recent``, the rules) never reads a clock at all: ``now`` is an argument.
"""

from __future__ import annotations

import time
from typing import Protocol

from recentd.recent.ticks import (
    DEFAULT_HZ,
    ClockReading,
    ns_to_ticks,
    tick_of_wall,
    ticks_to_ns,
    wall_of_tick,
)

__all__ = [
    "DEFAULT_HZ", "Clock", "ClockReading", "MonotonicClock", "ns_to_ticks", "tick_of_wall",
    "ticks_to_ns", "wall_now_ns", "wall_of_tick",
]  # fmt: skip


def wall_now_ns() -> int:
    """The wall clock, in nanoseconds since the epoch: the project's only read of it."""
    return time.time_ns()


class Clock(Protocol):
    """A source of time for the adapters (the core takes ``now`` as an argument)."""

    hz: int

    def now_ns(self) -> int:
        """Monotonic nanoseconds (any origin; never goes back)."""
        ...

    def now_ticks(self) -> int:
        """Monotonic ticks at :attr:`hz`."""
        ...

    def read(self) -> ClockReading:
        """Both clocks now, for the wall ↔ tick mapping."""
        ...


class MonotonicClock:
    """``time.monotonic_ns()`` in ticks of ``hz``, and the real wall clock."""

    def __init__(self, hz: int = DEFAULT_HZ) -> None:
        self.hz = hz

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def now_ticks(self) -> int:
        return ns_to_ticks(time.monotonic_ns(), self.hz)

    def read(self) -> ClockReading:
        return ClockReading(wall_now_ns(), self.now_ticks(), self.hz)
