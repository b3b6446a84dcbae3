"""The kernel's token buckets for ``-m limit`` (xt_limit) and ``-m hashlimit``.

Theory of operation (spec §7): a rate is a period ``avg`` between packets in
1/``scale`` seconds. The kernel turns periods into *credits*, adds ``CPJ``
credits per jiffy since the last packet, caps at ``avg·burst`` worth, and lets a
packet through while it can pay ``avg`` worth. All the integer widths are the
kernel's (u32 for limit, u64 for hashlimit revisions 2–3), including the
overflow that makes ``1/day`` with burst 5 fail with ERANGE.
"""

from __future__ import annotations

from collections.abc import Mapping

from recentd.errors import RuleError

LIMIT_SCALE = 10_000  # XT_LIMIT_SCALE
HASHLIMIT_SCALE = 1_000_000  # XT_HASHLIMIT_SCALE_v2 (revisions 2 and 3)
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
SECONDS_PER_DAY = 86_400

#: Rate units: iptables accepts any prefix of the name (``s``, ``sec``, ``m`` …).
UNITS: Mapping[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
#: Units as printed, largest first (libxt_limit's ``rates`` table).
PRINT_UNITS = (("day", 86400), ("hour", 3600), ("min", 60), ("sec", 1))


def _pow2_below(value: int) -> int:
    return 1 << (value.bit_length() - 1)


def limit_cpj(hz: int) -> int:
    """xt_limit's CREDITS_PER_JIFFY: the largest power of two ≤ 2³²−1 / (HZ·86400)."""
    return _pow2_below(U32 // (hz * SECONDS_PER_DAY))


def hashlimit_cpj(hz: int) -> int:
    """xt_hashlimit's CREDITS_PER_JIFFY (v2): the same over 2⁶⁴−1."""
    return _pow2_below(U64 // (hz * SECONDS_PER_DAY))


def limit_credits(user: int, hz: int) -> int:
    """xt_limit ``user2credits``, u32 arithmetic (the caller passes a u32 ``user``)."""
    cpj = limit_cpj(hz)
    if user > U32 // (hz * cpj):
        return ((user // LIMIT_SCALE) * hz * cpj) & U32
    return ((user * hz * cpj) & U32) // LIMIT_SCALE


def hashlimit_credits(user: int, hz: int) -> int:
    """xt_hashlimit ``user2credits`` for revision ≥ 2, u64 arithmetic."""
    cpj = hashlimit_cpj(hz)
    if hz * cpj <= HASHLIMIT_SCALE:
        return user // (HASHLIMIT_SCALE // (hz * cpj))
    return (user * ((hz * cpj) // HASHLIMIT_SCALE)) & U64


def parse_rate(text: str, scale: int, *, option: str) -> tuple[int, int]:
    """``N[/unit]`` → (period in 1/scale s, unit seconds); errors in iptables' words."""
    number_text, sep, unit_text = text.partition("/")
    mult = 1
    if sep:
        units = [s for name, s in UNITS.items() if unit_text and name.startswith(unit_text.lower())]
        if not units:
            raise RuleError(f'bad rate "{text}"\'', option=option)
        mult = units[0]
    digits = ""
    for char in number_text:
        if not char.isdigit():
            break
        digits += char
    number = int(digits) if digits else 0  # atoi: "2.5" is 2, "x" is 0
    if number == 0:
        raise RuleError(f'bad rate "{text}"\'', option=option)
    if number > mult * scale:
        raise RuleError(f'Rate too fast "{text}"', option=option)
    return mult * scale // number, mult


def format_rate(period: int, scale: int) -> str:
    """The printed rate, in the largest unit that still represents it exactly enough."""
    chosen = PRINT_UNITS[0]
    for unit in PRINT_UNITS[1:]:
        mult = unit[1] * scale
        if period > mult or mult // period < mult % period:
            break
        chosen = unit
    return f"{chosen[1] * scale // period}/{chosen[0]}"


class Bucket:
    """One token bucket; ``take(now)`` is the kernel's per-packet step.

    ``credit`` starts at the cap ("the bucket starts full"). The kernel sets ``prev``
    at checkentry; rules here are compiled without a clock, so ``prev`` is taken
    from the first packet (``now=None``), which a full bucket cannot tell apart.
    """

    __slots__ = ("cap", "cost", "cpj", "credit", "prev")

    def __init__(self, cap: int, cost: int, cpj: int, now: int | None = None) -> None:
        self.cap = cap
        self.cost = cost
        self.cpj = cpj
        self.credit = cap
        self.prev = now

    def refill(self, now: int) -> None:
        if self.prev is not None and now != self.prev:
            self.credit = min(self.credit + (now - self.prev) * self.cpj, self.cap)
        self.prev = now

    def take(self, now: int) -> bool:
        """Refill for the ticks since the last packet, then pay one packet if possible."""
        self.refill(now)
        if self.credit >= self.cost:
            self.credit -= self.cost
            return True
        return False


def limit_bucket_params(avg: int, burst: int, hz: int) -> tuple[int, int] | None:
    """(cap, cost) for a limit rule, or None where checkentry says ERANGE."""
    cap = limit_credits((avg * burst) & U32, hz)
    cost = limit_credits(avg, hz)
    if burst == 0 or cap < cost:
        return None
    return cap, cost
