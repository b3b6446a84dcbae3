"""User-defined parsers: checked at load (examples, injection-safe anchoring), then
one event per matching line."""

from __future__ import annotations

from typing import Any

import pytest

from recentd.errors import ConfigError
from recentd.logs import ClassicYear, Outcome, RecordParser
from recentd.logs.custom import injection_risk, load_custom_parser


def config(regex: str, *, examples: Any = None, outcome: str = "failure") -> dict[str, Any]:
    return {
        "name": "myapp",
        "programs": ["myapp"],
        "pattern": [
            {
                "name": "bad-login",
                "outcome": outcome,
                "regex": regex,
                "examples": examples
                if examples is not None
                else [{"line": "login failed for bob from 192.0.2.7", "addr": "192.0.2.7"}],
            }
        ],
    }


GOOD = r"^login failed for (?P<user>.*) from (?P<addr>\S+)$"


def test_a_checked_parser_reports_one_event_per_matching_line() -> None:
    parser = load_custom_parser(config(GOOD))
    records = RecordParser(ClassicYear(year=2025))
    lines = [
        "Mar 14 10:22:01 web1 myapp[9]: login failed for x from 192.0.2.1 from 198.51.100.7",
        "Mar 14 10:22:02 web1 myapp[9]: login failed for bob from example.com",
        "Mar 14 10:22:03 web1 other[9]: login failed for bob from 198.51.100.8",
    ]
    found = [e for n, text in enumerate(lines, 1) for e in parser.feed(records.parse(text, n))]
    assert [(e.line, e.outcome, str(e.address), e.user, e.kind.value) for e in found] == [
        (1, Outcome.FAILURE, "198.51.100.7", "x from 192.0.2.1", "custom")
    ]


REFUSED = {
    r"login failed for (?P<user>.*) from (?P<addr>\S+)": "without a $ anchor",
    r"^(?P<addr>\S+) x .*": "",  # anchored at the start, free text after: fine
    r"(?P<addr>\S+) x .*$": "without a ^ anchor",
    r"^.* (?P<addr>\S+) .*$": "both before and after",
    r"from (?P<addr>\S+)": "neither ^ nor $",
    r"^login failed for (\S+) from (?P<addr>\S+)": "",  # no space can hide in \S+
    r"^login failed for ([^:]+) from (?P<addr>\S+)": "without a $ anchor",
    r"^login from (?P<ip>\S+)$": "no named group 'addr'",
}


@pytest.mark.parametrize(("regex", "reason"), REFUSED.items())
def test_patterns_an_attacker_could_steer_are_refused_with_the_reason(
    regex: str, reason: str
) -> None:
    found = injection_risk(regex)
    assert (reason in found) if reason else found == ""


def test_load_errors_name_the_parser_and_pattern() -> None:
    with pytest.raises(ConfigError) as caught:
        load_custom_parser(config(r"login failed for (?P<user>.*) from (?P<addr>\S+)"))
    assert caught.value.key == "parser myapp pattern bad-login"
    assert "refused" in str(caught.value) and "$ anchor" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regex": "^login (?P<addr>["}, "does not compile"),
        ({"outcome": "ban"}, "failure, success or probe"),
        ({"examples": []}, "needs examples"),
        ({"examples": [{"line": "login failed for bob from 192.0.2.8", "addr": "192.0.2.7"}]},
         "gives address 192.0.2.8, not 192.0.2.7"),
        ({"examples": [{"line": "nothing here", "addr": "192.0.2.7"}]}, "gives no match"),
        ({"examples": [{"line": "login failed for bob from x", "addr": "x"}]},
         "not an IP address"),
    ],
)
def test_examples_and_values_are_checked_at_load(change: dict[str, Any], message: str) -> None:
    table = config(GOOD)
    table["pattern"][0].update(change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_custom_parser(table)


def test_missing_tables_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        load_custom_parser({"name": "x", "pattern": []})
    with pytest.raises(ConfigError, match="name must be"):
        load_custom_parser({"pattern": [{}]})
    with pytest.raises(ConfigError, match="programs"):
        load_custom_parser({**config(GOOD), "programs": "myapp"})


def test_huge_lines_are_not_matched() -> None:
    parser = load_custom_parser(config(GOOD))
    assert parser.match("login failed for " + "x" * (1 << 20) + " from 192.0.2.7") is None
