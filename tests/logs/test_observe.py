"""sshd lines in, observations out — through the parser seam the sources feed, and
through a real file source end to end."""

from __future__ import annotations

import datetime
import ipaddress
import select
from pathlib import Path

from recentd.logs import ClassicYear, RecordParser
from recentd.logs.observe import ObservingParser
from recentd.logs.parsers import make_parser
from recentd.observation import Evidence, Origin
from recentd.sources.files import FileSource
from recentd.sources.lines import LineSpan

UTC = datetime.UTC
NOW_NS = 1_800_000_000_000_000_000


def parser() -> ObservingParser:
    return ObservingParser(make_parser("sshd"), RecordParser(ClassicYear(year=2025, tz=UTC)),
                           now=lambda: NOW_NS)  # fmt: skip


def epoch_ns(text: str) -> int:
    moment = datetime.datetime.strptime(f"2025 {text}", "%Y %b %d %H:%M:%S")
    return int(moment.replace(tzinfo=UTC).timestamp()) * 10**9


SESSION = [
    "Nov 20 00:00:05 srv1 sshd[100]: Invalid user admin from 203.0.113.9 port 4711",
    "Nov 20 00:00:06 srv1 sshd[100]: Failed password for invalid user admin from 203.0.113.9 port 4711 ssh2",
    "Nov 20 00:00:07 srv1 sshd[100]: Failed password for invalid user admin from 203.0.113.9 port 4711 ssh2",
    "Nov 20 00:00:09 srv1 sshd[200]: Accepted publickey for alice from 198.51.100.4 port 5000 ssh2: ED25519 SHA256:x",
    "Nov 20 00:00:10 srv1 sshd[300]: Connection closed by authenticating user root 192.0.2.66 port 6000 [preauth]",
]


def test_failures_successes_and_context_become_observations() -> None:
    found = parser().feed_lines(SESSION, LineSpan("file", "/var/log/auth.log", 41))
    summary = [(o.evidence, str(o.address), o.wall_ns, o.origin.position, o.kind, o.category,
                o.user) for o in found]  # fmt: skip
    assert summary == [
        (Evidence.PROBE, "203.0.113.9", epoch_ns("Nov 20 00:00:05"), "line 41", "invalid_user",
         "invalid", "admin"),
        (Evidence.AUTH_FAILURE, "203.0.113.9", epoch_ns("Nov 20 00:00:06"), "line 42",
         "password", "invalid", "admin"),
        (Evidence.AUTH_FAILURE, "203.0.113.9", epoch_ns("Nov 20 00:00:07"), "line 43",
         "password", "invalid", "admin"),
        (Evidence.AUTH_SUCCESS, "198.51.100.4", epoch_ns("Nov 20 00:00:09"), "line 44",
         "publickey", "valid", "alice"),
        (Evidence.AUTH_FAILURE, "192.0.2.66", epoch_ns("Nov 20 00:00:10"), "line 45",
         "preauth_close", "root", "root"),
    ]
    assert found[1].origin == Origin("file", "/var/log/auth.log", "line 42")


def test_a_journal_entry_is_one_line() -> None:
    entry = {
        "MESSAGE": "Failed password for root from 2001:db8::7 port 22 ssh2",
        "_PID": "77", "SYSLOG_IDENTIFIER": "sshd-session", "_HOSTNAME": "srv1",
        "__REALTIME_TIMESTAMP": "1764000000123456",
    }  # fmt: skip
    origin = Origin("journal", "", "s=abc;i=1")
    (found,) = parser().feed_entry(entry, origin)
    assert (found.evidence, found.address, found.wall_ns, found.origin, found.category) == (
        Evidence.AUTH_FAILURE, ipaddress.ip_address("2001:db8::7"), 1764000000123456000, origin,
        "root",
    )  # fmt: skip


def test_a_line_without_a_time_takes_the_moment_it_was_read() -> None:
    (found,) = parser().feed_lines(
        ["sshd[5]: Failed password for bob from 192.0.2.1 port 1 ssh2"], LineSpan("-", "", 1)
    )
    assert found.wall_ns == NOW_NS


def test_a_watched_file_feeds_observations(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    source = FileSource(log, parser())
    try:
        with log.open("a") as out:
            out.write("\n".join(SESSION[:3]) + "\n")
        fd = source.fileno()
        assert fd is not None
        select.select([fd], [], [], 5)
        found = source.read()
        assert [(o.evidence, o.origin) for o in found] == [
            (Evidence.PROBE, Origin("file", str(log), "line 1")),
            (Evidence.AUTH_FAILURE, Origin("file", str(log), "line 2")),
            (Evidence.AUTH_FAILURE, Origin("file", str(log), "line 3")),
        ]
    finally:
        source.close()
