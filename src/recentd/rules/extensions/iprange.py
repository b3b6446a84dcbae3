"""``-m iprange --src-range A-B --dst-range A-B``: inclusive address ranges."""

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
from recentd.rules.netaddr import address_text, parse_address


@dataclass(frozen=True, slots=True)
class Range:
    low: int
    high: int
    invert: bool = False


@dataclass(frozen=True, slots=True)
class IprangeSpec:
    src: Range | None = None
    dst: Range | None = None


class IprangeMatch(MatchExtension[IprangeSpec]):
    name = "iprange"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--src-range": OptionSpec(1, True, "FROM-TO, e.g. 10.0.0.1-10.0.0.9"),
        "--dst-range": OptionSpec(1, True, "FROM-TO"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> IprangeSpec:
        ranges: dict[str, Range] = {}
        for option in given:
            low_text, _, high_text = option.value.partition("-")
            try:
                low = parse_address(low_text, ctx.family)
                high = parse_address(high_text or low_text, ctx.family)
            except RuleError as exc:
                raise RuleError(f"iprange: {exc.message}", option=option.name) from None
            ranges[option.name] = Range(low, high, option.inverted)
        if not ranges:
            raise self.error("option --src-range or --dst-range is required")
        return IprangeSpec(ranges.get("--src-range"), ranges.get("--dst-range"))

    @staticmethod
    def _text(rng: Range, family: int) -> str:
        return f"{address_text(rng.low, family)}-{address_text(rng.high, family)}"

    def save(self, spec: IprangeSpec, family: int) -> str:
        text = ""
        for option, rng in (("--src-range", spec.src), ("--dst-range", spec.dst)):
            if rng is not None:
                text += f"{' !' if rng.invert else ''} {option} {self._text(rng, family)}"
        return text

    def print(self, spec: IprangeSpec, family: int) -> str:
        text = ""
        for label, rng in (("source", spec.src), ("destination", spec.dst)):
            if rng is not None:
                text += f" {label} IP range{' !' if rng.invert else ''} {self._text(rng, family)}"
        return text

    def reads(self, spec: IprangeSpec) -> frozenset[str]:
        return frozenset({"src", "dst"})

    def compile(self, spec: IprangeSpec, env: CompileEnv) -> MatchFn:
        src, dst = spec.src, spec.dst

        def match(packet: Packet, state: PacketState) -> bool:
            if src is not None and (src.low <= packet.src <= src.high) == src.invert:
                return False
            return dst is None or (dst.low <= packet.dst <= dst.high) != dst.invert

        return match
