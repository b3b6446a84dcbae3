"""Apply parsed commands to a rule set under construction, with iptables' errors.

The builder is the only mutable piece of parsing: tables keyed by (family, name),
each an insertion-ordered dict of chains. ``build()`` freezes it into a
:class:`Ruleset`. Jump targets are checked at ``build()`` (a restore file may
declare a chain after its first use in the same table section, as iptables-restore
allows).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from recentd.errors import RuleError
from recentd.rules.command import ParsedCommand, supported_list
from recentd.rules.model import (
    BUILTIN_CHAINS,
    POLICIES,
    STANDARD_VERDICTS,
    Chain,
    Rule,
    Ruleset,
    Table,
)
from recentd.rules.render import rule_spec

NO_CHAIN = "iptables: No chain/target/match by that name."


@dataclass
class _Chain:
    policy: str | None
    rules: list[Rule] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0


class RulesetBuilder:
    """A rule set being built from commands and restore sections."""

    def __init__(self) -> None:
        self._tables: dict[tuple[int, str], dict[str, _Chain]] = {}

    def table(self, family: int, name: str, *, fresh: bool = False) -> dict[str, _Chain]:
        key = (family, name)
        if fresh or key not in self._tables:
            self._tables[key] = {c: _Chain("ACCEPT") for c in BUILTIN_CHAINS[name]}
        return self._tables[key]

    def declare(self, family: int, table: str, chain: str, policy: str,
                counters: tuple[int, int]) -> None:
        """A restore ``:CHAIN POLICY [p:b]`` line."""
        chains = self.table(family, table)
        if chain in BUILTIN_CHAINS[table]:
            if policy not in POLICIES:
                raise RuleError(f"Bad built-in chain policy `{policy}'")
            chains[chain] = _Chain(policy, chains[chain].rules, *counters)
        elif policy != "-":
            raise RuleError(f"Can't set policy `{policy}' on non built-in chain `{chain}'")
        else:
            chains[chain] = _Chain(None, [], *counters)

    def apply(self, cmd: ParsedCommand, *, counters: tuple[int, int] = (0, 0),
              source: str = "", line: int = 0) -> None:
        chains = self.table(cmd.family, cmd.table)
        handler = getattr(self, f"_cmd_{cmd.command[1]}")
        handler(cmd, chains, counters, source, line)

    def _chain(self, chains: dict[str, _Chain], name: str) -> _Chain:
        if name not in chains:
            raise RuleError(f"{NO_CHAIN} (chain `{name}')")
        return chains[name]

    def _rules(self, cmd: ParsedCommand, counters: tuple[int, int], source: str,
               line: int) -> list[Rule]:
        assert cmd.target is not None
        return [Rule(ip, cmd.matches, cmd.target, *counters, source=source, line=line)
                for ip in cmd.ip_variants]

    def _cmd_A(self, cmd: ParsedCommand, chains: dict[str, _Chain], counters: tuple[int, int],
               source: str, line: int) -> None:
        self._chain(chains, cmd.chain).rules.extend(self._rules(cmd, counters, source, line))

    def _cmd_I(self, cmd: ParsedCommand, chains: dict[str, _Chain], counters: tuple[int, int],
               source: str, line: int) -> None:
        chain = self._chain(chains, cmd.chain)
        position = self._rulenum(cmd, 1, len(chain.rules) + 1) - 1
        # iptables inserts each expanded rule at the same number: they end up reversed.
        for rule in self._rules(cmd, counters, source, line):
            chain.rules.insert(position, rule)

    def _rulenum(self, cmd: ParsedCommand, default: int, high: int) -> int:
        if len(cmd.words) < 2:
            return default
        number = int(cmd.words[1])
        if not 1 <= number <= high:
            raise RuleError("iptables: Index of insertion too big." if cmd.command == "-I"
                            else "iptables: Index of deletion too big.")
        return number

    def _cmd_D(self, cmd: ParsedCommand, chains: dict[str, _Chain], counters: tuple[int, int],
               source: str, line: int) -> None:
        chain = self._chain(chains, cmd.chain)
        if len(cmd.words) > 1:
            del chain.rules[self._rulenum(cmd, 1, len(chain.rules)) - 1]
            return
        for rule in self._rules(cmd, counters, source, line):
            wanted = rule_spec(rule, cmd.family)
            index = next((i for i, r in enumerate(chain.rules)
                          if rule_spec(r, cmd.family) == wanted), None)
            if index is None:
                raise RuleError("iptables: Bad rule (does a matching rule exist in that chain?).")
            del chain.rules[index]

    def _cmd_C(self, cmd: ParsedCommand, chains: dict[str, _Chain], counters: tuple[int, int],
               source: str, line: int) -> None:
        """``-C``: changes nothing; fails, as iptables does, when the rule is not there."""
        chain = self._chain(chains, cmd.chain)
        present = {rule_spec(r, cmd.family) for r in chain.rules}
        for rule in self._rules(cmd, counters, source, line):
            if rule_spec(rule, cmd.family) not in present:
                raise RuleError("iptables: Bad rule (does a matching rule exist in that chain?).")

    def _cmd_R(self, cmd: ParsedCommand, chains: dict[str, _Chain], counters: tuple[int, int],
               source: str, line: int) -> None:
        chain = self._chain(chains, cmd.chain)
        rules = self._rules(cmd, counters, source, line)
        if len(rules) != 1:
            raise RuleError("multiple source or destination IP addresses not allowed")
        if len(cmd.words) < 2:
            raise RuleError("-R requires a rule number")
        chain.rules[self._rulenum(cmd, 1, len(chain.rules)) - 1] = rules[0]

    def _names(self, cmd: ParsedCommand, chains: dict[str, _Chain]) -> list[str]:
        if cmd.chain:
            self._chain(chains, cmd.chain)
            return [cmd.chain]
        return list(chains)

    def _cmd_F(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        for name in self._names(cmd, chains):
            chains[name].rules.clear()

    def _cmd_Z(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        for name in self._names(cmd, chains):
            chain = chains[name]
            chain.packets = chain.bytes = 0
            chain.rules[:] = [r.with_counters(0, 0) for r in chain.rules]

    def _cmd_N(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        if cmd.chain in chains:
            raise RuleError("iptables: Chain already exists.")
        if cmd.chain in STANDARD_VERDICTS or cmd.chain.startswith("-") or cmd.chain == "!":
            raise RuleError(f"chain name `{cmd.chain}' not allowed")
        chains[cmd.chain] = _Chain(None)

    def _cmd_X(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        names = [cmd.chain] if cmd.chain else [n for n, c in chains.items() if c.policy is None]
        for name in names:
            chain = self._chain(chains, name)
            if chain.policy is not None:
                raise RuleError("iptables: Invalid argument. (cannot delete a built-in chain)")
            if any(r.target.name == name for c in chains.values() for r in c.rules):
                raise RuleError("iptables: Too many links.")
            if chain.rules:
                raise RuleError("iptables: Directory not empty.")
            del chains[name]

    def _cmd_P(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        chain = self._chain(chains, cmd.chain)
        if chain.policy is None or cmd.words[1] not in POLICIES:
            raise RuleError(f"Bad policy name `{cmd.words[1]}' (ACCEPT or DROP on a built-in "
                            "chain)")
        chain.policy = cmd.words[1]

    def _cmd_E(self, cmd: ParsedCommand, chains: dict[str, _Chain], *_: object) -> None:
        old, new = cmd.words
        chain = self._chain(chains, old)
        if chain.policy is not None:
            raise RuleError("iptables: Invalid argument. (cannot rename a built-in chain)")
        if new in chains:
            raise RuleError("iptables: File exists.")
        renamed = {(new if name == old else name): c for name, c in chains.items()}
        chains.clear()
        chains.update(renamed)
        for c in chains.values():
            c.rules[:] = [_retarget(r, old, new) for r in c.rules]

    def _cmd_L(self, *_: object) -> None:
        """Listing changes nothing."""

    _cmd_S = _cmd_L

    def build(self, source: str = "") -> Ruleset:
        """Freeze, after checking every jump goes to an existing chain; ``source`` names
        the file the tables come from."""
        tables = []
        for (family, name), chains in self._tables.items():
            for chain in chains.values():
                for rule in chain.rules:
                    _check_target(rule, chains)
            _check_loops(chains)
            frozen = tuple(Chain(n, tuple(c.rules), c.policy, c.packets, c.bytes)
                           for n, c in chains.items())
            tables.append(Table(family, name, frozen, source))
        return Ruleset(tuple(tables))


def _retarget(rule: Rule, old: str, new: str) -> Rule:
    if rule.target.name != old:
        return rule
    return replace(rule, target=replace(rule.target, name=new))


def _check_target(rule: Rule, chains: dict[str, _Chain]) -> None:
    name = rule.target.name
    if not name or rule.target.ext is not None:
        return
    if name in STANDARD_VERDICTS and not rule.target.goto:
        return
    if name in chains and chains[name].policy is None:
        return
    raise RuleError(f"Couldn't load target `{name}': no such chain or supported target; "
                    f"{supported_list()}", source=rule.source, line=rule.line,
                    column=rule.target.column, option="-g" if rule.target.goto else "-j")


def _check_loops(chains: dict[str, _Chain]) -> None:
    """Refuse jump cycles, as the kernel does (ELOOP) when the table is replaced.

    Depth-first without recursion: a chain of thousands of jumps (valid for the
    kernel) must not exhaust Python's stack.
    """
    edges = {name: sorted({r.target.name for r in c.rules if r.target.name in chains})
             for name, c in chains.items()}
    done: set[str] = set()
    for root in chains:
        if root in done:
            continue
        trail: list[str] = [root]
        pending: list[list[str]] = [list(reversed(edges[root]))]
        while trail:
            if not pending[-1]:
                done.add(trail.pop())
                pending.pop()
                continue
            target = pending[-1].pop()
            if target in trail:
                raise RuleError("iptables: Too many levels of symbolic links. (jump loop: "
                                + " -> ".join((*trail[trail.index(target):], target)) + ")")
            if target not in done:
                trail.append(target)
                pending.append(list(reversed(edges[target])))
