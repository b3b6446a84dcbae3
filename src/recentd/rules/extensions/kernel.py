"""Matches and targets recentd parses and renders exactly, and leaves to the kernel.

Rules: each needs something only the kernel has — its routing table (``addrtype``),
the link layer (``pkttype``), the full conntrack table (``connlimit``), NAT and
packet rewriting (``MASQUERADE``, ``REDIRECT``, ``CT``, ``CHECKSUM``) —
so a rule holding one is never evaluated in user space: it stays in the kernel's
own rule set (:mod:`recentd.rules.split`), and compiling it is refused, naming it.
``statistic``'s random mode is the kernel's own random draw, left to the kernel too.

Each is an option table plus its canonical text as iptables 1.8.9 prints it
(checked against iptables-legacy in ``tests/data/rules/xt_kernel.t``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.rules.extensions.base import (
    GivenOption,
    KernelOnlyMatch,
    KernelOnlyTarget,
    OptionSpec,
    ParseContext,
    parse_uint,
)

ADDRTYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
             "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")


@dataclass(frozen=True, slots=True)
class Words:
    """The options as iptables saves them, in save order: (``!``, name, argument)."""

    items: tuple[tuple[bool, str, str], ...]


def _words(items: Sequence[tuple[bool, str, str]]) -> Words:
    return Words(tuple(items))


def _save(spec: Words) -> str:
    return "".join(f"{' !' if inv else ''} {name}{f' {arg}' if arg else ''}"
                   for inv, name, arg in spec.items)


class _SavedAsGiven(KernelOnlyMatch[Words]):
    """A match saved in its option table's order (libxtables' order for these)."""

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return _save(spec)


class AddrtypeMatch(_SavedAsGiven):
    def print(self, spec: Words, family: int) -> str:
        words = {"--src-type": "src-type", "--dst-type": "dst-type",
                 "--limit-iface-in": "limit-in", "--limit-iface-out": "limit-out"}
        return " ADDRTYPE match" + "".join(
            f" {words[name]}" + (f" {'!' if inv else ''}{arg}" if arg else "")
            for inv, name, arg in spec.items)

    name = "addrtype"
    reason = "addrtype needs the kernel's routing table"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--src-type": OptionSpec(1, True, "comma list of address types"),
        "--dst-type": OptionSpec(1, True, "comma list of address types"),
        "--limit-iface-in": OptionSpec(0, False, "only the incoming interface"),
        "--limit-iface-out": OptionSpec(0, False, "only the outgoing interface"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not any(o.name in ("--src-type", "--dst-type") for o in given):
            raise self.error("you must specify --src-type or --dst-type")
        items = []
        for name in self.options:
            for option in (o for o in given if o.name == name):
                arg = ""
                if option.args:
                    types = option.value.upper().split(",")
                    bad = [t for t in types if t not in ADDRTYPES]
                    if bad:
                        raise self.error(f"addrtype: bad type `{bad[0]}'", name)
                    arg = ",".join(t for t in ADDRTYPES if t in types)
                items.append((option.inverted, name, arg))
        return _words(items)


class PkttypeMatch(_SavedAsGiven):
    name = "pkttype"
    reason = "pkttype needs the link layer"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--pkt-type": OptionSpec(1, True, "unicast, broadcast or multicast"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not given:
            raise self.error("missing mandatory option `--pkt-type'", "--pkt-type")
        kind = given[0].value.lower()
        if kind not in ("unicast", "broadcast", "multicast", "host", "otherhost", "outgoing",
                        "loopback"):
            raise self.error(f"Bad packet type '{given[0].value}'", "--pkt-type")
        kind = {"host": "unicast"}.get(kind, kind)
        return _words([(given[0].inverted, "--pkt-type", kind)])

    def print(self, spec: Words, family: int) -> str:
        ((inv, _, kind),) = spec.items
        return f" PKTTYPE {'!' if inv else ''}= {kind}"


class ConnlimitMatch(KernelOnlyMatch[Words]):
    name = "connlimit"
    reason = "connlimit counts the kernel's conntrack entries"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--connlimit-upto": OptionSpec(1, True, "match while at most N connections"),
        "--connlimit-above": OptionSpec(1, True, "match above N connections"),
        "--connlimit-mask": OptionSpec(1, False, "group addresses by this prefix length"),
        "--connlimit-saddr": OptionSpec(0, False, "count per source (default)"),
        "--connlimit-daddr": OptionSpec(0, False, "count per destination"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        opts = {o.name: o for o in given}
        limit = opts.get("--connlimit-upto") or opts.get("--connlimit-above")
        if limit is None:
            raise self.error('option "--connlimit-above" or "--connlimit-upto" is required')
        count = parse_uint(limit.value, 0, 0xFFFFFFFF, option=limit.name, ext=self.name)
        above = (limit.name == "--connlimit-above") != limit.inverted
        width = 32 if ctx.family == 4 else 128
        mask = width
        if "--connlimit-mask" in opts:
            mask = parse_uint(opts["--connlimit-mask"].value, 0, width,
                              option="--connlimit-mask", ext=self.name)
        side = "--connlimit-daddr" if "--connlimit-daddr" in opts else "--connlimit-saddr"
        return _words([(False, "--connlimit-above" if above else "--connlimit-upto", str(count)),
                       (False, "--connlimit-mask", str(mask)), (False, side, "")])

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        (_, rel, count), (_, _, mask), (_, side, _) = spec.items
        word = ">" if rel.endswith("above") else "<="
        where = "dst" if side.endswith("daddr") else "src"
        return f" #conn {where}/{mask} {word} {count}"


class StatisticMatch(KernelOnlyMatch[Words]):
    name = "statistic"
    reason = "statistic draws the kernel's random numbers and counts its packets"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--mode": OptionSpec(1, False, "random or nth"),
        "--probability": OptionSpec(1, True, "random: the chance of a match, 0 to 1"),
        "--every": OptionSpec(1, True, "nth: match one packet in N"),
        "--packet": OptionSpec(1, False, "nth: the counter's start"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        opts = {o.name: o for o in given}
        mode = opts.get("--mode")
        if mode is None or mode.value not in ("random", "nth"):
            raise self.error("option \"--mode\" must be random or nth", "--mode")
        if mode.value == "random":
            return self._random(opts)
        return self._nth(opts)

    def _random(self, opts: Mapping[str, GivenOption]) -> Words:
        given = opts.get("--probability")
        if given is None or "--every" in opts or "--packet" in opts:
            raise self.error("--mode random needs --probability (and no --every/--packet)")
        try:
            chance = float(given.value)
        except ValueError:
            chance = -1.0
        if not 0 <= chance <= 1:
            raise self.error("--probability must be between 0 and 1", "--probability")
        # Stored as a 31-bit threshold; printed back from it (0.1 → 0.10000000009).
        shown = int(0x80000000 * chance + 0.5) / 0x80000000  # lround, then back
        return _words([(False, "--mode", "random"),
                       (given.inverted, "--probability", f"{shown:.11f}")])

    def _nth(self, opts: Mapping[str, GivenOption]) -> Words:
        every, packet = opts.get("--every"), opts.get("--packet")
        if every is None or packet is None or "--probability" in opts:
            raise self.error('option "--every" also requires "--packet".', "--every")
        count = parse_uint(every.value, 1, 0xFFFFFFFF, option="--every", ext=self.name)
        start = parse_uint(packet.value, 0, count - 1, option="--packet", ext=self.name)
        return _words([(False, "--mode", "nth"), (every.inverted, "--every", str(count)),
                       (False, "--packet", str(start))])

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return " statistic" + _save(spec).replace(" --", " ")


class _Target(KernelOnlyTarget[Words]):
    """A target saved as its options were given, in option-table order."""

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        items = []
        for name in self.options:
            for option in (o for o in given if o.name == name):
                items.append((False, name, self.check(name, option.value, ctx)))
        return _words(items)

    def check(self, name: str, value: str, ctx: ParseContext) -> str:
        return value

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return _save(spec).replace(" --", " ")


class CtTarget(_Target):
    def print(self, spec: Words, family: int) -> str:
        return " CT" + _save(spec).replace(" --", " ")

    name = "CT"
    reason = "CT acts on the kernel's conntrack"
    tables = frozenset({"raw"})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--notrack": OptionSpec(0, False, "do not track"),
        "--helper": OptionSpec(1, False, "conntrack helper"),
        "--zone": OptionSpec(1, False, "conntrack zone"),
    }


class NotrackTarget(_Target):
    name = "NOTRACK"
    reason = "NOTRACK acts on the kernel's conntrack"
    listed_as = "CT"  # the kernel's NOTRACK is CT --notrack: -L names it so
    tables = frozenset({"raw"})
    options: ClassVar[Mapping[str, OptionSpec]] = {}

    def print(self, spec: Words, family: int) -> str:
        return " NOTRACK"


class TtlTarget(_Target):
    name = "TTL"
    reason = "TTL rewrites packets"
    label: ClassVar[str] = "TTL"
    tables = frozenset({"mangle"})
    families = frozenset({4})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--ttl-set": OptionSpec(1, False, "set to N"),
        "--ttl-dec": OptionSpec(1, False, "decrement by N"),
        "--ttl-inc": OptionSpec(1, False, "increment by N"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if len(given) != 1:
            raise self.error(f"exactly one of {', '.join(self.options)} is required")
        low = 0 if given[0].name.endswith("set") else 1
        parse_uint(given[0].value, low, 255, option=given[0].name, ext=self.name)
        return super().parse(given, ctx)

    def print(self, spec: Words, family: int) -> str:
        ((_, name, arg),) = spec.items
        verb = {"set": "set to", "dec": "decrement by", "inc": "increment by"}[name[-3:]]
        return f" {self.label} {verb} {int(arg, 0)}"

    def save(self, spec: Words, family: int) -> str:
        ((_, name, arg),) = spec.items
        return f" {name} {int(arg, 0)}"


class HlTarget(TtlTarget):
    name = "HL"
    reason = "HL rewrites packets"
    label: ClassVar[str] = "HL"
    families = frozenset({6})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--hl-set": OptionSpec(1, False, "set to N"),
        "--hl-dec": OptionSpec(1, False, "decrement by N"),
        "--hl-inc": OptionSpec(1, False, "increment by N"),
    }


class SynproxyTarget(_Target):
    name = "SYNPROXY"
    reason = "SYNPROXY answers SYNs from the kernel"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--sack-perm": OptionSpec(0, False, "SACK permitted"),
        "--timestamp": OptionSpec(0, False, "timestamps"),
        "--wscale": OptionSpec(1, False, "window scale"),
        "--mss": OptionSpec(1, False, "maximum segment size"),
        "--ecn": OptionSpec(0, False, "ECN"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if ctx.ip.proto != 6 or ctx.ip.inv_proto:
            raise RuleError("iptables: Invalid argument. Run `dmesg' for more information. "
                            "(dmesg: SYNPROXY needs -p tcp)", option="-j")
        if ctx.chain in ("OUTPUT", "PREROUTING", "POSTROUTING"):
            raise RuleError("iptables: Invalid argument. Run `dmesg' for more information. "
                            "(dmesg: SYNPROXY is valid in INPUT and FORWARD only)", option="-j")
        for option in given:
            if option.args:
                high = 14 if option.name == "--wscale" else 65535
                parse_uint(option.value, 0, high, option=option.name, ext=self.name)
        return super().parse(given, ctx)

    def print(self, spec: Words, family: int) -> str:
        return " SYNPROXY" + _save(spec).replace(" --", " ") + " "


class ChecksumTarget(_Target):
    name = "CHECKSUM"
    reason = "CHECKSUM rewrites packets"
    tables = frozenset({"mangle"})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--checksum-fill": OptionSpec(0, False, "fill in the checksum"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not given:
            raise self.error("CHECKSUM target: Parameter --checksum-fill is required")
        return super().parse(given, ctx)

    def print(self, spec: Words, family: int) -> str:
        return " CHECKSUM fill"
