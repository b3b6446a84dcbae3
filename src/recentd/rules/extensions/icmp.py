"""``-m icmp --icmp-type`` and ``-m icmp6 --icmpv6-type``: type, optional code range.

Rules: a type is a name from iptables' own tables or ``TYPE[/CODE]``; ``any``
(type 255 for ICMP) matches every type; the code range is 0–255 unless a name or
``/CODE`` narrows it. Saved numerically, printed as ``icmptype 3 code 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, Packet
from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    PacketState,
    ParseContext,
)

ICMP_NAMES: Mapping[str, tuple[int, int, int]] = {
    "any": (255, 0, 255), "echo-reply": (0, 0, 255), "pong": (0, 0, 255),
    "destination-unreachable": (3, 0, 255), "network-unreachable": (3, 0, 0),
    "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4),
    "source-route-failed": (3, 5, 5), "network-prohibited": (3, 9, 9),
    "host-prohibited": (3, 10, 10), "communication-prohibited": (3, 13, 13),
    "source-quench": (4, 0, 255), "redirect": (5, 0, 255), "echo-request": (8, 0, 255),
    "ping": (8, 0, 255), "router-advertisement": (9, 0, 255),
    "router-solicitation": (10, 0, 255), "time-exceeded": (11, 0, 255),
    "ttl-exceeded": (11, 0, 255),
    "parameter-problem": (12, 0, 255), "timestamp-request": (13, 0, 255),
    "timestamp-reply": (14, 0, 255), "address-mask-request": (17, 0, 255),
    "address-mask-reply": (18, 0, 255),
}
ICMPV6_NAMES: Mapping[str, tuple[int, int, int]] = {
    "destination-unreachable": (1, 0, 255), "no-route": (1, 0, 0),
    "communication-prohibited": (1, 1, 1), "address-unreachable": (1, 3, 3),
    "port-unreachable": (1, 4, 4), "packet-too-big": (2, 0, 255),
    "time-exceeded": (3, 0, 255), "ttl-exceeded": (3, 0, 255), "parameter-problem": (4, 0, 255),
    "echo-request": (128, 0, 255), "ping": (128, 0, 255), "echo-reply": (129, 0, 255),
    "pong": (129, 0, 255), "router-solicitation": (133, 0, 255),
    "router-advertisement": (134, 0, 255), "neighbour-solicitation": (135, 0, 255),
    "neighbor-solicitation": (135, 0, 255), "neighbour-advertisement": (136, 0, 255),
    "neighbor-advertisement": (136, 0, 255), "redirect": (137, 0, 255),
}


@dataclass(frozen=True, slots=True)
class IcmpSpec:
    type: int
    code_low: int = 0
    code_high: int = 255
    invert: bool = False


class _Icmp(MatchExtension[IcmpSpec]):
    proto: ClassVar[int]
    option: ClassVar[str]
    names: ClassVar[Mapping[str, tuple[int, int, int]]]
    label: ClassVar[str]

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> IcmpSpec:
        if ctx.ip.proto != self.proto or ctx.ip.inv_proto:
            raise RuleError(f"{self.name} match: only valid for protocol {self.proto}")
        if not given:
            return IcmpSpec(255 if self.proto == IPPROTO_ICMP else 0)
        option = given[0]
        return IcmpSpec(*self._type(option.value), option.inverted)

    def _type(self, text: str) -> tuple[int, int, int]:
        if text.lower() in self.names:
            return self.names[text.lower()]
        type_text, _, code_text = text.partition("/")
        if type_text.isdigit() and int(type_text) <= 255:
            if not code_text:
                return int(type_text), 0, 255
            if code_text.isdigit() and int(code_text) <= 255:
                return int(type_text), int(code_text), int(code_text)
        kind = "ICMPv6" if self.proto != IPPROTO_ICMP else "ICMP"
        raise RuleError(f"Invalid {kind} type `{text}'", option=self.option)

    def _is_any(self, spec: IcmpSpec) -> bool:
        return self.proto == IPPROTO_ICMP and spec.type == 255

    def save(self, spec: IcmpSpec, family: int) -> str:
        neg = " !" if spec.invert else ""
        if self._is_any(spec):
            return f"{neg} {self.option} any"
        code = "" if (spec.code_low, spec.code_high) == (0, 255) else f"/{spec.code_low}"
        return f"{neg} {self.option} {spec.type}{code}"

    def print(self, spec: IcmpSpec, family: int) -> str:
        text = f" {self.label}{' !' if spec.invert else ''}type {spec.type}"
        if spec.code_low == spec.code_high:
            text += f" code {spec.code_low}"
        elif (spec.code_low, spec.code_high) != (0, 255):
            text += f" codes {spec.code_low}-{spec.code_high}"
        return text

    def reads(self, spec: IcmpSpec) -> frozenset[str]:
        return frozenset({"icmp_type", "icmp_code", "frag_offset"})

    def compile(self, spec: IcmpSpec, env: CompileEnv) -> MatchFn:
        wanted, low, high, invert = spec.type, spec.code_low, spec.code_high, spec.invert
        every = self._is_any(spec)

        def match(packet: Packet, state: PacketState) -> bool:
            if packet.icmp_type < 0:
                return False
            hit = every or (packet.icmp_type == wanted and low <= packet.icmp_code <= high)
            return hit != invert

        return match


class IcmpMatch(_Icmp):
    name = "icmp"
    proto = IPPROTO_ICMP
    option = "--icmp-type"
    names = ICMP_NAMES
    label = "icmp"
    families = frozenset({4})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--icmp-type": OptionSpec(1, True, "TYPE[/CODE] or a name (echo-request …)"),
    }


class Icmp6Match(_Icmp):
    name = "icmp6"
    proto = IPPROTO_ICMPV6
    option = "--icmpv6-type"
    names = ICMPV6_NAMES
    label = "ipv6-icmp"
    families = frozenset({6})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--icmpv6-type": OptionSpec(1, True, "TYPE[/CODE] or a name (echo-request …)"),
    }
