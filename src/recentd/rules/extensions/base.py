"""What every match and target extension provides, and the per-packet state they share.

Theory of operation: an extension is a small object with an option table (data:
name → :class:`OptionSpec`), a ``parse`` that turns the options given on one
``-m``/``-j`` into a frozen spec (raising :class:`RuleError` with iptables' words),
``save``/``print`` renderers that return iptables' text with a leading space per
token, and ``compile`` that binds the spec into a closure the evaluator calls per
packet. The option tables also feed the parser's dispatch and the ``--help`` text.

A spec is the extension's own business. Whoever else needs to know something of one
(remembered decisions, the live daemon's hooks and offload policy) asks the
extension a typed query — :meth:`~Extension.reads`, :meth:`~Extension.volatile`,
:meth:`~Extension.recent`, :meth:`~Extension.dports`, :meth:`~Extension.ctstates` —
and never looks inside the spec. Each query's default is the answer that claims
nothing, so an extension that does not answer is treated safely — except
:meth:`~Extension.kernel_only`, which every extension recentd cannot evaluate
must answer (its ``compile`` refuses too, see :class:`KernelOnly`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

from recentd.errors import RuleError
from recentd.packets.packet import Packet

if TYPE_CHECKING:
    from recentd.recent import RecentMatch, RecentTables
    from recentd.rules.model import IpSpec

S = TypeVar("S")

#: Verdict codes a compiled target returns. CONTINUE: go on with the next rule.
DROP, ACCEPT, REJECT, CONTINUE = 0, 1, 2, -1

# Indexes of the Packet fields that compiled matches read: ``packet[F_DPORT]`` is a
# specialised tuple index where ``packet.dport`` is a generic attribute lookup, and
# compiled matches run for every rule a packet reaches. Literals, so that mypy knows
# each field's type; checked against Packet's fields just below.
F_FAMILY: Final = 0
F_SRC: Final = 1
F_DST: Final = 2
F_TTL: Final = 3
F_PROTO: Final = 4
F_LENGTH: Final = 5
F_SPORT: Final = 6
F_DPORT: Final = 7
F_TCP_FLAGS: Final = 8
F_FRAG_OFFSET: Final = 12
F_MARK: Final = 20
for _index, _name in ((F_FAMILY, "family"), (F_SRC, "src"), (F_DST, "dst"), (F_TTL, "ttl"),
                      (F_PROTO, "proto"), (F_LENGTH, "length"), (F_SPORT, "sport"),
                      (F_DPORT, "dport"), (F_TCP_FLAGS, "tcp_flags"),
                      (F_FRAG_OFFSET, "frag_offset"), (F_MARK, "mark")):
    if Packet._fields[_index] != _name:  # pragma: no cover - a Packet field was moved
        raise ImportError(f"Packet field {_index} is {Packet._fields[_index]!r}, not {_name!r}")


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option of an extension: its argument count and whether ``!`` may precede it."""

    nargs: int = 1
    invert: bool = False
    help: str = ""


@dataclass(frozen=True, slots=True)
class GivenOption:
    """One option as written: name, arguments, ``!``, and the column of the name."""

    name: str
    args: tuple[str, ...]
    inverted: bool = False
    column: int = 0

    @property
    def value(self) -> str:
        return self.args[0] if self.args else ""


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What an extension may need to know about the rule around it."""

    family: int
    ip: IpSpec
    table: str = "filter"
    chain: str = ""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A LOG or NFLOG target fired (the packet continues)."""

    target: str
    prefix: str
    level: int
    group: int
    table: str
    chain: str
    rule: int


class PacketState:
    """Mutable per-evaluation state, reused across packets to avoid allocation.

    Attributes:
        now: the time in ticks.
        ctstate: the packet's connection-tracking state bit (see ``CtState``).
        forwarded: the hook has an output device and the packet was not made
            locally, so `recent` records TTL+1 (spec §2.6).
        mark: the packet mark, as MARK targets leave it.
        conn: a hashable connection key for CONNMARK (None: no connection).
        events: LOG/NFLOG events of this packet.
        position: (table, chain, rule number) of the rule being evaluated.
        reads: what `recent` matches read, for :mod:`recentd.rules.memo`: per
            match, the table's ``stable_until`` and its arguments.
        volatile: an extension with state of its own (or the clock) took part:
            the decision must not be reused.
        policies: the counters of built-in chains whose policy applied.
    """

    __slots__ = ("conn", "ctstate", "events", "forwarded", "mark", "now", "policies",
                 "position", "reads", "reject", "volatile")

    def __init__(self) -> None:
        self.now = 0
        self.ctstate = 0
        self.forwarded = False
        self.mark = 0
        self.conn: object = None
        self.events: list[LogEvent] = []
        self.position: tuple[str, str, int] = ("", "", 0)
        self.reject = ""
        self.reads: list[tuple[Any, ...]] = []
        self.volatile = False
        self.policies: list[list[int]] = []


MatchFn = Callable[[Packet, PacketState], bool]
TargetFn = Callable[[Packet, PacketState], int]


@dataclass
class CompileEnv:
    """Shared resources compiled rules bind to.

    ``recent`` tables outlive rule sets (acquire/release); limit buckets do not
    (each compile makes fresh ones, spec §7); hashlimit tables are kept by name
    like the kernel's per-namespace htables; CONNMARK marks live in ``connmarks``.
    """

    hz: int
    recent: RecentTables
    hashlimit: dict[tuple[int, str], Any] = field(default_factory=dict)
    connmarks: dict[object, int] = field(default_factory=dict)
    family: int = 4
    #: Every `recent` match compiled, to release when the rules are replaced.
    acquired: list[Any] = field(default_factory=list)


class Extension(ABC, Generic[S]):
    """Common part of matches and targets."""

    name: ClassVar[str]
    options: ClassVar[Mapping[str, OptionSpec]]
    families: ClassVar[frozenset[int]] = frozenset({4, 6})
    #: Checked by the common validation before ``parse``; False lets ``parse`` do it.
    common_checks: ClassVar[bool] = True

    @abstractmethod
    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> S:
        """Validate the options of one occurrence and return the frozen spec."""

    @abstractmethod
    def save(self, spec: S, family: int) -> str:
        """The ``iptables-save`` option text, each token with a leading space."""

    @abstractmethod
    def print(self, spec: S, family: int) -> str:
        """The ``iptables -L -n`` text, each token with a leading space."""

    def reads(self, spec: S) -> frozenset[str] | None:
        """The :class:`Packet` fields the compiled code reads, for an extension whose
        outcome depends on nothing but those fields, the conntrack state, the mark and
        (for `recent`) its tables. None — the default, the safe answer — for one that
        keeps state of its own or reads the clock: a decision that went through it is
        then never reused (see :mod:`recentd.rules.memo`)."""
        return None

    def volatile(self, spec: S) -> bool:
        """Whether the outcome depends on more than the packet, its conntrack state,
        its mark and `recent` tables: state of the extension's own or the clock."""
        return self.reads(spec) is None

    def recent(self, spec: S) -> RecentMatch | None:
        """The `recent` match this is (``-m recent``), or None."""
        return None

    def dports(self, spec: S) -> tuple[tuple[int, int], ...] | None:
        """The destination port ranges (inclusive) a packet must be in to match, or
        None when the extension requires none (an inverted list requires none either)."""
        return None

    def ctstates(self, spec: S) -> int | None:
        """The conntrack states (``CtState`` bits) a packet must be in, one of them, to
        match, or None when the extension requires none (inverted: none either)."""
        return None

    def kernel_only(self, spec: S) -> str | None:
        """Why recentd cannot evaluate this occurrence in user space (it is parsed,
        rendered and left to the kernel's own rule set), or None when it can."""
        return None

    def mark_bits(self, spec: S) -> int:
        """The packet- or connection-mark bits this target may set to 1 (the split keeps
        bits of its own, rules/split.py); 0 for an extension that sets none."""
        return 0

    def error(self, message: str, option: str = "") -> RuleError:
        return RuleError(f"{self.name}: {message}", option=option)


class MatchExtension(Extension[S]):
    """A ``-m NAME`` match."""

    @abstractmethod
    def compile(self, spec: S, env: CompileEnv) -> MatchFn:
        """A per-packet predicate bound to ``spec``."""


class TargetExtension(Extension[S]):
    """A ``-j NAME`` target with options."""

    #: Tables the target may be used in (None: any).
    tables: ClassVar[frozenset[str] | None] = None
    #: The name ``iptables -L`` shows in the target column, when not ``name``.
    listed_as: ClassVar[str] = ""

    @abstractmethod
    def compile(self, spec: S, env: CompileEnv) -> TargetFn:
        """A per-packet action bound to ``spec``, returning a verdict code."""


class KernelOnlyMatch(MatchExtension[S]):
    """A match recentd parses and renders exactly but cannot evaluate in user space
    (it needs the kernel's routing, sockets, ipsets or NAT): the rule stays in the
    kernel's own rule set, and compiling it for recentd is refused, naming why."""

    reason: ClassVar[str]

    def kernel_only(self, spec: S) -> str | None:
        return self.reason

    def compile(self, spec: S, env: CompileEnv) -> MatchFn:
        raise self.error(f"{self.reason}: left to the kernel, recentd cannot evaluate it")


class KernelOnlyTarget(TargetExtension[S]):
    """A target that acts where recentd cannot (NAT, conntrack, packet mangling,
    ipsets): parsed and rendered exactly, left to the kernel."""

    reason: ClassVar[str]

    def kernel_only(self, spec: S) -> str | None:
        return self.reason

    def compile(self, spec: S, env: CompileEnv) -> TargetFn:
        raise self.error(f"{self.reason}: left to the kernel, recentd cannot evaluate it")


def check_common(ext: Extension[Any], given: Sequence[GivenOption]) -> None:
    """The checks libxtables makes for every extension: invert and repetition."""
    seen: set[str] = set()
    for option in given:
        spec = ext.options[option.name]
        if option.inverted and not spec.invert:
            raise ext.error(f'option "{option.name}" cannot be inverted.', option.name)
        if option.name in seen:
            raise ext.error(f'option "{option.name}" can only be used once.', option.name)
        seen.add(option.name)


def by_name(given: Sequence[GivenOption]) -> dict[str, GivenOption]:
    return {option.name: option for option in given}


def parse_uint(text: str, low: int, high: int, *, option: str, ext: str) -> int:
    """A C ``strtoul``-style unsigned integer (decimal, ``0x`` hex, ``0`` octal) in range."""
    base = 16 if text[:2].lower() == "0x" else 8 if text.startswith("0") else 10
    try:
        value = int(text[2:] if base == 16 else text, base)
    except ValueError:
        value = -1
    if not low <= value <= high:
        raise RuleError(
            f'{ext}: bad value for option "{option}", or out of range ({low}-{high}).',
            option=option,
        ) from None
    return value
