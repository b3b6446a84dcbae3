"""The batched fast path of :class:`ObservingParser` and its twin, the line-by-line
reference path, give the same observations and leave the same state: on the shared
generator's logs, on every peer-corpus line, and on generated and mutated lines cut
into batches anywhere (hypothesis)."""

from __future__ import annotations

import copy
import datetime
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.logs import ClassicYear, RecordParser, SshdParser
from recentd.logs.observe import ObservingParser
from recentd.logs.parsers import make_parser
from recentd.observation import Observation
from recentd.sources.lines import LineSpan
from tests.shared import GEN_AUTHLOG, PEER_LOGS

UTC = datetime.UTC
NOW_NS = 1_764_000_000 * 10**9  # 2025-11-24: "now" for the no-year policy
GENERATOR = GEN_AUTHLOG
CORPUS = PEER_LOGS / "cases"


def parser(year: int | None) -> ObservingParser:
    return ObservingParser(make_parser("sshd"),
                           RecordParser(ClassicYear(year=year, now=NOW_NS, tz=UTC)),
                           now=lambda: NOW_NS)  # fmt: skip


def run(lines: Sequence[str], cuts: Sequence[int], year: int | None, *, fast: bool
        ) -> tuple[list[object], ObservingParser]:  # fmt: skip
    """The observations of ``lines`` fed in batches ending at ``cuts``, each batch's
    followed by the state it leaves, and the parser."""
    subject = parser(year)
    feed = subject.feed_lines if fast else subject.feed_lines_reference
    found: list[object] = []
    start = 0
    for end in [*sorted(set(cuts)), len(lines)]:
        if start < end <= len(lines):
            found += feed(lines[start:end], LineSpan("file", "auth.log", start + 1))
            found.append(state(subject))
            start = end
    return found + subject.finish(), subject


def state(subject: ObservingParser) -> tuple[object, ...]:
    years = subject.records.years
    events = subject.events
    assert isinstance(events, SshdParser)
    # The open connections themselves (private, but they are the state to compare), and
    # the line counts metrics read.
    counts = (subject.lines_read, subject.lines_matched, subject.lines_unparsed)
    return years.year, years.month, counts, [(key, copy.copy(session))
                                             for key, session in events._sessions.items()]  # fmt: skip


def assert_agree(lines: Sequence[str], cuts: Sequence[int] = (), year: int | None = 2025) -> int:
    """Both paths give the same; the number of observations."""
    fast, _ = run(lines, cuts, year, fast=True)
    reference, _ = run(lines, cuts, year, fast=False)
    assert fast == reference
    return sum(isinstance(found, Observation) for found in fast)


def generate(directory: Path, fmt: str, lines: int = 5_000) -> list[str]:
    """A log crossing New Year (one line a second from 23:00 on December 31st)."""
    out = directory / f"auth-{fmt}.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--lines", str(lines), "--out", str(out),
         "--format", fmt, "--seed", "5", "--start", "2025-12-31T23:00:00", "--rate", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.read_text().splitlines()


def corpus_lines() -> tuple[str, ...]:
    if not CORPUS.is_dir():
        return ()
    return tuple(line for path in sorted(CORPUS.iterdir())
                 for line in path.read_text(encoding="utf-8").split("\n"))  # fmt: skip


needs_generator = pytest.mark.skipif(not GENERATOR.is_file(), reason=f"no {GENERATOR}")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no {CORPUS}")


@needs_generator
@pytest.mark.parametrize("fmt", ["classic", "rfc3339"])
@pytest.mark.parametrize("year", [2025, None])
def test_generated_logs_agree_across_new_year(
    tmp_path: Path, fmt: str, year: int | None
) -> None:
    lines = generate(tmp_path, fmt)
    assert lines[0].startswith(("Dec 31", "2025-12-31")), lines[0]
    assert lines[-1].startswith(("Jan  1", "2026-01-01")), lines[-1]
    assert assert_agree(lines, cuts=range(0, len(lines), 700), year=year) > 1000


@needs_corpus
@pytest.mark.parametrize("year", [2020, None])
def test_every_peer_corpus_line_agrees(year: int | None) -> None:
    lines = corpus_lines()
    assert assert_agree(lines, cuts=range(0, len(lines), 37), year=year) > 100


def test_months_of_other_programs_move_the_year_as_line_by_line() -> None:
    """Only cron writes from January to May: the fast path skips those lines, yet the
    year still moves at New Year (November to July would not move it)."""
    lines = [
        "Nov 30 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
        *(f"{month} 1 00:00:00 h CRON[2]: pam_unix(cron:session): session closed for user root"
          for month in ("Jan", "Mar", "May")),
        "Jul  1 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
    ]  # fmt: skip
    for cuts in ([], [1], [2], [4], [1, 2, 3, 4]):
        assert assert_agree(lines, cuts) == 2
    found, subject = run(lines, [1, 2, 3, 4], 2025, fast=True)
    times = [o.wall_ns // 10**9 for o in found if isinstance(o, Observation)]
    assert times == [1764496800, 1782900000]  # 2025, 2026
    assert subject.records.years.year == 2026


def test_every_pair_of_messages_in_one_connection_agrees() -> None:
    """Each message after each other one, from the same sshd process (what the
    sessions remember between two lines is what the fast path must keep)."""
    for first in SSH_LINES:
        for second in SSH_LINES:
            lines = [f"Nov 20 00:00:0{n} srv1 sshd[7]: {text}"
                     for n, text in enumerate((first, second, SSH_LINES[4]))]  # fmt: skip
            assert_agree(lines)
            assert_agree(lines, cuts=[1, 2])


# ------------------------------------------------------------------ property
SSH_LINES = [
    "Failed password for invalid user admin from 203.0.113.9 port 4711 ssh2",
    "Accepted publickey for alice from 198.51.100.4 port 5000 ssh2: ED25519 SHA256:x",
    "Invalid user x from 1.2.3.4 from 198.51.100.7 port 22",
    "Connection closed by authenticating user root 192.0.2.66 port 6000 [preauth]",
    "Disconnected from invalid user oracle 2001:db8::5 port 1 [preauth]",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.8  user=root",
    "Received disconnect from 192.0.2.9 port 3:11: Bye Bye [preauth]",
    "maximum authentication attempts exceeded for root from 192.0.2.10 port 5 ssh2 [preauth]",
    "Connection from 192.0.2.11 port 22 on 10.0.0.1 port 22",
    "Disconnecting: Too many authentication failures for root",
    "Failed password for x from 192.0.2.1 port 2 ssh2 from 192.0.2.2 port 3 ssh2",
    "Failed none for invalid user  from 192.0.2.3 port 4 ssh2",
    "Accepted keyboard-interactive/pam for <invalid username> from ::ffff:192.0.2.4 port 5 ssh2",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=host.example  user=bob",
    "Connection reset by user alice 192.0.2.12 port 9",
    "Received disconnect from 192.0.2.13 port 4:11: disconnected by user",
    "Disconnected from 192.0.2.14 port 8",
    "Disconnected from authenticating user bob 192.0.2.20 port 7",
    "Connection closed by invalid user  192.0.2.21 port 8 [preauth]",
    "Disconnected from user alice 192.0.2.22 port 9",
    "Bad protocol version identification 'x' from 192.0.2.15 port 1",
]
STAMPS = ["Jan  1 00:00:{s:02d}", "Feb 28 00:00:{s:02d}", "Jun 15 12:00:{s:02d}",
          "Nov 20 00:00:{s:02d}", "Dec 31 23:59:{s:02d}", "Feb 30 00:00:{s:02d}"]
HEADERS = [
    *(stamp + " srv1 " + program
      for stamp in STAMPS
      for program in ("sshd[{pid}]: ", "sshd-session[{pid}]: ", "CRON[{pid}]: ", "sudo: ")),
    "2025-11-20T00:00:{s:02d}.5+01:00 srv1 sshd[{pid}]: ", "<38>Dec 31 00:00:{s:02d} srv1 sshd[{pid}]: ",
    "sshd[{pid}]: ", "", "Nov 20 00:00:{s:02d} srv1 dropbear[{pid}]: ",
]  # fmt: skip
NOISE = ["pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
         "Started session 1.", "", " ", "\r", "Failed password for"]  # fmt: skip
MUTATIONS = ["", " ", "\t", "\r", "\n", " \r", "<13>", "Nov 20 00:00:00 ", "x", "]", "[1]: ",
             " [preauth]", " [preauth] ", " from 192.0.2.99", " port 7", "error: ", "\ufffd"]


@st.composite
def log_line(draw: st.DrawFn) -> str:
    header = draw(st.sampled_from(HEADERS)).format(s=draw(st.integers(0, 59)),
                                                   pid=draw(st.sampled_from([1, 2, 3])))  # fmt: skip
    line = header + draw(st.sampled_from(SSH_LINES + NOISE))
    if draw(st.booleans()):
        line += draw(st.sampled_from([" [preauth]", "  ", " \r", " [preauth] [preauth]"]))
    if draw(st.booleans()):  # mutate: insert a piece anywhere, or cut the line
        where = draw(st.integers(0, len(line)))
        piece = draw(st.sampled_from(MUTATIONS) | st.text(max_size=3))
        line = line[:where] + piece + line[where:] if draw(st.booleans()) else line[:where]
    return line


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(log_line() | st.sampled_from(corpus_lines() or ("",)), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    year=st.sampled_from([2025, None]),
)
def test_fast_and_reference_paths_agree_on_any_lines(
    lines: list[str], cuts: list[int], year: int | None
) -> None:
    assert_agree(lines, cuts, year)
