"""Fuzzing: random and mutated rule text raises only recentd's own errors."""

from __future__ import annotations

import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.errors import RecentError, RuleError
from recentd.rules import Engine, Hook, parse_ruleset_text
from tests.rules.golden import load_cases
from tests.rules.transcript import syn

CORPUS = load_cases()
VOCABULARY = [
    "!", "-A", "-I", "-D", "-R", "-N", "-X", "-F", "-P", "-E", "-Z", "-t", "-s", "-d", "-i",
    "-o", "-p", "-f", "-m", "-j", "-g", "INPUT", "FORWARD", "OUTPUT", "X", "tcp", "udp",
    "icmp", "recent", "limit", "hashlimit", "state", "--set", "--rcheck", "--update",
    "--seconds", "--hitcount", "--name", "--mask", "--dport", "--sport", "--limit", "1",
    "0", "-1", "4294967296", "1/day", "10.0.0.1/8", "::1", "ACCEPT", "DROP", "RETURN",
    "REJECT", "LOG", "MARK", "--set-mark", "0xffffffff", "NEW", "'", '"', "\\", "–", "*filter",
    "COMMIT", ":INPUT", "[1:2]", "mangle", "raw", "nat", "multiport", "--dports", "1:2,3",
]


def _program(case_family: int) -> str:
    return "ip6tables" if case_family == 6 else "iptables"


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    case = draw(st.sampled_from(CORPUS))
    words = shlex.split(case.rule)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "insert", "swap", "replace"]))
        position = draw(st.integers(0, len(words)))
        if action == "drop" and words:
            del words[min(position, len(words) - 1)]
        elif action == "insert":
            words.insert(position, draw(st.sampled_from(VOCABULARY)))
        elif action == "swap" and len(words) > 1:
            i = min(position, len(words) - 2)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif words:
            words[min(position, len(words) - 1)] = draw(st.sampled_from(VOCABULARY))
    chain = draw(st.sampled_from(case.chains))
    return f"{_program(case.family)} -t {case.table} -A {chain} {shlex.join(words)}"


def _parse_only_our_errors(text: str) -> None:
    try:
        result = parse_ruleset_text(text, source="fuzz")
    except RecentError:
        return
    try:
        engine = Engine(result.ruleset)
    except RuleError as exc:  # a rule left to the kernel (issue 16): refused, named
        assert "left to the kernel" in exc.message
        return
    for hook in (Hook.INPUT, Hook.FORWARD, Hook.OUTPUT):
        engine.evaluate(syn("10.0.0.1", 22), hook, 1)
        engine.evaluate(syn("fd77::2", 22, dst="fd77::1"), hook, 1)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_line())
def test_mutated_corpus_lines(text: str) -> None:
    _parse_only_our_errors(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=12))
def test_random_words_after_iptables(words: list[str]) -> None:
    _parse_only_our_errors("iptables " + " ".join(words))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_random_text(text: str) -> None:
    _parse_only_our_errors(text)
    _parse_only_our_errors("iptables -A INPUT " + text)
    _parse_only_our_errors("*filter\n" + text + "\nCOMMIT")
