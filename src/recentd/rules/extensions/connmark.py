"""``-j CONNMARK``: set, save or restore the connection mark (revision 1 rendering)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from recentd.packets.packet import Packet
from recentd.rules.extensions.base import (
    CONTINUE,
    CompileEnv,
    GivenOption,
    OptionSpec,
    PacketState,
    ParseContext,
    TargetExtension,
    TargetFn,
    parse_uint,
)
from recentd.rules.extensions.targets import _SETTERS, FULL, XMark, parse_setter, print_xset

_MASKS = ("--nfmask", "--ctmask", "--mask")


class ConnmarkTarget(TargetExtension[XMark]):
    name = "CONNMARK"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        **{name: OptionSpec(1, False, "VALUE[/MASK] on the connection mark") for name in _SETTERS},
        "--save-mark": OptionSpec(0, False, "copy the packet mark to the connection"),
        "--restore-mark": OptionSpec(0, False, "copy the connection mark to the packet"),
        **{name: OptionSpec(1, False, "bits to copy (save/restore)") for name in _MASKS},
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> XMark:
        modes = [o for o in given if o.name not in _MASKS]
        if len(modes) != 1:
            raise self.error("exactly one of --set-xmark, --set-mark, --and-mark, --or-mark, "
                             "--xor-mark, --save-mark, --restore-mark is required")
        if modes[0].name in _SETTERS:
            if len(given) != 1:
                raise self.error("masks apply only to --save-mark and --restore-mark")
            return parse_setter(modes[0], self.name)
        masks = {o.name: parse_uint(o.value, 0, FULL, option=o.name, ext=self.name)
                 for o in given if o.name in _MASKS}
        both = masks.get("--mask", FULL)
        return XMark(0, 0, modes[0].name[2:-5], masks.get("--nfmask", both),
                     masks.get("--ctmask", both))

    def mark_bits(self, spec: XMark) -> int:
        # set: the value's bits; save/restore copy marks (their bits are set elsewhere)
        return spec.value

    def save(self, spec: XMark, family: int) -> str:
        if spec.mode == "set":
            return f" --set-xmark 0x{spec.value:x}/0x{spec.mask:x}"
        return f" --{spec.mode}-mark --nfmask 0x{spec.nfmask:x} --ctmask 0x{spec.ctmask:x}"

    def print(self, spec: XMark, family: int) -> str:
        if spec.mode == "set":
            return print_xset("CONNMARK", spec)
        first, second = (spec.nfmask, spec.ctmask) if spec.mode == "save" else (
            spec.ctmask, spec.nfmask)
        names = ("nfmask", "ctmask") if spec.mode == "save" else ("ctmask", "nfmask")
        if first == second == FULL:
            return f" CONNMARK {spec.mode}"
        if first == second:
            return f" CONNMARK {spec.mode} mask 0x{first:x}"
        return f" CONNMARK {spec.mode} {names[0]} 0x{first:x} {names[1]} ~0x{second:x}"

    def compile(self, spec: XMark, env: CompileEnv) -> TargetFn:
        marks = env.connmarks
        value, mask, mode = spec.value, spec.mask, spec.mode
        nfmask, ctmask = spec.nfmask, spec.ctmask

        def connmark(packet: Packet, state: PacketState) -> int:
            conn = state.conn
            if conn is None:
                return CONTINUE
            old = marks.get(conn, 0)
            if mode == "set":
                marks[conn] = (old & ~mask & FULL) ^ value
            elif mode == "save":
                marks[conn] = (old & ~ctmask & FULL) ^ (state.mark & nfmask)
            else:
                state.mark = (state.mark & ~nfmask & FULL) ^ (old & ctmask)
            return CONTINUE

        return connmark
