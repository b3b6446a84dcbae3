"""Malformed input never stops a source: random bytes, invalid UTF-8 and 1 MB lines
give no event or a normal one, and never an exception (the parser raises none: a
line it cannot read is a bare message, and a message it cannot read is no event)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.logs import ClassicYear, RecordParser, SshdParser, parse_address

from .helpers import UTC

PREFIXES = [
    b"", b"Mar 14 10:22:01 web1 sshd[4242]: ", b"<38>1 2025-03-14T10:22:01Z h sshd 1 - - ",
    b"2025-03-14T10:22:01.5+01:00 h sshd-session[9]: ", b'{"MESSAGE": ', b"<13>", b"Feb 30 ",
]
WORDS = [b"Failed password for ", b"Invalid user ", b" from ", b" port ", b"1.2.3.4", b"::1",
         b" ssh2", b" [preauth]", b"\xff\xfe", b"\x00", b"%eth0", b"Connection closed by ",
         b"drop connection #1 from [", b"]:", b"srclimit_penalise: ipv4: new ", b"/32"]


def feed_all(raw_lines: list[bytes]) -> None:
    records = RecordParser(ClassicYear(now=1_700_000_000 * 10**9, tz=UTC))
    parser = SshdParser()
    for number, raw in enumerate(raw_lines, 1):
        record = records.parse(raw.decode("utf-8", errors="replace"), number)
        for event in parser.feed(record):
            assert event.line == number
            assert parse_address(str(event.address)) == event.address
    parser.close()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes(lines: list[bytes]) -> None:
    feed_all(lines)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PREFIXES),
                          st.lists(st.one_of(st.sampled_from(WORDS), st.binary(max_size=8)),
                                   max_size=12)), max_size=10))
def test_near_misses_of_real_lines(parts: list[tuple[bytes, list[bytes]]]) -> None:
    feed_all([prefix + b"".join(words) for prefix, words in parts])


MEGABYTE = 1 << 20
HUGE = {
    "letters": b"A" * MEGABYTE,
    "spaces": b" " * MEGABYTE,
    "injections": b"Mar 14 10:22:01 h sshd[1]: Failed password for " + b"x from 1.2.3.4 " * 70_000
    + b"from 5.6.7.8 port 1 ssh2",
    "brackets": b"[" * MEGABYTE,
    "json": json.dumps({"MESSAGE": "Invalid user " + "y" * MEGABYTE + " from 1.2.3.4"}).encode(),
    "nested json": b"[" * MEGABYTE,
    "invalid utf-8": b"\xff" * MEGABYTE,
    "header then noise": b"Mar 14 10:22:01 " + b"h" * MEGABYTE + b" sshd[1]: x",
}


@pytest.mark.parametrize("raw", HUGE.values(), ids=HUGE.keys())
def test_one_megabyte_lines_are_read_quickly_and_give_no_event(raw: bytes) -> None:
    started = time.perf_counter()
    records = RecordParser(ClassicYear(year=2025, tz=UTC))
    assert SshdParser().feed(records.parse(raw.decode("utf-8", errors="replace"), 1)) == []
    assert time.perf_counter() - started < 2.0
