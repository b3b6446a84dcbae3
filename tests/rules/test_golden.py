"""The golden corpus: our parse + render must give iptables 1.8.9's canonical text,
and iptables' FAIL lines must raise RuleError (never another exception)."""

from __future__ import annotations

import pytest

from recentd.errors import RuleError
from recentd.rules.command import parse_command
from recentd.rules.lexer import tokenize_restore
from recentd.rules.model import Rule
from recentd.rules.parser import parse_ruleset_text
from recentd.rules.render import rule_spec
from tests.rules.golden import Case, load_cases

CASES = load_cases()


def our_rules(case: Case, chain: str) -> list[str]:
    """Run ``-t TABLE -A CHAIN RULE`` through our parser and return the -S texts."""
    program = "ip6tables" if case.family == 6 else "iptables"
    line = f"{program} -t {case.table} -A {chain} {case.rule}"
    ruleset = parse_ruleset_text(line, source=case.id).ruleset
    table = ruleset.table(case.family, case.table)
    assert table is not None
    found = table.chain(chain)
    assert found is not None
    return [rule_spec(rule, case.family).lstrip(" ") for rule in found.rules]


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_line(case: Case) -> None:
    for chain in case.chains:
        if case.ok:
            assert our_rules(case, chain) == list(case.expected), case.rule
        else:
            with pytest.raises(RuleError):
                our_rules(case, chain)


@pytest.mark.parametrize("case", [c for c in CASES if c.ok], ids=lambda c: c.id)
def test_canonical_form_is_a_fixed_point(case: Case) -> None:
    """Parsing what we print prints the same again (what save | restore relies on)."""
    for text in case.expected:
        if "--seconds -1" in text:
            continue  # spec §6: iptables 1.8.9 prints seconds signed; it cannot be restored
        cmd = parse_command(tokenize_restore(f"-t {case.table} -A {case.chains[0]} {text}"), case.family,
                            case.table)
        for ip in cmd.ip_variants:
            assert cmd.target is not None
            rule = Rule(ip, cmd.matches, cmd.target)
            assert rule_spec(rule, case.family).lstrip(" ") == text
