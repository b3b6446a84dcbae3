"""Rendering against stored output of the real iptables 1.8.9 (legacy).

``tests/data/rules/render/corpusN.rules`` holds every OK corpus line with varied
counters (large enough for the K/M/G/T units); the other files are what
``iptables-legacy-save -c`` and ``iptables -t T -L -n -v [-x]`` printed after
restoring it (dates replaced by ``DATE``). ``test_netns.py`` re-checks them live.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.rules import Ruleset, parse_ruleset_text, render_list, render_rules, render_save
from recentd.rules.render import format_count

RENDER = Path(__file__).resolve().parent.parent / "data" / "rules" / "render"


def ruleset(family: int) -> Ruleset:
    return parse_ruleset_text((RENDER / f"corpus{family}.rules").read_text()).ruleset


@pytest.mark.parametrize("family", [4, 6])
def test_save_with_counters(family: int) -> None:
    expected = (RENDER / f"corpus{family}.save-c").read_text()
    assert render_save(ruleset(family), family, counters=True, stamp=lambda: "DATE") == expected


@pytest.mark.parametrize("family", [4, 6])
def test_save_without_counters_drops_only_rule_counters(family: int) -> None:
    expected = (RENDER / f"corpus{family}.save-c").read_text()
    ours = render_save(ruleset(family), family, stamp=lambda: "DATE")
    stripped = "".join(line.split("] ", 1)[1] if line.startswith("[") else line
                       for line in expected.splitlines(keepends=True))
    assert ours == stripped


@pytest.mark.parametrize("path", sorted(RENDER.glob("*.list*")), ids=lambda p: p.name)
def test_list(path: Path) -> None:
    family = int(path.name[6])
    table_name = path.name.split(".")[1]
    table = ruleset(family).table(family, table_name)
    assert table is not None
    assert render_list(table, exact=path.name.endswith("-x")) == path.read_text()


def test_dash_S_is_the_save_rules_with_policies() -> None:
    table = ruleset(4).table(4, "filter")
    assert table is not None
    text = render_rules(table)
    assert text.startswith("-P INPUT DROP\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N USER_A\n")
    assert render_rules(table, "USER_A") == "-N USER_A\n-A USER_A -j RETURN\n"


@pytest.mark.parametrize(("number", "short", "exact"), [
    (0, "    0 ", "       0 "), (99999, "99999 ", "   99999 "), (100000, " 100K ", "  100000 "),
    (9999499, "9999K ", " 9999499 "), (9999500, "  10M ", " 9999500 "),
    (123456789012345, " 123T ", "123456789012345 "),
])
def test_counter_units(number: int, short: str, exact: str) -> None:
    assert format_count(number, False) == short
    assert format_count(number, True) == exact
