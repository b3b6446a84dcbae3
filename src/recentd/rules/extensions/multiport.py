"""``-m multiport``: up to 15 ports or ranges (a range counts as two), one direction.

Rules: needs ``-p`` tcp, udp, udplite, sctp or dccp; exactly one of ``--sports``,
``--dports``, ``--ports`` (either side); ``!`` inverts the whole list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import Packet
from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    PacketState,
    ParseContext,
)
from recentd.rules.netaddr import parse_port_range

PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
MAX_PORTS = 15


@dataclass(frozen=True, slots=True)
class MultiportSpec:
    side: str  # "sports", "dports" or "ports"
    ranges: tuple[tuple[int, int], ...]
    invert: bool = False


class MultiportMatch(MatchExtension[MultiportSpec]):
    name = "multiport"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--sports": OptionSpec(1, True, "source ports: 22,80,1000:2000"),
        "--dports": OptionSpec(1, True, "destination ports: 22,80,1000:2000"),
        "--ports": OptionSpec(1, True, "either side: 22,80,1000:2000"),
    }
    aliases: ClassVar[Mapping[str, str]] = {
        "--source-ports": "--sports",
        "--destination-ports": "--dports",
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> MultiportSpec:
        if ctx.ip.proto not in PORT_PROTOCOLS or ctx.ip.inv_proto:
            raise self.error("multiport needs `-p tcp', `-p udp', `-p udplite', "
                             "`-p sctp' or `-p dccp'")
        if len(given) != 1:
            raise self.error("exactly one of --sports, --dports, --ports is required")
        option = given[0]
        ranges = tuple(parse_port_range(part, option.name) for part in option.value.split(","))
        if sum(1 if low == high else 2 for low, high in ranges) > MAX_PORTS:
            raise RuleError("too many ports specified", option=option.name)
        return MultiportSpec(option.name[2:], ranges, option.inverted)

    @staticmethod
    def _ports(spec: MultiportSpec) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in spec.ranges)

    def save(self, spec: MultiportSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} --{spec.side} {self._ports(spec)}"

    def print(self, spec: MultiportSpec, family: int) -> str:
        return f" multiport {spec.side} {' !' if spec.invert else ''}{self._ports(spec)}"

    def reads(self, spec: MultiportSpec) -> frozenset[str]:
        sides = {"sports": {"sport"}, "dports": {"dport"}}.get(spec.side, {"sport", "dport"})
        return frozenset({"frag_offset", *sides})

    def dports(self, spec: MultiportSpec) -> tuple[tuple[int, int], ...] | None:
        return spec.ranges if spec.side == "dports" and not spec.invert else None

    def compile(self, spec: MultiportSpec, env: CompileEnv) -> MatchFn:
        ranges, invert, side = spec.ranges, spec.invert, spec.side

        def hit(port: int) -> bool:
            return any(lo <= port <= hi for lo, hi in ranges)

        def match(packet: Packet, state: PacketState) -> bool:
            # A packet has both ports or neither: test the one the rule reads, so that
            # a remembered decision's key need not hold the other (rules.memo).
            if (packet.dport if side == "dports" else packet.sport) < 0 or packet.frag_offset:
                return False
            if side == "sports":
                found = hit(packet.sport)
            elif side == "dports":
                found = hit(packet.dport)
            else:
                found = hit(packet.sport) or hit(packet.dport)
            return found != invert

        return match
