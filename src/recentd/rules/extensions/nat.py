"""NAT targets, left to the kernel: ``SNAT``, ``DNAT``, ``MASQUERADE``, ``REDIRECT``.

Rules: NAT rewrites addresses in the kernel's conntrack, which recentd neither
does nor sees, so these targets only live in the ``nat`` table of the kernel's own
rule set. Addresses are validated with :mod:`ipaddress` (``A[-B][:P[-Q]]``, IPv6 in
brackets when a port follows); a port needs ``-p tcp``/``udp``/``sctp``/``dccp``.
Saved and listed as iptables 1.8.9 does (``tests/data/rules/xt_nat.t``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import ClassVar

from recentd.errors import RuleError
from recentd.rules.extensions.base import (
    GivenOption,
    KernelOnlyTarget,
    OptionSpec,
    ParseContext,
)
from recentd.rules.extensions.kernel import Words, _save

_PORT_PROTOCOLS = frozenset({6, 17, 33, 132})


def check_ports(value: str, ctx: ParseContext, option: str) -> str:
    low, _, high = value.partition("-")
    if not (low.isdigit() and (not high or high.isdigit())) or int(low) > 65535 or (
            high and not int(low) <= int(high) <= 65535):
        raise RuleError(f'Invalid port:port syntax - use dash "{value}"', option=option)
    if ctx.ip.proto not in _PORT_PROTOCOLS or ctx.ip.inv_proto:
        raise RuleError("Need TCP, UDP, SCTP or DCCP with port specification", option=option)
    return value


def check_nat_range(value: str, ctx: ParseContext, option: str) -> str:
    """``A[-B][:P[-Q]]`` (IPv6: ``[A]:P`` or ``A-B``) validated, returned as written."""
    addresses, ports = value, ""
    if ctx.family == 6 and value.startswith("["):
        addresses, _, rest = value[1:].partition("]")
        ports = rest.removeprefix(":")
    elif ctx.family == 4 and ":" in value:
        addresses, _, ports = value.partition(":")
    try:
        for part in addresses.split("-"):
            ipaddress.ip_address(part)
            if ipaddress.ip_address(part).version != ctx.family:
                raise ValueError(part)
    except ValueError:
        raise RuleError(f"Bad IP address \"{addresses}\"", option=option) from None
    if ports:
        check_ports(ports, ctx, option)
    return value


class _NatTarget(KernelOnlyTarget[Words]):
    tables = frozenset({"nat"})
    #: -L words of each option ("" prints nothing but the value).
    listed: ClassVar[Mapping[str, str]] = {}

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        items = []
        for name in self.options:
            for option in (o for o in given if o.name == name):
                items.append((False, name, self.check(name, option.value, ctx)))
        return Words(tuple(items))

    def check(self, name: str, value: str, ctx: ParseContext) -> str:
        return value

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return "".join(f" {self.listed.get(name, name[2:])}{arg}" if name in self.listed
                       else f" {name[2:]}{f' {arg}' if arg else ''}"
                       for _, name, arg in spec.items)


_FLAGS: Mapping[str, OptionSpec] = {
    "--random": OptionSpec(0, False, "randomise the port"),
    "--random-fully": OptionSpec(0, False, "fully randomise the port"),
    "--persistent": OptionSpec(0, False, "the same address for a client"),
}


class SnatTarget(_NatTarget):
    name = "SNAT"
    reason = "SNAT is NAT"
    listed: ClassVar[Mapping[str, str]] = {"--to-source": "to:"}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--to-source": OptionSpec(1, False, "ADDR[-ADDR][:PORT[-PORT]]"), **_FLAGS,
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not any(o.name == f"--to-{self.direction}" for o in given):
            raise self.error(f"--to-{self.direction} is required")
        return super().parse(given, ctx)

    direction: ClassVar[str] = "source"

    def check(self, name: str, value: str, ctx: ParseContext) -> str:
        return check_nat_range(value, ctx, name) if name.startswith("--to-") else value


class DnatTarget(SnatTarget):
    name = "DNAT"
    reason = "DNAT is NAT"
    direction: ClassVar[str] = "destination"
    aliases: ClassVar[Mapping[str, str]] = {"--to": "--to-destination"}
    listed: ClassVar[Mapping[str, str]] = {"--to-destination": "to:"}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--to-destination": OptionSpec(1, False, "ADDR[-ADDR][:PORT[-PORT]]"),
        "--random": _FLAGS["--random"], "--persistent": _FLAGS["--persistent"],
    }


class MasqueradeTarget(_NatTarget):
    name = "MASQUERADE"
    reason = "MASQUERADE is NAT"
    listed: ClassVar[Mapping[str, str]] = {"--to-ports": "masq ports: "}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--to-ports": OptionSpec(1, False, "port or range"),
        "--random": _FLAGS["--random"], "--random-fully": _FLAGS["--random-fully"],
    }

    def check(self, name: str, value: str, ctx: ParseContext) -> str:
        return check_ports(value, ctx, name) if name == "--to-ports" else value


class RedirectTarget(MasqueradeTarget):
    name = "REDIRECT"
    reason = "REDIRECT is NAT"
    aliases: ClassVar[Mapping[str, str]] = {"--to-port": "--to-ports"}
    listed: ClassVar[Mapping[str, str]] = {"--to-ports": "redir ports "}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--to-ports": OptionSpec(1, False, "port or range"),
        "--random": _FLAGS["--random"],
    }
