"""Copy an engine's live counters back into an immutable :class:`Ruleset`."""

from __future__ import annotations

from dataclasses import replace

from recentd.rules.compile import RULE_COUNTERS, CompiledChain
from recentd.rules.model import Ruleset


def with_counters(ruleset: Ruleset, compiled: dict[tuple[int, str], dict[str, CompiledChain]]
                  ) -> Ruleset:
    tables = []
    for table in ruleset.tables:
        chains = compiled[(table.family, table.name)]
        new_chains = []
        for chain in table.chains:
            live = chains[chain.name]
            rules = tuple(rule.with_counters(*compiled_rule[RULE_COUNTERS])
                          for rule, compiled_rule in zip(chain.rules, live.rules, strict=True))
            new_chains.append(replace(chain, rules=rules, packets=live.counters[0],
                                      bytes=live.counters[1]))
        tables.append(replace(table, chains=tuple(new_chains)))
    return Ruleset(tuple(tables))
