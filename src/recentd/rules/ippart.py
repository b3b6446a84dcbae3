"""The IP part of a rule: ``-s -d -i -o -p -f`` as iptables validates them.

Rules: ``-s``/``-d`` take comma lists (``!`` only with one network); a zero mask
means "any" unless inverted; ``-o`` is refused in INPUT/PREROUTING and ``-i`` in
OUTPUT/POSTROUTING; interface names are at most 15 characters (``+`` is a
prefix wildcard, and a bare ``+`` – even inverted – matches every interface, so
iptables drops it from the rule); ``-f`` exists for IPv4 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recentd.errors import RuleError
from recentd.rules.model import Net
from recentd.rules.netaddr import parse_nets, parse_protocol


def ip_part(
    given: Mapping[str, tuple[str, bool, int]], family: int, chain: str
) -> tuple[dict[str, Any], list[Net | None], list[Net | None]]:
    """The IpSpec fields and the source/destination lists (one rule per pair).

    ``given`` maps ``-s``, ``-d``, ``-i``, ``-o``, ``-p``, ``-f`` to (value, ``!``, column).
    """
    base: dict[str, Any] = {}
    nets: dict[str, list[Net | None]] = {"-s": [None], "-d": [None]}
    for short, (value, inverted, column) in given.items():
        try:
            _ip_field(short, value, inverted, family=family, base=base, nets=nets, chain=chain)
        except RuleError as exc:
            exc.column = exc.column or column
            exc.option = exc.option or short
            raise
    return base, nets["-s"], nets["-d"]


_NO_OUT = frozenset({"INPUT", "PREROUTING"})
_NO_IN = frozenset({"OUTPUT", "POSTROUTING"})


def _ip_field(short: str, value: str, inverted: bool, *, family: int, base: dict[str, Any],
              nets: dict[str, list[Net | None]], chain: str) -> None:
    if short in ("-s", "-d"):
        parsed: list[Net | None] = [n if n.mask or inverted else None
                                    for n in parse_nets(value, family)]
        if inverted and len(parsed) > 1:
            raise RuleError("! not allowed with multiple source or destination IP addresses")
        nets[short] = parsed
        base["inv_src" if short == "-s" else "inv_dst"] = inverted
    elif short in ("-i", "-o"):
        if (short == "-o" and chain in _NO_OUT) or (short == "-i" and chain in _NO_IN):
            raise RuleError(f"Can't use {short} with {chain}")
        if len(value) > 15:
            raise RuleError(f"interface name `{value}' must be shorter than 16 characters")
        if value == "+":
            return  # iptables keeps no interface test at all (an empty mask), `!` included
        base["iif" if short == "-i" else "oif"] = value
        base["inv_iif" if short == "-i" else "inv_oif"] = inverted
    elif short == "-p":
        base["proto"], base["inv_proto"] = parse_protocol(value), inverted
        if base["proto"] == 0 and inverted:
            raise RuleError("rule would never match protocol")
    elif short == "-f":
        if family == 6:
            raise RuleError("`-f' is not supported in IPv6, use -m frag instead")
        base["fragment"] = not inverted
