"""``-m limit``: one token bucket per rule, reset whenever the rule set is replaced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import Packet
from recentd.recent import DEFAULT_HZ
from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    PacketState,
    ParseContext,
    by_name,
    parse_uint,
)
from recentd.rules.limit import (
    LIMIT_SCALE,
    Bucket,
    format_rate,
    limit_bucket_params,
    limit_cpj,
    parse_rate,
)

DEFAULT_AVG = LIMIT_SCALE * 3600 // 3  # 3/hour
DEFAULT_BURST = 5
MAX_BURST = 10_000


@dataclass(frozen=True, slots=True)
class LimitSpec:
    avg: int = DEFAULT_AVG
    burst: int = DEFAULT_BURST


class LimitMatch(MatchExtension[LimitSpec]):
    name = "limit"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--limit": OptionSpec(1, False, "average rate N/second|minute|hour|day (default 3/hour)"),
        "--limit-burst": OptionSpec(1, False, "bucket size in packets (default 5)"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> LimitSpec:
        options = by_name(given)
        avg, burst = DEFAULT_AVG, DEFAULT_BURST
        if "--limit" in options:
            text = options["--limit"].value
            avg, _ = parse_rate(text, LIMIT_SCALE, option="--limit")
        if "--limit-burst" in options:
            text = options["--limit-burst"].value
            burst = parse_uint(text, 0, MAX_BURST, option="--limit-burst", ext=self.name)
        if limit_bucket_params(avg, burst, DEFAULT_HZ) is None:
            raise RuleError(
                "iptables: Numerical result out of range. "
                f"(dmesg: xt_limit: Overflow, try lower: {avg}/{burst})",
                option="--limit",
            )
        return LimitSpec(avg, burst)

    def save(self, spec: LimitSpec, family: int) -> str:
        text = f" --limit {format_rate(spec.avg, LIMIT_SCALE)}"
        return text if spec.burst == DEFAULT_BURST else f"{text} --limit-burst {spec.burst}"

    def print(self, spec: LimitSpec, family: int) -> str:
        return f" limit: avg {format_rate(spec.avg, LIMIT_SCALE)} burst {spec.burst}"

    def compile(self, spec: LimitSpec, env: CompileEnv) -> MatchFn:
        params = limit_bucket_params(spec.avg, spec.burst, env.hz)
        if params is None:
            raise RuleError("iptables: Numerical result out of range.", option="--limit")
        bucket = Bucket(*params, limit_cpj(env.hz))

        def match(packet: Packet, state: PacketState) -> bool:
            return bucket.take(state.now)

        return match
