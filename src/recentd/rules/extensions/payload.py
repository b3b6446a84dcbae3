"""Matches on what lies past the IP header, left to the kernel: ``tcpmss``,
``string``, ``u32`` and IPv6 ``rt``.

Rules: recentd's packets carry the header fields its rules read, not the payload
nor the options, so a rule holding one of these stays in the kernel's rule set.
Each is parsed as libxt_* parses it and saved and listed in iptables 1.8.9's
words (``tests/data/rules/xt_kernel.t`` and ``ip6t_rt.t``, checked against
iptables-legacy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.rules.extensions.base import (
    GivenOption,
    KernelOnlyMatch,
    OptionSpec,
    ParseContext,
    parse_uint,
)
from recentd.rules.lexer import wire_bytes


@dataclass(frozen=True, slots=True)
class RangeSpec:
    low: int
    high: int
    invert: bool = False

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}:{self.high}"


def parse_range(option: GivenOption, high: int, ext: str) -> RangeSpec:
    first, sep, last = option.value.partition(":")
    low = parse_uint(first or "0", 0, high, option=option.name, ext=ext)
    top = parse_uint(last or str(high), 0, high, option=option.name, ext=ext) if sep else low
    return RangeSpec(low, top, option.inverted)


class TcpmssMatch(KernelOnlyMatch[RangeSpec]):
    name = "tcpmss"
    reason = "tcpmss reads TCP options"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--mss": OptionSpec(1, True, "MSS value or range N:M"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> RangeSpec:
        if not given:
            raise self.error("missing mandatory option `--mss'", "--mss")
        return parse_range(given[0], 65535, self.name)

    def save(self, spec: RangeSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} --mss {spec.text()}"

    def print(self, spec: RangeSpec, family: int) -> str:
        return f" tcpmss match {'!' if spec.invert else ''}{spec.text()}"


@dataclass(frozen=True, slots=True)
class StringSpec:
    pattern: bytes
    algo: str
    start: int = 0
    stop: int = 65535
    icase: bool = False
    invert: bool = False


def _hex_pattern(text: str) -> bytes:
    """``--hex-string``: plain characters and ``|hex pairs|`` (spaces allowed inside)."""
    raw = wire_bytes(text)
    out, inside, index = bytearray(), False, 0
    while index < len(raw):
        char = raw[index]
        if char == ord("|"):
            inside, index = not inside, index + 1
        elif inside and char == ord(" "):
            index += 1
        elif inside:
            out.append(int(raw[index:index + 2], 16))
            index += 2
        else:
            out.append(char)
            index += 1
    if inside:
        raise ValueError(text)
    return bytes(out)


def _string_text(pattern: bytes) -> str:
    """libxt_string: printable patterns quoted (``"`` and ``\\`` escaped), else all hex."""
    if all(32 <= byte < 127 for byte in pattern):
        body = pattern.decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
        return f'"{body}"'
    return '"|' + pattern.hex() + '|"'


class StringMatch(KernelOnlyMatch[StringSpec]):
    name = "string"
    reason = "string searches the payload"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--from": OptionSpec(1, False, "offset to start at"),
        "--to": OptionSpec(1, False, "offset to stop at"),
        "--algo": OptionSpec(1, False, "bm or kmp"),
        "--string": OptionSpec(1, True, "the text to find"),
        "--hex-string": OptionSpec(1, True, "the bytes to find, |hex| allowed"),
        "--icase": OptionSpec(0, False, "ignore case"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> StringSpec:
        opts = {o.name: o for o in given}
        found = opts.get("--string") or opts.get("--hex-string")
        if found is None or "--algo" not in opts:
            raise self.error("STRING match: You must specify `--string' or `--hex-string' "
                             "and `--algo'")
        if opts["--algo"].value not in ("bm", "kmp"):
            raise self.error(f"unknown algorithm `{opts['--algo'].value}'", "--algo")
        try:
            pattern = (wire_bytes(found.value) if found.name == "--string"
                       else _hex_pattern(found.value))
        except ValueError:
            raise self.error("Invalid hex string", found.name) from None
        if not pattern or len(pattern) > 128:
            raise self.error("STRING too long or empty", found.name)
        start = parse_uint(opts["--from"].value, 0, 65535, option="--from",
                           ext=self.name) if "--from" in opts else 0
        stop = parse_uint(opts["--to"].value, 0, 65535, option="--to",
                          ext=self.name) if "--to" in opts else 65535
        return StringSpec(pattern, opts["--algo"].value, start, stop, "--icase" in opts,
                          found.inverted)

    def _text(self, spec: StringSpec) -> tuple[str, str]:
        shown = _string_text(spec.pattern)
        return "--hex-string" if shown.startswith('"|') else "--string", shown

    def save(self, spec: StringSpec, family: int) -> str:
        option, shown = self._text(spec)
        text = f"{' !' if spec.invert else ''} {option} {shown} --algo {spec.algo}"
        text += f" --from {spec.start}" if spec.start else ""
        text += f" --to {spec.stop}" if spec.stop != 65535 else ""
        return text + (" --icase" if spec.icase else "")

    def print(self, spec: StringSpec, family: int) -> str:
        _, shown = self._text(spec)
        text = f" STRING match {'!' if spec.invert else ''} {shown} ALGO name {spec.algo}"
        text += f" FROM {spec.start}" if spec.start else ""
        text += f" TO {spec.stop}" if spec.stop != 65535 else ""
        return text + (" ICASE" if spec.icase else "")


@dataclass(frozen=True, slots=True)
class U32Spec:
    text: str  # canonical: numbers in hex, no spaces
    invert: bool = False


_U32_OPS = ("&&", "<<", ">>", "&", "@", "=", ":", ",")


def _u32_canonical(text: str) -> str | None:
    """libxt_u32's printed form (every number 0x…, no spaces), or None if invalid."""
    compact = "".join(text.split())
    out, index = "", 0
    expect_number = True
    while index < len(compact):
        if expect_number:
            end = index
            while end < len(compact) and compact[end].isalnum():
                end += 1
            word = compact[index:end]
            try:
                number = int(word, 0)
            except ValueError:
                return None
            if not 0 <= number <= 0xFFFFFFFF:
                return None
            out, index, expect_number = out + f"0x{number:x}", end, False
            continue
        op = next((op for op in _U32_OPS if compact.startswith(op, index)), None)
        if op is None:
            return None
        out, index, expect_number = out + op, index + len(op), True
    return out if out and not expect_number and "=" in out else None


class U32Match(KernelOnlyMatch[U32Spec]):
    name = "u32"
    reason = "u32 reads arbitrary packet bytes"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--u32": OptionSpec(1, True, "tests on packet bytes (iptables-extensions(8))"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> U32Spec:
        if not given:
            raise self.error("missing mandatory option `--u32'", "--u32")
        canonical = _u32_canonical(given[0].value)
        if canonical is None:
            raise self.error(f"u32: invalid test `{given[0].value}'", "--u32")
        return U32Spec(canonical, given[0].inverted)

    def save(self, spec: U32Spec, family: int) -> str:
        return f"{' !' if spec.invert else ''} --u32 \"{spec.text}\""

    def print(self, spec: U32Spec, family: int) -> str:
        return f" u32{' !' if spec.invert else ''} \"{spec.text}\""


@dataclass(frozen=True, slots=True)
class RtSpec:
    kind: int | None
    kind_invert: bool
    segsleft: RangeSpec | None
    length: RangeSpec | None


class RtMatch(KernelOnlyMatch[RtSpec]):
    name = "rt"
    reason = "rt reads the IPv6 routing header"
    families = frozenset({6})
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--rt-type": OptionSpec(1, True, "routing header type"),
        "--rt-segsleft": OptionSpec(1, True, "segments left N or N:M"),
        "--rt-len": OptionSpec(1, True, "header length"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> RtSpec:
        opts = {o.name: o for o in given}
        kind = opts.get("--rt-type")
        length = opts.get("--rt-len")
        return RtSpec(
            None if kind is None else parse_uint(kind.value, 0, 255, option="--rt-type",
                                                 ext=self.name),
            kind is not None and kind.inverted,
            None if "--rt-segsleft" not in opts else parse_range(opts["--rt-segsleft"],
                                                                 0xFFFFFFFF, self.name),
            None if length is None else RangeSpec(
                parse_uint(length.value, 0, 0xFFFFFFFF, option="--rt-len", ext=self.name),
                0, length.inverted),
        )

    def save(self, spec: RtSpec, family: int) -> str:
        text = "" if spec.kind is None else (
            f"{' !' if spec.kind_invert else ''} --rt-type {spec.kind}")
        if spec.segsleft is not None:
            text += f"{' !' if spec.segsleft.invert else ''} --rt-segsleft {spec.segsleft.text()}"
        if spec.length is not None:
            text += f"{' !' if spec.length.invert else ''} --rt-len {spec.length.low}"
        return text

    def print(self, spec: RtSpec, family: int) -> str:
        text = " rt"
        if spec.kind is not None:
            text += f" type:{'!' if spec.kind_invert else ''}{spec.kind}"
        if spec.segsleft is not None:
            plural = "s" if spec.segsleft.low != spec.segsleft.high else ""
            text += f" segsleft{plural}:{'!' if spec.segsleft.invert else ''}{spec.segsleft.text()}"
        if spec.length is not None:
            text += f" length:{'!' if spec.length.invert else ''}{spec.length.low}"
        return text
