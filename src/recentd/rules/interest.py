"""Which packets a rule set can act on, so the live daemon queues only those.

Derivation (simple and conservative – it may over-include, never under-include):

- A (family, path) is of interest when any chain of its tables has a rule or a
  policy other than ACCEPT.
- A policy other than ACCEPT makes *every* packet of interest.
- Each reachable rule contributes its protocol and destination ports; a rule in
  a user chain inherits the restriction of the rule that jumped to it when it has
  none of its own. A rule with no protocol makes every packet of interest; a
  TCP/UDP rule without a destination-port restriction makes all that protocol's
  ports of interest. Inverted restrictions count as no restriction.
"""

from __future__ import annotations

from dataclasses import dataclass

from recentd.rules.model import TRAVERSAL, Hook, Rule, Ruleset, Table

ALL_PORTS = (0, 65535)
Selector = tuple[int, int, int]  # (protocol, first port, last port)


@dataclass(frozen=True, slots=True)
class Interest:
    """What to queue for one (family, path): everything, or these selectors.

    A selector ``(proto, low, high)`` means protocol ``proto`` with destination
    port in ``low..high`` (``0..65535`` for any port or a portless protocol).
    """

    everything: bool
    selectors: frozenset[Selector] = frozenset()


def _own(rule: Rule) -> frozenset[Selector] | None:
    ip = rule.ip
    if not ip.proto or ip.inv_proto:
        return None
    for match in rule.matches:
        dports = match.ext.dports(match.spec)
        if dports is not None:
            return frozenset((ip.proto, low, high) for low, high in dports)
    return frozenset({(ip.proto, *ALL_PORTS)})


def _walk(table: Table, chain_name: str, inherited: frozenset[Selector] | None,
          seen: set[tuple[str, frozenset[Selector] | None]]) -> frozenset[Selector] | None:
    if (chain_name, inherited) in seen:
        return frozenset()
    seen.add((chain_name, inherited))
    chain = table.chain(chain_name)
    assert chain is not None
    found: set[Selector] = set()
    for rule in chain.rules:
        own = _own(rule)
        effective = own if own is not None else inherited
        if effective is None:
            return None
        found |= effective
        if table.chain(rule.target.name) is not None:
            deeper = _walk(table, rule.target.name, effective, seen)
            if deeper is None:
                return None
            found |= deeper
    return frozenset(found)


def interests(ruleset: Ruleset) -> dict[tuple[int, Hook], Interest]:
    """The interest of every (family, path) the rule set can act on."""
    result: dict[tuple[int, Hook], Interest] = {}
    for family in ruleset.families():
        for path in (Hook.INPUT, Hook.FORWARD, Hook.OUTPUT):
            interest = _path_interest(ruleset, family, path)
            if interest is not None:
                result[(family, path)] = interest
    return result


def _path_interest(ruleset: Ruleset, family: int, path: Hook) -> Interest | None:
    selectors: set[Selector] = set()
    active = False
    for hook, table_name in TRAVERSAL[path]:
        table = ruleset.table(family, table_name)
        chain = table.chain(hook.value) if table else None
        if table is None or chain is None:
            continue
        if chain.policy != "ACCEPT":
            return Interest(True)
        if not chain.rules:
            continue
        active = True
        found = _walk(table, hook.value, None, set())
        if found is None:
            return Interest(True)
        selectors |= found
    return Interest(False, frozenset(selectors)) if active else None
