"""``-m recent``: a thin adapter over :mod:`recentd.recent`, which owns the semantics.

Validation (iptables' and the kernel's), rendering and the per-packet algorithm
all live in the core; this module only forwards options, picks the address and
TTL the kernel would (spec §2.6) and holds a table reference per compiled rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from recentd.errors import RecentOptionError
from recentd.packets.packet import Packet
from recentd.recent import (
    RECENT_OPTIONS,
    Command,
    RecentMatch,
    RecentOption,
    Side,
    check_recent,
    parse_recent,
    render_recent_print,
    render_recent_save,
)
from recentd.rules.extensions.base import (
    F_DST,
    F_FAMILY,
    F_SRC,
    F_TTL,
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    PacketState,
    ParseContext,
)

KERNEL_EINVAL = "iptables: Invalid argument. Run `dmesg' for more information."


class RecentMatchExt(MatchExtension[RecentMatch]):
    name = "recent"
    common_checks = False
    options: ClassVar[Mapping[str, OptionSpec]] = {
        name: OptionSpec(1 if takes else 0, True) for name, takes in RECENT_OPTIONS.items()
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> RecentMatch:
        options = [RecentOption(o.name, o.args[0] if o.args else None, o.inverted) for o in given]
        match = parse_recent(options, ctx.family)
        try:
            check_recent(match)
        except RecentOptionError as exc:
            raise RecentOptionError(
                f"{KERNEL_EINVAL} (dmesg: {exc.message})", option=exc.option, origin="kernel"
            ) from exc
        return match

    def save(self, spec: RecentMatch, family: int) -> str:
        return render_recent_save(spec, family)

    def print(self, spec: RecentMatch, family: int) -> str:
        return render_recent_print(spec, family)

    def reads(self, spec: RecentMatch) -> frozenset[str]:
        side = "src" if spec.side is Side.SOURCE else "dst"
        return frozenset({"family", side, "ttl"} if spec.rttl else {"family", side})

    def volatile(self, spec: RecentMatch) -> bool:
        return spec.reap  # --reap looks at another entry (the LRU head) and its age

    def recent(self, spec: RecentMatch) -> RecentMatch:
        return spec

    def compile(self, spec: RecentMatch, env: CompileEnv) -> MatchFn:
        table = env.recent.acquire(spec)
        env.acquired.append(spec)
        evaluate, stable_until = table.evaluate, table.stable_until
        side: Literal[1, 2] = F_SRC if spec.side is Side.SOURCE else F_DST

        if spec.command is Command.SET:
            # Always changes the table, so the decision is never reused: nothing to note.
            def set_match(packet: Packet, state: PacketState) -> bool:
                # Hooks with an output device see the TTL as it was before forwarding.
                ttl = (packet[F_TTL] + 1) & 0xFF if state.forwarded else packet[F_TTL]
                return evaluate(spec, packet[F_FAMILY], packet[side], ttl, state.now)

            return set_match

        def match(packet: Packet, state: PacketState) -> bool:
            ttl = (packet[F_TTL] + 1) & 0xFF if state.forwarded else packet[F_TTL]
            family, addr = packet[F_FAMILY], packet[side]
            # What the answer rests on, for a decision that may be reused (rules.memo;
            # with --reap it is not: volatile(), which the compiled rule heeds).
            state.reads.append((stable_until, spec, family, addr, ttl))
            return evaluate(spec, family, addr, ttl, state.now)

        return match
