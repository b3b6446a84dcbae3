"""Time in ticks: the core's only clock is the integer ``now`` its callers pass in.

The kernel stamps entries with ``jiffies`` at ``HZ`` ticks per second. recentd
does the same with an integer tick count, so its decisions agree with the
kernel's jiffies arithmetic (an inclusive window of ``seconds * HZ`` ticks),
and — unlike the 2005 module (spec §8) — ticks are unbounded Python integers
compared by plain subtraction: no sentinel values, no wrap, and every decision
is invariant under a constant offset of the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Debian's kernel tick rate, and the default here.
DEFAULT_HZ = 250

_NS_PER_S = 1_000_000_000


def initial_jiffies(hz: int = DEFAULT_HZ) -> int:
    """The kernel's jiffies at boot, ``2**32 - 300*HZ``: a clock origin for listings
    that look like a real system's."""
    return 2**32 - 300 * hz


def ns_to_ticks(ns: int, hz: int = DEFAULT_HZ) -> int:
    """Whole ticks elapsed in ``ns`` nanoseconds (floor), exactly, in integers."""
    return ns * hz // _NS_PER_S


def ticks_to_ns(ticks: int, hz: int = DEFAULT_HZ) -> int:
    """Nanoseconds in ``ticks`` ticks, rounded down."""
    return ticks * _NS_PER_S // hz


def window_ticks(seconds: int, hz: int = DEFAULT_HZ, *, u32_wrap: bool = False) -> int:
    """The ``--seconds`` window in ticks.

    The kernel multiplies in 32 bits, so large values wrap (spec §2.4); that is a
    plain bug, reproduced only when ``u32_wrap`` is asked for.
    """
    window = seconds * hz
    return window % 2**32 if u32_wrap else window


@dataclass(frozen=True, slots=True)
class ClockReading:
    """Both clocks read at one moment: ``wall_ns`` (epoch ns) and ``tick`` (at ``hz``)."""

    wall_ns: int
    tick: int
    hz: int


def tick_of_wall(reading: ClockReading, wall_ns: int) -> int:
    """The tick at which wall time ``wall_ns`` was, seen from ``reading``.

    A time after the reading (a clock set back, a peer's clock ahead) maps to the
    reading's own tick: nothing is ever stamped in the future.
    """
    elapsed_ns = max(0, reading.wall_ns - wall_ns)
    return reading.tick - ns_to_ticks(elapsed_ns, reading.hz)


def wall_of_tick(reading: ClockReading, tick: int) -> int:
    """The wall time (epoch ns) of ``tick``, seen from ``reading`` (past or future)."""
    return reading.wall_ns + ticks_to_ns(tick - reading.tick, reading.hz)
