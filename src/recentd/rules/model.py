"""The rule set as immutable values: Ruleset → Table → Chain → Rule.

A :class:`Rule` holds what iptables hands the kernel: the fixed IP part
(:class:`IpSpec`), its matches in command-line order, and one target. Matches
and targets carry the extension that parsed them, so rendering and compiling
need no lookup. Counters travel with rules and chains because ``iptables-save -c``
and ``-L -v`` print them; the evaluator keeps live counters of its own and can
return a snapshot as a new :class:`Ruleset`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from recentd.packets.conntrack_model import CtState

if TYPE_CHECKING:
    from recentd.rules.extensions.base import MatchExtension, TargetExtension

#: ``CtState`` is the packet layer's enum (the kernel's XT_STATE bits), re-exported
#: because rule specs and ``Engine.evaluate`` speak in it.
__all__ = [
    "BUILTIN_CHAINS",
    "OUTPUT_DEVICE_HOOKS",
    "POLICIES",
    "STANDARD_VERDICTS",
    "TRAVERSAL",
    "Chain",
    "CtState",
    "Hook",
    "IpSpec",
    "Match",
    "Net",
    "Notice",
    "ParseResult",
    "Rule",
    "Ruleset",
    "Table",
    "Target",
]

#: Built-in chains of each table, in the order iptables lists them.
BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
#: Chain names iptables refuses for user chains, and verdicts a policy may take.
STANDARD_VERDICTS = ("ACCEPT", "DROP", "RETURN")
POLICIES = ("ACCEPT", "DROP")


class Hook(Enum):
    """A netfilter hook. As an argument to ``Engine.evaluate``, INPUT, FORWARD and
    OUTPUT mean the whole path a packet takes (see ``TRAVERSAL``)."""

    PREROUTING = "PREROUTING"
    INPUT = "INPUT"
    FORWARD = "FORWARD"
    OUTPUT = "OUTPUT"
    POSTROUTING = "POSTROUTING"


#: The (hook, table) chains a packet meets, in the kernel's order (nat skipped:
#: it never decides a verdict and is not evaluated).
TRAVERSAL: Mapping[Hook, tuple[tuple[Hook, str], ...]] = {
    Hook.PREROUTING: ((Hook.PREROUTING, "raw"), (Hook.PREROUTING, "mangle")),
    Hook.INPUT: ((Hook.PREROUTING, "raw"), (Hook.PREROUTING, "mangle"),
                 (Hook.INPUT, "mangle"), (Hook.INPUT, "filter")),
    Hook.FORWARD: ((Hook.PREROUTING, "raw"), (Hook.PREROUTING, "mangle"),
                   (Hook.FORWARD, "mangle"), (Hook.FORWARD, "filter"),
                   (Hook.POSTROUTING, "mangle")),
    Hook.OUTPUT: ((Hook.OUTPUT, "raw"), (Hook.OUTPUT, "mangle"), (Hook.OUTPUT, "filter"),
                  (Hook.POSTROUTING, "mangle")),
    Hook.POSTROUTING: ((Hook.POSTROUTING, "mangle"),),
}
#: Hooks with an output device, where `recent` sees the pre-forwarding TTL.
OUTPUT_DEVICE_HOOKS = frozenset({Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING})


@dataclass(frozen=True, slots=True)
class Net:
    """An address and mask (integers of the family's width)."""

    addr: int
    mask: int

    def contains(self, addr: int) -> bool:
        return addr & self.mask == self.addr


@dataclass(frozen=True, slots=True)
class IpSpec:
    """The IP part of a rule (struct ipt_ip / ip6t_ip6). ``None`` means "any"."""

    src: Net | None = None
    dst: Net | None = None
    iif: str = ""
    oif: str = ""
    proto: int = 0
    fragment: bool | None = None
    inv_src: bool = False
    inv_dst: bool = False
    inv_iif: bool = False
    inv_oif: bool = False
    inv_proto: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """One ``-m NAME …`` of a rule: the extension and its frozen, validated spec."""

    ext: MatchExtension[Any]
    spec: Any

    @property
    def name(self) -> str:
        return self.ext.name


@dataclass(frozen=True, slots=True)
class Target:
    """The rule's ``-j``/``-g``: an extension target, a standard verdict, or a chain.

    ``ext`` is None for standard verdicts (ACCEPT, DROP, RETURN), user chains and
    the empty target (a rule with no ``-j`` only counts).
    """

    name: str
    ext: TargetExtension[Any] | None = None
    spec: Any = None
    goto: bool = False
    #: 1-based column of the target's name in its line (0: unknown), for errors found
    #: after the whole file is read (a jump to a chain that never appears); not part of
    #: the rule's meaning, so not compared.
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of one chain. ``line``/``source`` say where it was written."""

    ip: IpSpec
    matches: tuple[Match, ...]
    target: Target
    packets: int = 0
    bytes: int = 0
    source: str = ""
    line: int = 0

    def with_counters(self, packets: int, nbytes: int) -> Rule:
        return replace(self, packets=packets, bytes=nbytes)


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; ``policy`` is None for user-defined chains."""

    name: str
    rules: tuple[Rule, ...] = ()
    policy: str | None = None
    packets: int = 0
    bytes: int = 0

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    """One table of one family: built-in chains first, then user chains by name.
    ``source`` names the file that wrote it (a rule set may come from several)."""

    family: int
    name: str
    chains: tuple[Chain, ...]
    source: str = ""

    def chain(self, name: str) -> Chain | None:
        return next((chain for chain in self.chains if chain.name == name), None)

    def references(self, name: str) -> int:
        """How many rules jump or go to chain ``name`` (the ``-L`` header count)."""
        return sum(rule.target.name == name for chain in self.chains for rule in chain.rules)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """All tables of both families, in the order they were first written."""

    tables: tuple[Table, ...] = ()

    def table(self, family: int, name: str) -> Table | None:
        return next((t for t in self.tables if t.family == family and t.name == name), None)

    def families(self) -> tuple[int, ...]:
        return tuple(sorted({table.family for table in self.tables}))

    def of_family(self, family: int) -> tuple[Table, ...]:
        return tuple(table for table in self.tables if table.family == family)

    def rules(self) -> Iterator[tuple[Table, Chain, Rule]]:
        for table in self.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    yield table, chain, rule


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the parser skipped or corrected, with where and (if any) the fix."""

    message: str
    source: str = ""
    line: int = 0
    column: int = 0
    corrected: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.source, self.line, self.column) if part)
        kind = "warning" if self.warning else "notice"
        text = f"{where}: {kind}: {self.message}" if where else f"{kind}: {self.message}"
        return f"{text}\n    corrected: {self.corrected}" if self.corrected else text


@dataclass
class ParseResult:
    """What parsing a file gives: the rule set and the notices along the way."""

    ruleset: Ruleset
    notices: list[Notice] = field(default_factory=list)
