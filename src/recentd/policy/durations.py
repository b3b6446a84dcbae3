"""Durations as the config and ``ctl`` write them: ``"45s"``, ``"30m"``, ``"12h"``,
``"7d"``, ``"1w"``, or a whole number of seconds.

Rules: one unit per value (no ``"1d12h"``: write ``"36h"``); the result is whole
seconds, never negative; anything else is a :class:`ValueError` naming the text.
"""

from __future__ import annotations

import re

#: Seconds per unit.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"([0-9]+)\s*([smhdw]?)")


def parse_duration(value: object) -> int:
    """Seconds in ``value`` (a non-negative int, or text like ``"7d"``).

    Raises:
        ValueError: anything else (the message names the value and the units).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        found = _PATTERN.fullmatch(value.strip())
        if found:
            return int(found.group(1)) * UNITS[found.group(2) or "s"]
    raise ValueError(
        f"{value!r} is not a duration (whole seconds, or a number with one unit of "
        f"s, m, h, d, w: \"7d\")"
    )


def format_duration(seconds: int) -> str:
    """The largest whole unit: ``604800`` → ``"1w"``, ``90`` → ``"90s"``."""
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
