"""A clock that moves only when told to (the :class:`recentd.clock.Clock` fake)."""

from __future__ import annotations

from recentd.clock import ClockReading
from recentd.recent.ticks import DEFAULT_HZ, ns_to_ticks

#: The wall time a fake clock's monotonic zero corresponds to (2023-11-14T22:13:20Z).
DEFAULT_WALL_ORIGIN_NS = 1_700_000_000 * 10**9


class FakeClock:
    """Monotonic time starts at ``start_ns`` and moves with :meth:`advance`; the wall clock
    is the monotonic one plus ``wall_origin_ns``, so both move together."""

    def __init__(
        self, hz: int = DEFAULT_HZ, start_ns: int = 0, *,
        wall_origin_ns: int = DEFAULT_WALL_ORIGIN_NS,
    ) -> None:  # fmt: skip
        self.hz = hz
        self._ns = start_ns
        self.wall_origin_ns = wall_origin_ns

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock never goes back (advance({seconds}))")
        self._ns += round(seconds * 1e9)

    def now_ns(self) -> int:
        return self._ns

    def now_ticks(self) -> int:
        return ns_to_ticks(self._ns, self.hz)

    def wall_ns(self) -> int:
        return self.wall_origin_ns + self._ns

    def read(self) -> ClockReading:
        return ClockReading(self.wall_ns(), self.now_ticks(), self.hz)
