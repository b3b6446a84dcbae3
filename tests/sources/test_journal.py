"""The journal, end to end without systemd as PID 1: journal files written by
systemd-journal-remote from export format, read by the source, through python-systemd
and through journalctl."""

from __future__ import annotations

import random
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recentd.sources import Checkpoint, Source, SourceState, journal
from recentd.sources.journal import (
    JournalctlSource,
    ReaderJournalSource,
    journal_source,
    reader_available,
)
from recentd.testing.sources import Expected, check_source, drain
from tests.sources.fakes import FailParser, expected, fail_lines, seen
from tests.sources.journal_files import JOURNAL_REMOTE, JournalWriter, sshd_entry

if not JOURNAL_REMOTE.exists():  # pragma: no cover - setup.sh installs it
    pytest.fail(f"{JOURNAL_REMOTE} is missing: run scripts/setup.sh", pytrace=False)

KINDS = [ReaderJournalSource, JournalctlSource]


def read_until(source: Source, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Read whenever the source's descriptor says so, until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        fd = source.fileno()
        if fd is not None:
            select.select([fd], [], [], 0.1)
        source.read()
    assert done(), f"not done after {timeout_s} s: {source.status()}"


def fail_entry(item: Expected) -> dict[str, bytes | str]:
    return sshd_entry(fail_lines([item]).decode().strip(), item.wall_ns // 1000)


@dataclass
class JournalHarness:
    """Each batch goes to the journal file of its turn: one file appended to, then a
    second one appearing beside it."""

    directory: Path
    kind: type[ReaderJournalSource] | type[JournalctlSource]
    writer: JournalWriter = field(init=False)
    turn: int = 0

    def __post_init__(self) -> None:
        self.writer = JournalWriter(self.directory)

    def open(self, checkpoint: Checkpoint | None) -> Source:
        return self.kind(FailParser(), checkpoint, directory=self.directory)

    def emit(self, batch: Sequence[Expected]) -> None:
        self.turn += 1
        self.writer.write([fail_entry(item) for item in batch], file="ab"[self.turn // 3])

    def emit_garbage(self) -> None:
        rng = random.Random(5)
        realtime = 1_700_000_050_000_000
        self.writer.write([
            sshd_entry(bytes(rng.randrange(256) for _ in range(3000)), realtime),
            sshd_entry(b"FAIL 192.0.2.200 \xff\xfe 1700000000000000000", realtime),
            sshd_entry(b"FAIL 192.0.2.201 1700" + b"9" * 1_000_000, realtime),  # 1 MB
            sshd_entry("FAIL 192.0.2.202 1700000000000000000", realtime, comm="cron"),
        ], file="a")


@pytest.mark.parametrize("kind", KINDS)
def test_conforms(tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]) -> None:
    check_source(JournalHarness(tmp_path, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_only_sshd_and_sshd_session(tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]) -> None:
    writer = JournalWriter(tmp_path)
    source = kind(FailParser(), directory=tmp_path)
    a, b, c, d = expected(4)
    writer.write([
        fail_entry(a),
        {**fail_entry(b), "_COMM": "sshd-session", "SYSLOG_IDENTIFIER": "sshd-session"},
        {**fail_entry(c), "_COMM": "cron", "SYSLOG_IDENTIFIER": "cron"},
        {**fail_entry(d), "_COMM": "python3", "SYSLOG_IDENTIFIER": "sshd"},  # logger -t sshd
    ])
    assert seen(drain(source, 3)) == [a, b, d]
    source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_cursor_resume_is_exact(tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]) -> None:
    writer = JournalWriter(tmp_path)
    items = expected(6)
    writer.write([fail_entry(item) for item in items[:3]])
    source = kind(FailParser(), {}, directory=tmp_path)  # {}: everything is news
    got = drain(source, 3)
    assert seen(got) == items[:3]
    assert got[-1].origin.position == source.checkpoint()["cursor"]
    checkpoint = source.checkpoint()
    source.close()
    writer.write([fail_entry(item) for item in items[3:]], file="b")
    source = kind(FailParser(), checkpoint, directory=tmp_path)
    assert seen(drain(source, 3)) == items[3:]       # the saved entry not handed back
    source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_without_checkpoint_only_new_entries_and_a_restart_misses_none(
    tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]
) -> None:
    writer = JournalWriter(tmp_path)
    old, new = expected(2), expected(2, start=10)
    writer.write([fail_entry(item) for item in old])
    source = kind(FailParser(), directory=tmp_path)
    assert source.read() == []
    checkpoint = source.checkpoint()                 # the tail, noted at once
    source.close()
    writer.write([fail_entry(item) for item in new])
    source = kind(FailParser(), checkpoint, directory=tmp_path)
    assert seen(drain(source, 2)) == new
    source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_fields_reach_the_parser_as_text(tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]) -> None:
    seen_fields: list[dict[str, str]] = []

    class Recorder(FailParser):
        def feed_entry(self, fields, origin):  # type: ignore[no-untyped-def]
            seen_fields.append(dict(fields))
            return super().feed_entry(fields, origin)

    writer = JournalWriter(tmp_path)
    writer.write([sshd_entry(b"Invalid user \xff\xferoot from 192.0.2.1 port 22", 1_700_000_000_123_456)])
    source = kind(Recorder(), {}, directory=tmp_path)
    read_until(source, lambda: bool(seen_fields))
    (fields,) = seen_fields
    assert fields["MESSAGE"] == "Invalid user \ufffd\ufffdroot from 192.0.2.1 port 22"
    assert fields["__REALTIME_TIMESTAMP"] == "1700000000123456"
    assert fields["_PID"] == "4242" and fields["_COMM"] == "sshd"
    assert fields["__CURSOR"] == source.checkpoint()["cursor"]
    source.close()


def test_journalctl_missing_is_degraded_not_a_crash(tmp_path: Path) -> None:
    source = JournalctlSource(FailParser(), directory=tmp_path, journalctl=str(tmp_path / "nope"))
    assert source.read() == []
    status = source.status()
    assert status.state is SourceState.DEGRADED and "nope" in status.detail
    source.close()


def test_journalctl_exiting_is_degraded_then_restarted_from_the_cursor(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    items = expected(4)
    writer.write([fail_entry(item) for item in items[:2]])
    source = JournalctlSource(FailParser(), {}, directory=tmp_path)
    assert seen(drain(source, 2)) == items[:2]
    assert source._process is not None
    source._process.kill()                          # journalctl dies
    read_until(source, lambda: source.status().state is SourceState.DEGRADED)
    assert "exited" in source.status().detail
    writer.write([fail_entry(item) for item in items[2:]])
    assert seen(drain(source, 2)) == items[2:]
    assert source.status().state is SourceState.OK
    source.close()


def test_the_api_is_used_where_it_is_installed(tmp_path: Path) -> None:
    source = journal_source(FailParser(), directory=tmp_path)
    assert isinstance(source, ReaderJournalSource) is reader_available()
    source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_backlog_is_handed_on_in_slices(
    tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal, "ENTRY_BUDGET", 3)
    monkeypatch.setattr(journal, "READ_BUDGET", 2000)  # journalctl: a few JSON lines
    writer = JournalWriter(tmp_path)
    items = expected(20)
    writer.write([fail_entry(item) for item in items])
    source = kind(FailParser(), {}, directory=tmp_path)
    fd = source.fileno()
    assert fd is not None
    got, reads = [], 0
    deadline = time.monotonic() + 5
    while len(got) < len(items) and time.monotonic() < deadline:
        select.select([fd], [], [], 0.5)
        got += source.read()
        reads += 1
    assert seen(got) == items and reads >= 4
    assert source.fileno() == fd                    # one descriptor all along
    source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_live_entries_appended_and_a_new_journal_file_are_seen(
    tmp_path: Path, kind: type[ReaderJournalSource] | type[JournalctlSource]
) -> None:
    writer = JournalWriter(tmp_path)
    items = expected(6)
    writer.write([fail_entry(items[0])], file="system")
    source = kind(FailParser(), directory=tmp_path)      # from now on
    writer.write([fail_entry(item) for item in items[1:3]], file="system")  # appended
    assert seen(drain(source, 2)) == items[1:3]
    writer.write([fail_entry(item) for item in items[3:]], file="system@rotated")  # a new file
    assert seen(drain(source, 3)) == items[3:]
    source.close()
