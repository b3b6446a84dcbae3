"""What a rule's extensions say of themselves, asked by typed queries: rule text in,
answers out. Callers (remembered decisions, the hooks, the offload policy) ask these,
and none of them looks inside a spec."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from recentd.packets.conntrack import CtState
from recentd.rules import parse_ruleset_text
from recentd.rules.model import Match

NEW, ESTABLISHED = int(CtState.NEW), int(CtState.ESTABLISHED)
SRC = Path(__file__).resolve().parents[2] / "src" / "recentd"

# the options of one rule → (reads, volatile, recent's list name, dports, ctstates),
# for the rule's last match
CASES: dict[str, tuple[Any, bool, str | None, Any, int | None]] = {
    "-p tcp --dport 22": ({"dport", "frag_offset"}, False, None, ((22, 22),), None),
    "-p tcp ! --dport 22": ({"dport", "frag_offset"}, False, None, None, None),
    "-p tcp --sport 1024:2048 --syn": ({"sport", "tcp_flags", "frag_offset"}, False, None,
                                       None, None),
    "-p udp --dport 1000:2000": ({"dport", "frag_offset"}, False, None, ((1000, 2000),), None),
    "-p udp -m multiport --dports 53,1000:2000": ({"dport", "frag_offset"}, False, None,
                                                  ((53, 53), (1000, 2000)), None),
    "-p udp -m multiport ! --dports 53": ({"dport", "frag_offset"}, False, None, None, None),
    "-p tcp -m multiport --ports 22": ({"sport", "dport", "frag_offset"}, False, None, None,
                                       None),
    "-m state --state NEW,ESTABLISHED": (set(), False, None, None, NEW | ESTABLISHED),
    "-m conntrack --ctstate NEW": (set(), False, None, None, NEW),
    "-m conntrack ! --ctstate NEW": (set(), False, None, None, None),
    "-m recent --rcheck --seconds 60 --name SSH": ({"family", "src"}, False, "SSH", None, None),
    "-m recent --update --rdest --rttl --name T": ({"family", "dst", "ttl"}, False, "T", None,
                                                   None),
    "-m recent --rcheck --seconds 5 --reap --name R": ({"family", "src"}, True, "R", None,
                                                       None),
    "-m limit --limit 5/sec": (None, True, None, None, None),
    "-m comment --comment hello": (set(), False, None, None, None),
}


def _last_match(options: str) -> Match:
    ruleset = parse_ruleset_text(f"iptables -A INPUT {options} -j ACCEPT\n").ruleset
    (rule,) = ruleset.table(4, "filter").chain("INPUT").rules  # type: ignore[union-attr]
    return rule.matches[-1]


@pytest.mark.parametrize("options", CASES)
def test_each_extension_answers_for_its_spec(options: str) -> None:
    reads, volatile, recent, dports, ctstates = CASES[options]
    match = _last_match(options)
    ext, spec = match.ext, match.spec
    found = ext.recent(spec)
    assert (ext.reads(spec), ext.volatile(spec), found and found.name, ext.dports(spec),
            ext.ctstates(spec)) == (reads, volatile, recent, dports, ctstates)


def test_no_caller_looks_inside_a_spec() -> None:
    """``getattr`` on a ``spec`` (or on ``something.spec``) appears nowhere in src/."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and node.args
                    and _names_a_spec(node.args[0])):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


def _names_a_spec(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "spec") or (
        isinstance(node, ast.Attribute) and node.attr == "spec")
