"""``-m hashlimit`` (revision 3, what iptables 1.8.9 uses): one bucket per flow key.

Rules (kernel xt_hashlimit.c, libxt_hashlimit.c):

- Rates are periods in 1/1 000 000 s (XT_HASHLIMIT_SCALE_v2); credits are u64
  with CREDITS_PER_JIFFY = 2³⁹ at HZ=250. ``--hashlimit-above`` is ``upto``
  inverted; ``!`` flips either.
- The bucket table is per family and name, shared by every rule naming it, and
  built with the *first* rule's configuration (as the kernel's htable is). It
  survives rule-set replacement, unlike ``-m limit``'s per-rule bucket.
- An entry idle for ``--hashlimit-htable-expire`` ms is forgotten. The kernel
  forgets it at the next garbage-collection pass; we forget it at its next
  lookup, which can only differ when the idle time is between the two.
  ``--hashlimit-htable-max``/``-size`` are rendered but do not bound the table.
- ``--hashlimit RATE`` is revision 0's spelling of ``--hashlimit-upto``.
- Byte rates (``1024kb/s``, burst ``1mb``) are parsed and rendered as
  libxt_hashlimit does (cost = 2³²−1 / (bytes/16 + 1), printed in the largest
  unit that gives the same cost back) and left to the kernel;
  ``--hashlimit-rate-match`` is not supported.
- The name may not hold ``/`` (the kernel refuses it: it is a /proc file name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from recentd.errors import RuleError
from recentd.packets.packet import Packet
from recentd.recent import DEFAULT_HZ
from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    ParseContext,
    parse_uint,
)
from recentd.rules.limit import (
    HASHLIMIT_SCALE,
    U64,
    Bucket,
    format_rate,
    hashlimit_cpj,
    hashlimit_credits,
    parse_rate,
)

MODES = ("srcip", "srcport", "dstip", "dstport")
DEFAULT_BURST = 5
#: libxt_hashlimit's byte mode: XT_HASHLIMIT_BYTE_SHIFT, the default expiries in s.
BYTE_SHIFT = 4
BYTE_EXPIRE, BYTE_EXPIRE_BURST = 15, 60
BYTE_UNITS = (("m", 1 << 20), ("k", 1 << 10), ("", 1))
DEFAULT_GC = 1000
U32 = 0xFFFFFFFF
_NUMERIC = {
    "--hashlimit-htable-size": "size",
    "--hashlimit-htable-max": "max",
    "--hashlimit-htable-gcinterval": "gc",
    "--hashlimit-htable-expire": "expire",
}


@dataclass(frozen=True, slots=True)
class HashlimitSpec:
    avg: int
    name: str
    above: bool = False
    burst: int = DEFAULT_BURST
    modes: tuple[str, ...] = ()
    size: int = 0
    max: int = 0
    gc: int = DEFAULT_GC
    expire: int = 1000
    quantum: int = 1000
    srcmask: int = 32
    dstmask: int = 32
    default_mask: int = 32
    #: ``avg`` is a byte cost (``--hashlimit-upto 1kb/s``), ``burst`` in rates.
    bytes: bool = False


def bytes_to_cost(count: int) -> int:
    return U32 // ((count >> BYTE_SHIFT) + 1)


def cost_to_bytes(cost: int) -> int:
    return ((U32 // cost if cost else U32) - 1) << BYTE_SHIFT


def parse_byte_rate(text: str) -> int | None:
    """``N[k|m]b/s`` → the cost, or None when ``text`` is not a byte rate."""
    at = text.find("b/s")
    if at <= 0:
        return None
    factor = dict(BYTE_UNITS).get(text[at - 1], 1) if not text[at - 1].isdigit() else 1
    digits = text[: at - (0 if text[at - 1].isdigit() else 1)]
    if not digits.isdigit() or int(digits) == 0:
        return None
    return bytes_to_cost(int(digits) * factor)


def format_byte_rate(cost: int, burst: int) -> tuple[str, str]:
    """(rate, burst) as libxt_hashlimit's ``print_bytes`` writes them (burst "" if 0)."""
    count = cost_to_bytes(cost)
    name, size = next((n, u) for n, u in BYTE_UNITS
                      if u == 1 or (count >= u and bytes_to_cost(count & ~(u - 1)) == cost))
    rate = f"{count // size}{name}b/s"
    if not burst:
        return rate, ""
    total = count * burst
    name, size = next((n, u) for n, u in BYTE_UNITS if u == 1 or total >= u)
    return rate, f"{total // size}{name}b"


def bucket_params(avg: int, burst: int, hz: int) -> tuple[int, int] | None:
    """(cap, cost) or None where checkentry says ERANGE (u64 overflow of avg·burst)."""
    cap = hashlimit_credits((avg * burst) & U64, hz)
    cost = hashlimit_credits(avg, hz)
    return None if burst == 0 or cap < cost else (cap, cost)


class HashlimitMatch(MatchExtension[HashlimitSpec]):
    name = "hashlimit"
    aliases: ClassVar[Mapping[str, str]] = {"--hashlimit": "--hashlimit-upto"}
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--hashlimit-upto": OptionSpec(1, True, "match while under RATE (N/sec|min|hour|day)"),
        "--hashlimit-above": OptionSpec(1, True, "match once over RATE"),
        "--hashlimit-burst": OptionSpec(1, False, "bucket size (default 5)"),
        "--hashlimit-mode": OptionSpec(1, False, "key: comma list of srcip,srcport,dstip,dstport"),
        "--hashlimit-srcmask": OptionSpec(1, False, "prefix length applied to srcip"),
        "--hashlimit-dstmask": OptionSpec(1, False, "prefix length applied to dstip"),
        "--hashlimit-name": OptionSpec(1, False, "table name (required)"),
        "--hashlimit-htable-size": OptionSpec(1, False, "hash buckets"),
        "--hashlimit-htable-max": OptionSpec(1, False, "maximum entries"),
        "--hashlimit-htable-expire": OptionSpec(1, False, "ms after which an idle entry goes"),
        "--hashlimit-htable-gcinterval": OptionSpec(1, False, "ms between garbage collections"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> HashlimitSpec:
        opts = {o.name: o for o in given}
        rate_opt = opts.get("--hashlimit-upto") or opts.get("--hashlimit-above")
        if rate_opt is None or "--hashlimit-name" not in opts:
            raise self.error("option \"--hashlimit-upto\" or \"--hashlimit-above\" and "
                             "\"--hashlimit-name\" are required")
        if "--hashlimit-upto" in opts and "--hashlimit-above" in opts:
            raise self.error('option "--hashlimit-upto" cannot be used together with '
                             '"--hashlimit-above".')
        byte_cost = parse_byte_rate(rate_opt.value)
        if byte_cost is not None:
            return self._parse_bytes(opts, rate_opt, byte_cost, ctx)
        avg, mult = parse_rate(rate_opt.value, HASHLIMIT_SCALE, option=rate_opt.name)
        width = 32 if ctx.family == 4 else 128
        values: dict[str, Any] = {"srcmask": width, "dstmask": width, "expire": mult * 1000}
        for option, key in _NUMERIC.items():
            if option in opts:
                values[key] = parse_uint(opts[option].value, 0, U32, option=option, ext=self.name)
        for option in ("--hashlimit-srcmask", "--hashlimit-dstmask"):
            if option in opts:
                values[option[12:]] = parse_uint(opts[option].value, 0, width, option=option,
                                                 ext=self.name)
        burst = DEFAULT_BURST
        if "--hashlimit-burst" in opts:
            burst = parse_uint(opts["--hashlimit-burst"].value, 0, U32,
                               option="--hashlimit-burst", ext=self.name)
        spec = HashlimitSpec(
            avg, opts["--hashlimit-name"].value,
            above=(rate_opt.name == "--hashlimit-above") != rate_opt.inverted,
            burst=burst, modes=self._modes(opts.get("--hashlimit-mode")),
            quantum=mult * 1000, default_mask=width, **values,
        )
        self._check(spec)
        return spec

    def _parse_bytes(self, opts: Mapping[str, GivenOption], rate_opt: GivenOption, cost: int,
                     ctx: ParseContext) -> HashlimitSpec:
        """Byte mode: the burst (bytes, ``k``/``m`` allowed) becomes a count of rates."""
        width = 32 if ctx.family == 4 else 128
        values: dict[str, Any] = {"srcmask": width, "dstmask": width}
        for option, key in _NUMERIC.items():
            if option in opts:
                values[key] = parse_uint(opts[option].value, 0, U32, option=option, ext=self.name)
        for option in ("--hashlimit-srcmask", "--hashlimit-dstmask"):
            if option in opts:
                values[option[12:]] = parse_uint(opts[option].value, 0, width, option=option,
                                                 ext=self.name)
        burst, expire = 0, BYTE_EXPIRE
        if "--hashlimit-burst" in opts:
            burst = self._byte_burst(opts["--hashlimit-burst"].value, cost)
            expire = BYTE_EXPIRE_BURST
        values.setdefault("expire", expire * 1000)
        spec = HashlimitSpec(
            cost, opts["--hashlimit-name"].value,
            above=(rate_opt.name == "--hashlimit-above") != rate_opt.inverted,
            burst=burst, modes=self._modes(opts.get("--hashlimit-mode")),
            quantum=expire * 1000, default_mask=width, bytes=True, **values,
        )
        if not spec.name or len(spec.name) > 254 or "/" in spec.name:
            raise self.error("Invalid --hashlimit-name", "--hashlimit-name")
        return spec

    def _byte_burst(self, text: str, cost: int) -> int:
        body = text.removesuffix("b")
        number = body.rstrip("km")
        if not number.isdigit() or len(body) - len(number) > 1:
            raise self.error(f"bad --hashlimit-burst: `{text}'", "--hashlimit-burst")
        total = int(number) << {"k": 10, "m": 20}.get(body[len(number):], 0)
        unit = cost_to_bytes(cost)
        if total < unit:
            raise self.error(f"burst cannot be smaller than {unit}b", "--hashlimit-burst")
        return -(-total // unit)

    def kernel_only(self, spec: HashlimitSpec) -> str | None:
        return "byte rates" if spec.bytes else None

    def _rate(self, spec: HashlimitSpec) -> tuple[str, str]:
        if spec.bytes:
            return format_byte_rate(spec.avg, spec.burst)
        return format_rate(spec.avg, HASHLIMIT_SCALE), str(spec.burst)

    def _modes(self, option: GivenOption | None) -> tuple[str, ...]:
        if option is None:
            return ()
        words = option.value.split(",")
        bad = [w for w in words if w not in MODES]
        if bad:
            raise self.error(f'Invalid mode "{bad[0]}"; supported: {", ".join(MODES)}',
                             "--hashlimit-mode")
        return tuple(mode for mode in MODES if mode in words)

    def _check(self, spec: HashlimitSpec) -> None:
        if not spec.name or len(spec.name) > 254 or "/" in spec.name:
            raise self.error("Invalid --hashlimit-name", "--hashlimit-name")
        if spec.gc == 0 or spec.expire == 0:
            raise RuleError("iptables: Invalid argument. Run `dmesg' for more information.",
                            option="--hashlimit-htable-expire")
        if bucket_params(spec.avg, spec.burst, DEFAULT_HZ) is None:
            raise RuleError("iptables: Numerical result out of range. (dmesg: xt_hashlimit: "
                            f"overflow, try lower: {spec.avg}/{spec.burst})",
                            option="--hashlimit-burst")

    @staticmethod
    def _tail(spec: HashlimitSpec) -> list[tuple[str, int]]:
        """The optional settings, in save/print order, shown when not at their default."""
        pairs = [("htable-size", spec.size), ("htable-max", spec.max)]
        shown = [(k, v) for k, v in pairs if v]
        if spec.gc != DEFAULT_GC:
            shown.append(("htable-gcinterval", spec.gc))
        if spec.expire != spec.quantum:
            shown.append(("htable-expire", spec.expire))
        for key, value in (("srcmask", spec.srcmask), ("dstmask", spec.dstmask)):
            if value != spec.default_mask:
                shown.append((key, value))
        return shown

    def save(self, spec: HashlimitSpec, family: int) -> str:
        rate, burst = self._rate(spec)
        text = f" --hashlimit-{'above' if spec.above else 'upto'} {rate}"
        text += f" --hashlimit-burst {burst}" if burst else ""
        if spec.modes:
            text += f" --hashlimit-mode {','.join(spec.modes)}"
        text += f" --hashlimit-name {spec.name}"
        return text + "".join(f" --hashlimit-{k} {v}" for k, v in self._tail(spec))

    def print(self, spec: HashlimitSpec, family: int) -> str:
        rate, burst = self._rate(spec)
        text = f" limit: {'above' if spec.above else 'up to'} {rate}"
        text += f" burst {burst}" if burst else ""
        if spec.modes:
            text += f" mode {'-'.join(spec.modes)}"
        return text + "".join(f" {k} {v}" for k, v in self._tail(spec))

    def compile(self, spec: HashlimitSpec, env: CompileEnv) -> MatchFn:
        table = env.hashlimit.get((env.family, spec.name))
        if table is None:
            table = env.hashlimit[(env.family, spec.name)] = FlowBuckets(spec, env.hz)
        take, above = table.take, spec.above
        return lambda packet, state: take(packet, state.now) != above


class FlowBuckets:
    """The kernel's htable: flow key → (bucket, expiry tick)."""

    def __init__(self, spec: HashlimitSpec, hz: int) -> None:
        params = bucket_params(spec.avg, spec.burst, hz)
        if params is None:
            raise RuleError("iptables: Numerical result out of range.", option="--hashlimit-burst")
        self.cap, self.cost = params
        self.cpj = hashlimit_cpj(hz)
        self.expire = spec.expire * hz // 1000
        width = spec.default_mask
        self.smask = ((1 << spec.srcmask) - 1) << (width - spec.srcmask)
        self.dmask = ((1 << spec.dstmask) - 1) << (width - spec.dstmask)
        self.modes = frozenset(spec.modes)
        self.entries: dict[tuple[int, int, int, int], tuple[Bucket, list[int]]] = {}

    def key(self, packet: Packet) -> tuple[int, int, int, int]:
        modes = self.modes
        return (
            packet.src & self.smask if "srcip" in modes else 0,
            packet.dst & self.dmask if "dstip" in modes else 0,
            max(packet.sport, 0) if "srcport" in modes else 0,
            max(packet.dport, 0) if "dstport" in modes else 0,
        )

    def take(self, packet: Packet, now: int) -> bool:
        key = self.key(packet)
        found = self.entries.get(key)
        if found is None or now >= found[1][0]:
            found = (Bucket(self.cap, self.cost, self.cpj, now), [0])
            self.entries[key] = found
        bucket, expires = found
        expires[0] = now + self.expire
        return bucket.take(now)


