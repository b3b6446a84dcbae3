"""The peers' own annotated sshd lines (../shared/peer-logs), run through our parser.

For every case file, per line format and address family: no event names an address
other than the one the peers blame (``host``), no failure on an ``fp_check`` line,
and every ``recall`` line is reported (failure or probe) with its address.  The
files are read in place, never copied here (see the corpus README).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pytest

from recentd.logs import AuthEvent, Outcome, parse_address
from tests.shared import PEER_LOGS

from .helpers import events

CORPUS = PEER_LOGS

pytestmark = pytest.mark.skipif(
    not (CORPUS / "truth.jsonl").is_file(),
    reason=f"the peers' corpus is not at {CORPUS} (../shared/peer-logs)",
)


def _truth() -> dict[str, dict[int, dict[str, Any]]]:
    by_file: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    with (CORPUS / "truth.jsonl").open() as lines:
        for text in lines:
            record = json.loads(text)
            by_file[record["file"]][record["line"]] = record
    return by_file


def _case_files() -> list[str]:
    if not (CORPUS / "truth.jsonl").is_file():
        return []
    return sorted(_truth())


def _events_by_line(name: str) -> dict[int, list[AuthEvent]]:
    text = (CORPUS / "cases" / name).read_text(encoding="utf-8")
    found: dict[int, list[AuthEvent]] = defaultdict(list)
    # The corpus's years differ per line; the year only matters for times, not here.
    for event in events(text.split("\n"), year=2020):
        found[event.line].append(event)
    return found


@pytest.mark.parametrize("name", _case_files())
def test_case_file(name: str) -> None:
    truth = _truth()[name]
    found = _events_by_line(name)
    wrong, false_failures = [], []
    recalled: Counter[tuple[str, str]] = Counter()
    expected: Counter[tuple[str, str]] = Counter()
    for number, record in sorted(truth.items()):
        blamed = parse_address(record["host"]) if record["host"] else None
        line_events = found.get(number, [])
        wrong += [
            f"{number}: {event.address} ({event.outcome.value}) but the peers blame "
            f"{record['host']}: {record['text'][-100:]}"
            for event in line_events
            if event.address != blamed
        ]
        if record["class"] == "fp_check" and any(
            event.outcome is Outcome.FAILURE for event in line_events
        ):
            false_failures.append(f"{number}: {record['text'][-100:]}")
        if record["class"] == "recall":
            key = (record["format"], record["host_kind"])
            expected[key] += 1
            recalled[key] += any(
                event.address == blamed and event.outcome is not Outcome.SUCCESS
                for event in line_events
            )
    recall = {f"{fmt}/{kind}": f"{recalled[(fmt, kind)]}/{n}" for (fmt, kind), n in expected.items()}
    assert wrong == [], f"wrong addresses (recall {recall})"
    assert false_failures == [], f"failures on fp_check lines (recall {recall})"
    low = {key: n for key, n in expected.items() if recalled[key] < 0.95 * n}
    assert not low, f"recall below 0.95: {recall}"


def test_the_corpus_has_every_format_and_family() -> None:
    formats = {(r["format"], r["host_kind"]) for f in _truth().values() for r in f.values()
               if r["class"] == "recall"}
    assert {("syslog", "ipv4"), ("syslog", "ipv6"), ("journal-json", "ipv4"),
            ("rfc5424", "ipv4"), ("rfc3339", "ipv4"), ("bare", "ipv6")} <= formats
