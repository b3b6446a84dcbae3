"""Targets with options: REJECT, LOG, NFLOG, MARK and CONNMARK.

ACCEPT, DROP, RETURN and jumps to user chains have no options and are handled by
the evaluator itself. LOG and NFLOG record a :class:`LogEvent` and let the packet
continue; MARK changes the mark later matches and the decision see; CONNMARK keeps
connection marks in :attr:`CompileEnv.connmarks`, keyed by the ``conn`` value the
caller passes with the packet (no key: no connection, so CONNMARK does nothing,
as the kernel does for untracked packets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import IPPROTO_TCP, Packet
from recentd.rules.extensions.base import (
    ACCEPT,
    CONTINUE,
    REJECT,
    CompileEnv,
    GivenOption,
    LogEvent,
    OptionSpec,
    PacketState,
    ParseContext,
    TargetExtension,
    TargetFn,
    parse_uint,
)
from recentd.rules.extensions.simple import parse_mark, save_string

del ACCEPT
FULL = 0xFFFFFFFF

REJECT_TYPES: Mapping[int, Mapping[str, str]] = {
    4: {"icmp-net-unreachable": "net-unreach", "icmp-host-unreachable": "host-unreach",
        "icmp-proto-unreachable": "proto-unreach", "icmp-port-unreachable": "port-unreach",
        "icmp-net-prohibited": "net-prohib", "icmp-host-prohibited": "host-prohib",
        "tcp-reset": "tcp-rst", "icmp-admin-prohibited": "admin-prohib"},
    6: {"icmp6-no-route": "no-route", "icmp6-adm-prohibited": "adm-prohibited",
        "icmp6-addr-unreachable": "addr-unreach", "icmp6-port-unreachable": "port-unreach",
        "tcp-reset": "tcp-rst", "icmp6-policy-fail": "policy-fail",
        "icmp6-reject-route": "reject-route"},
}
DEFAULT_REJECT = {4: "icmp-port-unreachable", 6: "icmp6-port-unreachable"}


class RejectTarget(TargetExtension[str]):
    name = "REJECT"
    tables = frozenset({"filter"})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--reject-with": OptionSpec(1, False, "the ICMP error or tcp-reset to answer with"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> str:
        if not given:
            return DEFAULT_REJECT[ctx.family]
        text = given[0].value
        for canonical, alias in REJECT_TYPES[ctx.family].items():
            if text in (canonical, alias):
                if canonical == "tcp-reset" and (ctx.ip.proto != IPPROTO_TCP or ctx.ip.inv_proto):
                    raise RuleError("iptables: Invalid argument. Run `dmesg' for more "
                                    "information. (dmesg: TCP_RESET invalid for non-tcp)",
                                    option="--reject-with")
                return canonical
        raise RuleError(f'unknown reject type "{text}"; supported: '
                        f'{", ".join(REJECT_TYPES[ctx.family])}', option="--reject-with")

    def save(self, spec: str, family: int) -> str:
        return f" --reject-with {spec}"

    def print(self, spec: str, family: int) -> str:
        return f" reject-with {spec}"

    def reads(self, spec: str) -> frozenset[str]:
        return frozenset()

    def compile(self, spec: str, env: CompileEnv) -> TargetFn:
        def reject(packet: Packet, state: PacketState) -> int:
            state.reject = spec
            return REJECT

        return reject


LOG_LEVELS = {"emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
              "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7}
LOG_FLAGS = {"--log-tcp-sequence": 1, "--log-tcp-options": 2, "--log-ip-options": 4,
             "--log-uid": 8, "--log-macdecode": 0x20}


@dataclass(frozen=True, slots=True)
class LogSpec:
    level: int = 4
    prefix: str = ""
    flags: int = 0


def _log_event(name: str, prefix: str, level: int, group: int) -> TargetFn:
    def log(packet: Packet, state: PacketState) -> int:
        table, chain, rule = state.position
        state.events.append(LogEvent(name, prefix, level, group, table, chain, rule))
        return CONTINUE

    return log


class LogTarget(TargetExtension[LogSpec]):
    name = "LOG"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--log-level": OptionSpec(1, False, "syslog level 0-7 or name (default warning)"),
        "--log-prefix": OptionSpec(1, False, "text before the message, at most 29 characters"),
        **{flag: OptionSpec(0, False, "log more fields") for flag in LOG_FLAGS},
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> LogSpec:
        level, prefix, flags = 4, "", 0
        for option in given:
            if option.name == "--log-level":
                text = option.value.lower()
                level = LOG_LEVELS[text] if text in LOG_LEVELS else parse_uint(
                    text, 0, 7, option=option.name, ext=self.name)
            elif option.name == "--log-prefix":
                prefix = option.value[:29]  # iptables silently truncates to the kernel's size
            else:
                flags |= LOG_FLAGS[option.name]
        return LogSpec(level, prefix, flags)

    def save(self, spec: LogSpec, family: int) -> str:
        text = f" --log-prefix{save_string(spec.prefix)}" if spec.prefix else ""
        if spec.level != 4:
            text += f" --log-level {spec.level}"
        return text + "".join(f" {name}" for name, bit in LOG_FLAGS.items() if spec.flags & bit)

    def print(self, spec: LogSpec, family: int) -> str:
        text = f" LOG flags {spec.flags} level {spec.level}"
        return f'{text} prefix "{spec.prefix}"' if spec.prefix else text

    def reads(self, spec: LogSpec) -> frozenset[str]:
        return frozenset()  # its event makes the decision one that is never reused

    def compile(self, spec: LogSpec, env: CompileEnv) -> TargetFn:
        return _log_event("LOG", spec.prefix, spec.level, 0)


@dataclass(frozen=True, slots=True)
class NflogSpec:
    group: int = 0
    prefix: str = ""
    range: int = 0
    threshold: int = 1


class NflogTarget(TargetExtension[NflogSpec]):
    name = "NFLOG"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--nflog-group": OptionSpec(1, False, "netlink group 0-65535"),
        "--nflog-prefix": OptionSpec(1, False, "text, at most 63 characters"),
        "--nflog-range": OptionSpec(1, False, "bytes to copy (deprecated)"),
        "--nflog-threshold": OptionSpec(1, False, "packets to queue before sending"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> NflogSpec:
        values = {o.name: o.value for o in given}
        prefix = values.get("--nflog-prefix", "")
        if len(prefix) > 63:
            raise self.error("Maximum length 63 for --nflog-prefix", "--nflog-prefix")

        def number(option: str, low: int, high: int, default: int) -> int:
            if option not in values:
                return default
            return parse_uint(values[option], low, high, option=option, ext=self.name)

        return NflogSpec(number("--nflog-group", 0, 65535, 0), prefix,
                         number("--nflog-range", 0, FULL, 0),
                         number("--nflog-threshold", 1, 65535, 1))

    def _parts(self, spec: NflogSpec, dashes: str) -> str:
        text = f" {dashes}nflog-prefix{save_string(spec.prefix)}" if spec.prefix else ""
        if spec.group:
            text += f" {dashes}nflog-group {spec.group}"
        if spec.range:
            text += f" {dashes}nflog-range {spec.range}"
        if spec.threshold != 1:
            text += f" {dashes}nflog-threshold {spec.threshold}"
        return text

    def save(self, spec: NflogSpec, family: int) -> str:
        return self._parts(spec, "--")

    def print(self, spec: NflogSpec, family: int) -> str:
        return self._parts(spec, "")

    def reads(self, spec: NflogSpec) -> frozenset[str]:
        return frozenset()  # its event makes the decision one that is never reused

    def compile(self, spec: NflogSpec, env: CompileEnv) -> TargetFn:
        return _log_event("NFLOG", spec.prefix, 0, spec.group)


@dataclass(frozen=True, slots=True)
class XMark:
    """``(old & ~mask) ^ value``; ``mode`` is "set", "save" or "restore" (CONNMARK)."""

    value: int = 0
    mask: int = FULL
    mode: str = "set"
    nfmask: int = FULL
    ctmask: int = FULL


_SETTERS = ("--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark")


def parse_setter(option: GivenOption, ext: str) -> XMark:
    """The five MARK/CONNMARK spellings, reduced to xset as libxtables does."""
    value, mask = parse_mark(option.value, option.name, ext)
    if option.name == "--set-xmark":
        return XMark(value, FULL if mask is None else mask)
    if option.name == "--set-mark":
        return XMark(value, value | (FULL if mask is None else mask))
    if mask is not None:
        raise RuleError(f"{ext}: {option.name} takes no mask", option=option.name)
    return {"--and-mark": XMark(0, ~value & FULL), "--or-mark": XMark(value, value),
            "--xor-mark": XMark(value, 0)}[option.name]


def print_xset(label: str, spec: XMark) -> str:
    if spec.value == 0:
        return f" {label} and 0x{~spec.mask & FULL:x}"
    if spec.value == spec.mask:
        return f" {label} or 0x{spec.value:x}"
    if spec.mask == 0:
        return f" {label} xor 0x{spec.value:x}"
    if spec.mask == FULL:
        return f" {label} set 0x{spec.value:x}"
    return f" {label} xset 0x{spec.value:x}/0x{spec.mask:x}"


class MarkTarget(TargetExtension[XMark]):
    name = "MARK"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        name: OptionSpec(1, False, "VALUE[/MASK] (and/or/xor: VALUE)") for name in _SETTERS
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> XMark:
        if len(given) != 1:
            raise self.error("exactly one of " + ", ".join(_SETTERS) + " is required")
        return parse_setter(given[0], self.name)

    def save(self, spec: XMark, family: int) -> str:
        return f" --set-xmark 0x{spec.value:x}/0x{spec.mask:x}"

    def print(self, spec: XMark, family: int) -> str:
        return print_xset("MARK", spec)

    def mark_bits(self, spec: XMark) -> int:
        return spec.value

    def reads(self, spec: XMark) -> frozenset[str]:
        return frozenset({"mark"})

    def compile(self, spec: XMark, env: CompileEnv) -> TargetFn:
        keep, value = ~spec.mask & FULL, spec.value

        def mark(packet: Packet, state: PacketState) -> int:
            state.mark = (state.mark & keep) ^ value
            return CONTINUE

        return mark
