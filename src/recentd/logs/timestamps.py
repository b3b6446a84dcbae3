"""Log timestamps as exact integer epoch nanoseconds.

Rules:

- RFC 3339 / ISO 8601 times keep every fractional digit up to nanoseconds; an offset
  (``Z``, ``+01:00``, ``+0100``) is honoured; a time without one is local time.
- Classic syslog times (``Mar  4 10:22:01``) carry no year and are local time.  The
  year comes from a :class:`ClassicYear` policy: ``--year`` names the year of the
  log's first classic line and a jump back of more than half a year (December to
  January) moves to the next year (a late line, December after January, is the
  previous year's and moves nothing); without it, a line gets the most recent year
  that does not put it in the future relative to ``now`` (with one day of slack for
  clocks and zones that disagree a little), as syslog readers do.  A minute past 59 or a
  second past 60 is no time (60 is a leap second, read as 59).
- Local time is the ``tz`` given (a :class:`datetime.tzinfo`), or the process's
  local zone (``TZ``) when it is ``None``. No clock is read here: ``now`` is an
  argument.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

NS = 1_000_000_000
MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}

#: A classic line may be this far "in the future" of ``now`` and keep the year.
FUTURE_SLACK_NS = 86_400 * NS
#: A month this much smaller than the previous line's means the log crossed New Year.
_ROLLOVER_MONTHS = 6

ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?"
    r"(Z|[+-]\d\d(?::?\d\d)?)?"
)


def fraction_ns(digits: str | None) -> int:
    """Nanoseconds of a fractional-second digit string (beyond nanoseconds: cut)."""
    if not digits:
        return 0
    return int(digits[:9].ljust(9, "0"))


def local_epoch(fields: tuple[int, int, int, int, int, int], tz: tzinfo | None) -> int:
    """Epoch seconds of a wall-clock time in zone ``tz`` (``None``: the local zone)."""
    return int(datetime(*fields, tzinfo=tz).timestamp())


def _offset_seconds(text: str) -> int:
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    return sign * (int(digits[:2]) * 3600 + minutes * 60)


def iso_ns(match: re.Match[str], tz: tzinfo | None) -> int | None:
    """Epoch ns of an :data:`ISO_RE` match, ``None`` if the date does not exist."""
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fields = (year, month, day, hour, minute, min(second, 59))
    try:
        if match.group(8) is None:
            seconds = local_epoch(fields, tz)
        else:
            seconds = calendar.timegm(fields) - _offset_seconds(match.group(8))
            datetime(*fields)  # rejects February 30th like the local path does
    except (ValueError, OverflowError):
        return None
    return seconds * NS + fraction_ns(match.group(7))


@dataclass
class ClassicYear:
    """The year policy for classic syslog lines (see the module rules).

    Args:
        year: the year of the first classic line (``--year``), or ``None``.
        now: epoch ns "now" for the no-``--year`` rule (the caller reads the clock;
            with ``year=None`` it must be given, the default 0 means 1970).
        tz: the zone of the log's wall-clock times; ``None`` is the local zone.
    """

    year: int | None = None
    now: int = 0
    tz: tzinfo | None = None
    _last_month: int = field(default=0, init=False)
    _cache_key: tuple[int, int, int, int] | None = field(default=None, init=False)
    _cache_seconds: int = field(default=0, init=False)
    _latest: dict[tuple[int, int], int] = field(default_factory=dict, init=False)

    def epoch_ns(self, month: int, day: int, clock: tuple[int, int, int], frac: int) -> int | None:
        """Epoch ns of a classic time, ``None`` if no year makes the date exist."""
        year = self._year_for(month, day, clock)
        hour, minute, second = clock
        if minute > 59 or second > 60:
            return None  # whatever line came before (the hour's cache must not decide)
        key = (year, month, day, hour)
        if key != self._cache_key:
            # Zones change their offset on the hour, so the start of the hour is
            # converted once and the minutes and seconds are added to it.
            try:
                self._cache_seconds = local_epoch((year, month, day, hour, 0, 0), self.tz)
            except (ValueError, OverflowError):
                return None
            self._cache_key = key
        return (self._cache_seconds + minute * 60 + min(second, 59)) * NS + frac

    @property
    def month(self) -> int:
        """The month the policy last placed (0: none yet, or no ``year`` given)."""
        return self._last_month

    def note_month(self, month: int) -> None:
        """What a classic line of ``month`` does to the policy, without its time: a
        reader that skips lines unparsed calls this once for a run of lines that are
        all in ``month`` (the effect of one such line is that of many)."""
        if self.year is not None:
            self._year_for(month, 1, (0, 0, 0))

    def _year_for(self, month: int, day: int, clock: tuple[int, int, int]) -> int:
        if self.year is None:
            return self._latest_year(month, day, clock)
        last = self._last_month
        if last and month > last + _ROLLOVER_MONTHS:
            return self.year - 1  # a late line from before New Year: it moves nothing
        if last and month < last - _ROLLOVER_MONTHS:
            self.year += 1
        self._last_month = month
        return self.year

    def _latest_year(self, month: int, day: int, clock: tuple[int, int, int]) -> int:
        known = self._latest.get((month, day))
        if known is not None:
            return known
        year = self._latest_year_at(month, day, clock)
        # The whole day gets the same year unless "now" falls within it (give or take
        # the slack): then each line decides for itself.
        if self._latest_year_at(month, day, (0, 0, 0)) == self._latest_year_at(
            month, day, (23, 59, 59)
        ):
            self._latest[(month, day)] = year
        return year

    def _latest_year_at(self, month: int, day: int, clock: tuple[int, int, int]) -> int:
        this_year = datetime.fromtimestamp(self.now // NS, self.tz).year
        for year in (this_year, this_year - 1):
            try:
                seconds = local_epoch((year, month, day, *clock), self.tz)
            except ValueError:  # February 29th of a year that has none
                continue
            if seconds * NS <= self.now + FUTURE_SLACK_NS:
                return year
        return this_year - 1
