"""Small header matches: ``comment``, ``ttl``/``hl``, ``length`` and ``mark``.

Each is one comparison on one packet field; they share nothing but brevity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    ParseContext,
    parse_uint,
)
from recentd.rules.lexer import wire_cut

MAX_COMMENT = 255
_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def save_string(value: str) -> str:
    """libxtables' ``xtables_save_string``: bare if safe, else double-quoted."""
    if value and all(char in _NO_QUOTE for char in value):
        return f" {value}"
    escaped = "".join(f"\\{char}" if char in "\"\\'" else char for char in value)
    return f' "{escaped}"'


class CommentMatch(MatchExtension[str]):
    name = "comment"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--comment": OptionSpec(1, False, "free text, cut to its first 255 bytes"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> str:
        if not given:
            raise self.error("missing mandatory option `--comment'", "--comment")
        # iptables copies at most 255 bytes into the kernel's field and says nothing.
        return wire_cut(given[0].value, MAX_COMMENT)

    def save(self, spec: str, family: int) -> str:
        return " --comment" + save_string(spec)

    def print(self, spec: str, family: int) -> str:
        return f" /* {spec} */"

    def reads(self, spec: str) -> frozenset[str]:
        return frozenset()

    def compile(self, spec: str, env: CompileEnv) -> MatchFn:
        return lambda packet, state: True


@dataclass(frozen=True, slots=True)
class CompareSpec:
    op: str  # "eq", "ne", "lt", "gt"
    value: int


_OPS = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">"}


class TtlMatch(MatchExtension[CompareSpec]):
    """``-m ttl`` (IPv4 TTL); :class:`HlMatch` is the IPv6 hop-limit twin."""

    name = "ttl"
    label = "TTL"
    families = frozenset({4})
    #: libxt_ttl's old spelling, still accepted and saved as ``--ttl-eq``.
    aliases: ClassVar[Mapping[str, str]] = {"--ttl": "--ttl-eq"}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--ttl-eq": OptionSpec(1, True, "TTL equals N (! for not equal)"),
        "--ttl-lt": OptionSpec(1, False, "TTL below N"),
        "--ttl-gt": OptionSpec(1, False, "TTL above N"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> CompareSpec:
        if len(given) != 1:
            raise self.error(f"exactly one of {', '.join(self.options)} is required")
        option = given[0]
        value = parse_uint(option.value, 0, 255, option=option.name, ext=self.name)
        op = option.name.rsplit("-", 1)[1]
        return CompareSpec("ne" if option.inverted else op, value)

    def save(self, spec: CompareSpec, family: int) -> str:
        prefix = f"--{self.name}-"
        if spec.op == "ne":
            return f" ! {prefix}eq {spec.value}"
        return f" {prefix}{spec.op} {spec.value}"

    def print(self, spec: CompareSpec, family: int) -> str:
        return f" {self.label} match {self.label} {_OPS[spec.op]} {spec.value}"

    def reads(self, spec: CompareSpec) -> frozenset[str]:
        return frozenset({"ttl"})

    def compile(self, spec: CompareSpec, env: CompileEnv) -> MatchFn:
        value = spec.value
        tests: dict[str, MatchFn] = {
            "eq": lambda packet, state: packet.ttl == value,
            "ne": lambda packet, state: packet.ttl != value,
            "lt": lambda packet, state: packet.ttl < value,
            "gt": lambda packet, state: packet.ttl > value,
        }
        return tests[spec.op]


class HlMatch(TtlMatch):
    name = "hl"
    label = "HL"
    families = frozenset({6})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--hl-eq": OptionSpec(1, True, "hop limit equals N (! for not equal)"),
        "--hl-lt": OptionSpec(1, False, "hop limit below N"),
        "--hl-gt": OptionSpec(1, False, "hop limit above N"),
    }
    aliases: ClassVar[Mapping[str, str]] = {"--hl": "--hl-eq"}


@dataclass(frozen=True, slots=True)
class LengthSpec:
    low: int
    high: int
    invert: bool = False


class LengthMatch(MatchExtension[LengthSpec]):
    name = "length"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--length": OptionSpec(1, True, "IP packet length N or range N:M"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> LengthSpec:
        if not given:
            raise self.error("missing mandatory option `--length'", "--length")
        option = given[0]
        low_text, sep, high_text = option.value.partition(":")
        low = parse_uint(low_text or "0", 0, 65535, option="--length", ext=self.name)
        high = parse_uint(high_text or "65535", 0, 65535, option="--length", ext=self.name)
        if not sep:
            high = low
        if low > high:
            raise self.error(f'invalid length range "{option.value}"', "--length")
        return LengthSpec(low, high, option.inverted)

    @staticmethod
    def _text(spec: LengthSpec) -> str:
        return str(spec.low) if spec.low == spec.high else f"{spec.low}:{spec.high}"

    def save(self, spec: LengthSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} --length {self._text(spec)}"

    def print(self, spec: LengthSpec, family: int) -> str:
        return f" length {'!' if spec.invert else ''}{self._text(spec)}"

    def reads(self, spec: LengthSpec) -> frozenset[str]:
        return frozenset({"length"})

    def compile(self, spec: LengthSpec, env: CompileEnv) -> MatchFn:
        low, high, invert = spec.low, spec.high, spec.invert
        return lambda packet, state: (low <= packet.length <= high) != invert


@dataclass(frozen=True, slots=True)
class MarkSpec:
    value: int
    mask: int = 0xFFFFFFFF
    invert: bool = False


def parse_mark(text: str, option: str, ext: str) -> tuple[int, int | None]:
    """``VALUE[/MASK]`` as 32-bit unsigned numbers (mask None when absent)."""
    value_text, sep, mask_text = text.partition("/")
    value = parse_uint(value_text, 0, 0xFFFFFFFF, option=option, ext=ext)
    if not sep:
        return value, None
    return value, parse_uint(mask_text, 0, 0xFFFFFFFF, option=option, ext=ext)


class MarkMatch(MatchExtension[MarkSpec]):
    name = "mark"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--mark": OptionSpec(1, True, "VALUE[/MASK]: (nfmark & MASK) == VALUE"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> MarkSpec:
        if not given:
            raise self.error("missing mandatory option `--mark'", "--mark")
        value, mask = parse_mark(given[0].value, "--mark", self.name)
        return MarkSpec(value, 0xFFFFFFFF if mask is None else mask, given[0].inverted)

    @staticmethod
    def _text(spec: MarkSpec) -> str:
        if spec.mask == 0xFFFFFFFF:
            return f"0x{spec.value:x}"
        return f"0x{spec.value:x}/0x{spec.mask:x}"

    def save(self, spec: MarkSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} --mark {self._text(spec)}"

    def print(self, spec: MarkSpec, family: int) -> str:
        return f" mark match{' !' if spec.invert else ''} {self._text(spec)}"

    def reads(self, spec: MarkSpec) -> frozenset[str]:
        return frozenset({"mark"})

    def compile(self, spec: MarkSpec, env: CompileEnv) -> MatchFn:
        value, mask, invert = spec.value, spec.mask, spec.invert
        return lambda packet, state: ((state.mark & mask) == value) != invert


