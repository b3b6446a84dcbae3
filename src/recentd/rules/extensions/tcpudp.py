"""``-m tcp`` and ``-m udp`` (loaded implicitly by ``-p tcp --dport …``).

Rules: both need ``-p tcp``/``-p udp`` (the kernel refuses otherwise); ports are a
range each, ``!`` per option; ``--syn`` is ``--tcp-flags FIN,SYN,RST,ACK SYN`` and
is saved in that long form. A packet without a transport header (a non-first
fragment) matches neither, inverted or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, Packet
from recentd.rules.extensions.base import (
    F_DPORT,
    F_FRAG_OFFSET,
    F_SPORT,
    F_TCP_FLAGS,
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    PacketState,
    ParseContext,
)
from recentd.rules.extensions.ports import PortRange, print_range, range_match, save_range
from recentd.rules.netaddr import parse_port_range

#: TCP flag names in the order libxt_tcp prints them.
TCP_FLAGS: Mapping[str, int] = {
    "FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
}
_FLAG_WORDS = {**TCP_FLAGS, "ALL": 0x3F, "NONE": 0}
SYN_FLAGS = (0x17, 0x02)
ALIASES = {"--source-port": "--sport", "--destination-port": "--dport"}


@dataclass(frozen=True, slots=True)
class Flags:
    mask: int
    comp: int
    invert: bool = False


@dataclass(frozen=True, slots=True)
class PortsSpec:
    sport: PortRange | None = None
    dport: PortRange | None = None
    flags: Flags | None = None


def parse_flags(text: str) -> int:
    value = 0
    for word in text.split(","):
        if word.upper() not in _FLAG_WORDS:
            raise RuleError(f'Unknown TCP flag `{word}\'', option="--tcp-flags")
        value |= _FLAG_WORDS[word.upper()]
    return value


def flag_names(value: int) -> str:
    if value == 0:
        return "NONE"
    return ",".join(name for name, bit in TCP_FLAGS.items() if value & bit)


class _PortMatch(MatchExtension[PortsSpec]):
    proto: ClassVar[int]
    aliases: ClassVar[Mapping[str, str]] = ALIASES

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> PortsSpec:
        if ctx.ip.proto != self.proto or ctx.ip.inv_proto:
            raise RuleError(
                f"{self.name} match: only valid for protocol {self.proto} (use -p {self.name})",
                option=f"-m {self.name}",
            )
        values: dict[str, object] = {}
        for option in given:
            if option.name in ("--sport", "--dport"):
                low, high = parse_port_range(option.value, option.name)
                values[option.name] = PortRange(low, high, option.inverted)
            elif option.name == "--syn":
                values["--tcp-flags"] = Flags(*SYN_FLAGS, option.inverted)
            else:
                mask, comp = parse_flags(option.args[0]), parse_flags(option.args[1])
                values["--tcp-flags"] = Flags(mask, comp, option.inverted)
        return PortsSpec(values.get("--sport"), values.get("--dport"), values.get("--tcp-flags"))  # type: ignore[arg-type]

    def save(self, spec: PortsSpec, family: int) -> str:
        text = save_range("--sport", spec.sport) + save_range("--dport", spec.dport)
        if spec.flags is not None:
            flags = spec.flags
            text += f"{' !' if flags.invert else ''} --tcp-flags "
            text += f"{flag_names(flags.mask)} {flag_names(flags.comp)}"
        return text

    def print(self, spec: PortsSpec, family: int) -> str:
        text = f" {self.name}" + print_range("spt", spec.sport) + print_range("dpt", spec.dport)
        if spec.flags is not None:
            flags = spec.flags
            text += f" flags:{'!' if flags.invert else ''}0x{flags.mask:02X}/0x{flags.comp:02X}"
        return text

    def reads(self, spec: PortsSpec) -> frozenset[str]:
        used = (("sport", spec.sport), ("dport", spec.dport), ("tcp_flags", spec.flags))
        return frozenset({"frag_offset", *(name for name, given in used if given is not None)})

    def dports(self, spec: PortsSpec) -> tuple[tuple[int, int], ...] | None:
        dport = spec.dport
        return None if dport is None or dport.invert else ((dport.low, dport.high),)

    def compile(self, spec: PortsSpec, env: CompileEnv) -> MatchFn:
        tests: list[MatchFn] = []
        if spec.sport is not None:
            tests.append(range_match(F_SPORT, spec.sport))
        if spec.dport is not None:
            tests.append(range_match(F_DPORT, spec.dport))
        if spec.flags is not None:
            mask, comp, invert = spec.flags.mask, spec.flags.comp, spec.flags.invert
            tests.append(lambda p, s: p[F_TCP_FLAGS] >= 0
                         and ((p[F_TCP_FLAGS] & mask) == comp) != invert)
        if len(tests) == 1:
            return tests[0]
        if len(tests) == 2:  # e.g. --syn --dport 22: unrolled, one call less per test
            first, second = tests
            return lambda packet, state: (not packet[F_FRAG_OFFSET] and first(packet, state)
                                          and second(packet, state))
        frozen = tuple(tests)

        def match(packet: Packet, state: PacketState) -> bool:
            if packet[F_FRAG_OFFSET]:
                return False
            return all(test(packet, state) for test in frozen)

        return match


class TcpMatch(_PortMatch):
    name = "tcp"
    proto = IPPROTO_TCP
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--sport": OptionSpec(1, True, "source port or range N:M"),
        "--dport": OptionSpec(1, True, "destination port or range N:M"),
        "--tcp-flags": OptionSpec(2, True, "MASK COMP, e.g. SYN,ACK ACK"),
        "--syn": OptionSpec(0, True, "same as --tcp-flags FIN,SYN,RST,ACK SYN"),
    }


class UdpMatch(_PortMatch):
    name = "udp"
    proto = IPPROTO_UDP
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--sport": OptionSpec(1, True, "source port or range N:M"),
        "--dport": OptionSpec(1, True, "destination port or range N:M"),
    }
