"""Parsing and validating `-m recent` options, with iptables 1.8.9's and the kernel's rules.

The option table below is data (STYLE practice 3): which options take a value,
which may be inverted, which exclude or require which. Validation runs in the
order libxtables runs it, so the first error reported is the one iptables reports:

1. per option, as it is met: "can only be used once", "cannot be inverted",
   then the value ("bad value … or out of range");
2. the extension's final check: one of set/rcheck/update/remove is required;
3. the table's constraints, in table order: "also requires", "cannot be used together".

:func:`check_recent` then applies the kernel's checkentry (spec §3.2), whose
rejections iptables can only report as "Invalid argument".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from recentd.errors import RecentOptionError
from recentd.recent.match import ALL_ONES_MASK, Command, RecentMatch, Side
from recentd.recent.params import MAX_NAME_LEN, MAX_NSTAMPS

_EXT = "recent"
_U32_MAX = 2**32 - 1
_FAMILY_V4 = 4
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


class RecentOption(NamedTuple):
    """One option as written: ``name`` with its dashes, its value, and whether ``!`` preceded it."""

    name: str
    value: str | None = None
    inverted: bool = False


@dataclass(frozen=True)
class _Spec:
    takes_value: bool
    invertible: bool = False
    excl: frozenset[str] = frozenset()
    also: frozenset[str] = frozenset()


_COMMANDS = frozenset({"--set", "--rcheck", "--update", "--remove"})

#: The option table of libxt_recent revision 1, in its own order (which decides
#: which of several errors is reported first).
OPTION_TABLE: Mapping[str, _Spec] = {
    "--set": _Spec(False, invertible=True, excl=_COMMANDS),
    "--rcheck": _Spec(False, invertible=True, excl=_COMMANDS),
    "--update": _Spec(False, invertible=True, excl=_COMMANDS),
    "--remove": _Spec(False, invertible=True, excl=_COMMANDS),
    "--seconds": _Spec(True),
    "--reap": _Spec(False, also=frozenset({"--seconds"})),
    "--hitcount": _Spec(True),
    "--rttl": _Spec(False, excl=frozenset({"--set", "--remove"})),
    "--name": _Spec(True),
    "--rsource": _Spec(False),
    "--rdest": _Spec(False),
    "--mask": _Spec(True),
}

#: Option name → whether it takes an argument (what a tokenizer needs to know).
RECENT_OPTIONS: Mapping[str, bool] = {name: spec.takes_value for name, spec in OPTION_TABLE.items()}

_COMMAND_OF = {
    "--set": Command.SET,
    "--rcheck": Command.CHECK,
    "--update": Command.UPDATE,
    "--remove": Command.REMOVE,
}


def parse_recent(options: Sequence[RecentOption], family: int) -> RecentMatch:
    """Build a :class:`RecentMatch` from options, validated as iptables 1.8.9 does.

    Args:
        options: the options following ``-m recent``, in command-line order.
        family: 4 for iptables, 6 for ip6tables (decides how ``--mask`` is read).

    Raises:
        RecentOptionError: with iptables' message (without its ``iptables v1.8.9``
            prefix) and the offending option.
    """
    seen: dict[str, RecentOption] = {}
    for option in options:
        _accept_option(option, seen)
    if not _COMMANDS & seen.keys():
        raise RecentOptionError(
            f"{_EXT}: you must specify one of `--set', `--rcheck' `--update' or `--remove'"
        )
    _check_constraints(seen)
    return _build(seen, family)


def _accept_option(option: RecentOption, seen: dict[str, RecentOption]) -> None:
    spec = OPTION_TABLE.get(option.name)
    if spec is None:
        known = ", ".join(OPTION_TABLE)
        raise RecentOptionError(
            f'{_EXT}: unknown option "{option.name}" (known: {known})', option=option.name
        )
    if option.name in seen:
        raise RecentOptionError(
            f'{_EXT}: option "{option.name}" can only be used once.', option=option.name
        )
    if option.inverted and not spec.invertible:
        raise RecentOptionError(
            f'{_EXT}: option "{option.name}" cannot be inverted.', option=option.name
        )
    if spec.takes_value and option.value is None:
        raise RecentOptionError(
            f'{_EXT}: option "{option.name}" requires an argument.', option=option.name
        )
    seen[option.name] = option


def _check_constraints(seen: Mapping[str, RecentOption]) -> None:
    order = list(OPTION_TABLE)
    for name in order:
        if name not in seen:
            continue
        spec = OPTION_TABLE[name]
        for other in order:
            if other == name:
                continue
            if other in spec.also and other not in seen:
                raise RecentOptionError(
                    f'{_EXT}: option "{name}" also requires "{other}".', option=name
                )
            if other in spec.excl and other in seen:
                raise RecentOptionError(
                    f'{_EXT}: option "{name}" cannot be used together with "{other}".',
                    option=name,
                )


def _build(seen: Mapping[str, RecentOption], family: int) -> RecentMatch:
    command_name = next(name for name in OPTION_TABLE if name in _COMMANDS and name in seen)
    # --rsource and --rdest may both be given; the one written last wins.
    sides = [opt.name for opt in seen.values() if opt.name in ("--rsource", "--rdest")]
    side = Side.DEST if sides and sides[-1] == "--rdest" else Side.SOURCE
    return RecentMatch(
        command=_COMMAND_OF[command_name],
        name=_name(seen),
        seconds=_uint(seen, "--seconds", low=1),
        hitcount=_uint(seen, "--hitcount", low=0),
        rttl="--rttl" in seen,
        reap="--reap" in seen,
        side=side,
        mask=_mask(seen["--mask"].value or "", family) if "--mask" in seen else ALL_ONES_MASK,
        invert=seen[command_name].inverted,
    )


def _name(seen: Mapping[str, RecentOption]) -> str:
    option = seen.get("--name")
    if option is None or option.value is None:
        return "DEFAULT"
    # iptables copies the name into a 200-byte field: silently cut to 199 bytes
    # (a character cut in half keeps its first bytes, as the kernel does).
    return _name_bytes(option.value)[:MAX_NAME_LEN].decode("utf-8", "surrogateescape")


def _name_bytes(name: str) -> bytes:
    """The bytes of a name as iptables has them. Rule files are read with
    ``surrogateescape`` (see ``recentd.rules.lexer``): a Latin-1 byte is one byte."""
    return name.encode("utf-8", "surrogateescape")


def _uint(seen: Mapping[str, RecentOption], name: str, *, low: int) -> int:
    option = seen.get(name)
    if option is None or option.value is None:
        return 0
    value = parse_c_uint(option.value)
    if value is None or not low <= value <= _U32_MAX:
        raise RecentOptionError(
            f'{_EXT}: bad value for option "{name}", or out of range ({low}-{_U32_MAX}).',
            option=name,
        )
    return value


def parse_c_uint(text: str) -> int | None:
    """Read an unsigned integer as ``strtoumax(text, &end, 0)`` does, whole string only.

    Leading white space and ``+`` are allowed, ``0x`` means hex and a leading ``0``
    octal; a minus sign or trailing characters make it invalid (``None``).
    """
    body = text.lstrip(" \t\n\r\v\f")
    if body.startswith("-"):
        return None
    body = body.removeprefix("+")
    if body[:2].lower() == "0x":
        digits, base = body[2:], 16
    elif body.startswith("0") and len(body) > 1:
        digits, base = body[1:], 8
    else:
        digits, base = body, 10
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    return int(digits, base)


def _mask(text: str, family: int) -> int:
    """``--mask`` as libxtables reads a host: numeric in the rule's family.

    iptables resolves it with getaddrinfo, so ``24`` is ``0.0.0.24`` and
    ``localhost`` works; recentd accepts the numeric forms and ``localhost`` but
    never asks DNS. For IPv4 only the first 4 of 16 bytes are set: the other 12
    are zero, unlike the default mask (the quirk of spec §3.1, kept as is).
    """
    if family == _FAMILY_V4:
        packed = _inet_aton(text) if text != "localhost" else bytes([127, 0, 0, 1])
        if packed is None:
            raise RecentOptionError("getaddrinfo: Name or service not known", option="--mask")
        return int.from_bytes(packed + bytes(12), "big")
    try:
        return int(ipaddress.IPv6Address("::1" if text == "localhost" else text))
    except ValueError:
        raise RecentOptionError("getaddrinfo: Name or service not known", option="--mask") from None


def _inet_aton(text: str) -> bytes | None:
    """The classic ``inet_aton`` forms: ``a``, ``a.b``, ``a.b.c``, ``a.b.c.d``, hex and octal."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_aton_part(part) for part in parts]
    if any(value is None for value in values):
        return None
    numbers = [value for value in values if value is not None]
    *head, last = numbers
    if any(value > 255 for value in head) or last >= 256 ** (5 - len(numbers)):
        return None
    return bytes(head) + last.to_bytes(5 - len(numbers), "big")


def _aton_part(part: str) -> int | None:
    if not part or part[0] in "+- \t":
        return None
    return parse_c_uint(part)


def check_recent(match: RecentMatch) -> None:
    """The kernel's checkentry (spec §3.2) for a match iptables accepted.

    Raises:
        RecentOptionError: ``origin="kernel"``; the message is what dmesg would say
            (or a description where the kernel says nothing).
    """
    if match.command in (Command.SET, Command.REMOVE) and (
        match.seconds or match.hitcount or match.rttl or match.reap
    ):
        raise _kernel(
            f"xt_recent: {match.command.option} cannot be combined with "
            "--seconds, --hitcount, --rttl or --reap (EINVAL)",
            option=match.command.option,
        )
    if match.reap and not match.seconds:
        raise _kernel("xt_recent: --reap requires --seconds (EINVAL)", option="--reap")
    if match.hitcount >= MAX_NSTAMPS:
        raise _kernel(
            f"xt_recent: hitcount ({match.hitcount}) is larger than allowed maximum "
            f"({MAX_NSTAMPS - 1})",
            option="--hitcount",
        )
    check_table_name(match.name)


def check_table_name(name: str) -> None:
    """The kernel's name rule for /proc entries (xt_check_proc_name)."""
    if not name or name in (".", "..") or "/" in name:
        raise _kernel(f"xt_recent: invalid table name {name!r} (EINVAL)", option="--name")
    if len(_name_bytes(name)) > MAX_NAME_LEN:
        raise _kernel(f"xt_recent: table name too long (ENAMETOOLONG): {name!r}", option="--name")


def _kernel(message: str, *, option: str) -> RecentOptionError:
    return RecentOptionError(message, option=option, origin="kernel")
