"""Which parts of a whole-host rule set recentd evaluates, and which stay in the kernel.

Rules (the choice is written down in ``docs/split.md``):

1. A chain is recentd's when recentd can evaluate every rule in it and every chain
   it jumps or goes to is recentd's too; otherwise the whole chain stays in the
   kernel's own rule set, untouched, and says why (the first rule that keeps it
   there, FILE:LINE, or the chain it jumps to).
2. A rule keeps its chain in the kernel when one of its matches or its target says
   so (``Extension.kernel_only``: NAT, ipsets, routing, payload, rewriting).
3. Tables the kernel alone traverses for recentd — ``nat`` and ``security`` (not in
   :data:`~recentd.rules.model.TRAVERSAL`) — stay in the kernel whole.

Pure: a :class:`Ruleset` in, a :class:`Split` out; nothing is compiled or installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from recentd.rules.compile import kernel_only
from recentd.rules.model import TRAVERSAL, Chain, Ruleset, Table

#: Tables recentd's evaluator walks (the others are the kernel's alone).
EVALUATED_TABLES = frozenset(table for steps in TRAVERSAL.values() for _, table in steps)


@dataclass(frozen=True, slots=True)
class Part:
    """One chain of one table, and who evaluates it."""

    family: int
    table: str
    chain: str
    rules: int
    by_recentd: bool
    why: str = ""  # for the kernel's: what keeps it there

    def describe(self) -> str:
        program = "ip6tables" if self.family == 6 else "iptables"
        where = f"{program} -t {self.table} {self.chain} ({self.rules} rules)"
        return f"recentd: {where}" if self.by_recentd else f"kernel:  {where}: {self.why}"


@dataclass(frozen=True, slots=True)
class Split:
    parts: tuple[Part, ...]

    @property
    def by_recentd(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.by_recentd)

    @property
    def by_kernel(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if not part.by_recentd)

    def describe(self) -> list[str]:
        return [part.describe() for part in self.parts]


def split_ruleset(ruleset: Ruleset) -> Split:
    """Each chain of each table, recentd's or the kernel's (rules 1–3 above)."""
    parts: list[Part] = []
    for table in ruleset.tables:
        parts.extend(_table_parts(table))
    return Split(tuple(parts))


def _table_parts(table: Table) -> list[Part]:
    if table.name not in EVALUATED_TABLES:
        return [Part(table.family, table.name, chain.name, len(chain.rules), False,
                     f"the {table.name} table is the kernel's") for chain in table.chains]
    reasons = {chain.name: _own_reason(chain) for chain in table.chains}
    changed = True
    while changed:  # a chain jumping to a kernel chain is the kernel's: to a fixed point
        changed = False
        for chain in table.chains:
            if reasons[chain.name]:
                continue
            for rule in chain.rules:
                target = rule.target.name
                if reasons.get(target):
                    reasons[chain.name] = f"jumps to {target}, which stays in the kernel"
                    changed = True
                    break
    return [Part(table.family, table.name, chain.name, len(chain.rules),
                 not reasons[chain.name], reasons[chain.name]) for chain in table.chains]


def _own_reason(chain: Chain) -> str:
    for rule in chain.rules:
        reason = kernel_only(rule)
        if reason is not None:
            return f"{rule.source}:{rule.line}: {reason}"
    return ""
