"""Every parser has the same two-call interface; names resolve or fail clearly."""

from __future__ import annotations

import pytest

from recentd.errors import ConfigError
from recentd.logs import ClassicYear, RecordParser
from recentd.logs.custom import load_custom_parser
from recentd.logs.parsers import EventParser, make_parser
from recentd.logs.sshd import SshdParser

CUSTOM = load_custom_parser({
    "name": "myapp",
    "pattern": [{
        "name": "bad", "outcome": "failure",
        "regex": r"^bad login from (?P<addr>\S+)$",
        "examples": [{"line": "bad login from 192.0.2.1", "addr": "192.0.2.1"}],
    }],
})


@pytest.mark.parametrize(("name", "line"), [
    ("sshd", "Mar 14 10:22:01 h sshd[1]: Failed password for root from 192.0.2.9 port 1 ssh2"),
    ("myapp", "Mar 14 10:22:01 h myapp[1]: bad login from 192.0.2.9"),
])
def test_each_parser_feeds_and_closes(name: str, line: str) -> None:
    parser: EventParser = make_parser(name, {"myapp": CUSTOM})
    record = RecordParser(ClassicYear(year=2025)).parse(line, 1)
    assert [str(e.address) for e in parser.feed(record)] == ["192.0.2.9"]
    assert parser.close() == []


def test_sshd_parsers_are_fresh_per_input() -> None:
    first, second = make_parser("sshd"), make_parser("sshd")
    assert isinstance(first, SshdParser) and first is not second


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no parser called 'nginx' \(known: sshd, myapp\)"):
        make_parser("nginx", {"myapp": CUSTOM})
