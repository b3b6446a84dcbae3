"""A log file followed live: transcripts of what a writer and logrotate do, and what the
source reports (every line once, none missed)."""

from __future__ import annotations

import gzip
import os
import select
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.sources import Checkpoint, Source, SourceState, files
from recentd.sources.files import FileSource
from recentd.testing.sources import Expected, check_source, drain
from tests.sources.fakes import FailParser, expected, fail_lines, garbage, seen


@dataclass
class FileHarness:
    path: Path

    def open(self, checkpoint: Checkpoint | None) -> Source:
        return FileSource(self.path, FailParser(), checkpoint)

    def emit(self, batch: Sequence[Expected]) -> None:
        append(self.path, fail_lines(batch))

    def emit_garbage(self) -> None:
        append(self.path, garbage())


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def source_over(path: Path, checkpoint: Checkpoint | None = None) -> FileSource:
    return FileSource(path, FailParser(), checkpoint)


def test_conforms_on_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "auth.log").touch()
    check_source(FileHarness(tmp_path / "auth.log"))


def test_conforms_on_a_file_that_appears_later(tmp_path: Path) -> None:
    check_source(FileHarness(tmp_path / "auth.log"))


def test_existing_lines_are_not_news_unless_asked(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    old, new = expected(3), expected(2, start=10)
    append(log, fail_lines(old))
    at_end = source_over(log)
    whole = FileSource(log, FailParser(), start_at_end=False)
    append(log, fail_lines(new))
    assert seen(at_end.read()) == new
    assert seen(whole.read()) == old + new
    at_end.close(), whole.close()


def test_a_partial_line_waits_for_its_newline_even_across_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    source = source_over(log)
    first, second = expected(2)
    line = fail_lines([second])
    append(log, fail_lines([first]) + line[:9])
    assert seen(source.read()) == [first]
    checkpoint = source.checkpoint()
    source.close()
    append(log, line[9:])
    source = source_over(log, checkpoint)
    assert seen(source.read()) == [second]
    assert source.read() == []
    source.close()


def test_origin_names_the_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"noise\n")
    source = FileSource(log, FailParser(), start_at_end=False)
    append(log, fail_lines(expected(1)))
    (observation,) = source.read()
    assert str(observation.origin) == f"file {log} (line 2)"
    source.close()


def test_rename_rotation_in_a_burst_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = expected(300)
    writer = log.open("ab", buffering=0)
    source = source_over(log)
    got = []
    writer.write(fail_lines(lines[:100]))
    got += source.read()
    writer.write(fail_lines(lines[100:150]))       # unread when logrotate renames
    log.rename(tmp_path / "auth.log.1")
    log.touch()                                     # logrotate's `create`
    writer.write(fail_lines(lines[150:200]))       # before its HUP the writer keeps the old file
    got += source.read()
    writer.write(fail_lines(lines[200:220]) + b"FAIL 198.51")  # still old, a partial line
    got += source.read()
    writer.close()
    writer = log.open("ab", buffering=0)            # HUP: the writer moves to the new file
    writer.write(fail_lines(lines[220:]))
    got += drain(source, len(lines) - len(got))
    writer.close()
    assert seen(got) == lines
    assert source.status().state is SourceState.OK
    source.close()


def test_copytruncate_reads_the_copy_for_what_it_had_not_read(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = expected(40)
    writer = log.open("ab", buffering=0)            # O_APPEND: after the truncation, at 0
    source = source_over(log)
    writer.write(fail_lines(lines[:10]))
    got = source.read()
    writer.write(fail_lines(lines[10:20]))         # unread when logrotate copies
    shutil.copyfile(log, tmp_path / "auth.log.1")
    os.truncate(log, 0)
    writer.write(fail_lines(lines[20:40]))         # more than was there: only the head tells
    got += source.read()
    writer.close()
    assert seen(got) == lines
    source.close()


def test_truncation_restarts_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    source = source_over(log)
    before, after = expected(5), expected(2, start=20)
    append(log, fail_lines(before))
    assert seen(source.read()) == before
    log.write_bytes(fail_lines(after))              # `> auth.log`, then a new writer
    assert seen(source.read()) == after
    source.close()


def test_a_deleted_and_recreated_file(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    source = source_over(log)
    old, new = expected(3), expected(3, start=10)
    append(log, fail_lines(old[:2]))
    assert seen(source.read()) == old[:2]
    append(log, fail_lines(old[2:]))
    log.unlink()
    assert seen(source.read()) == old[2:]           # what it held open, to its end
    assert source.status().state is SourceState.WAITING
    log.write_bytes(fail_lines(new))
    assert seen(drain(source, 3)) == new
    assert source.status().state is SourceState.OK
    source.close()


def test_a_file_that_does_not_exist_yet_then_appears(tmp_path: Path) -> None:
    log = tmp_path / "later" / "auth.log"           # not even its directory
    source = source_over(log)
    assert source.read() == []
    status = source.status()
    assert status.state is SourceState.WAITING and str(log) in status.detail
    log.parent.mkdir()
    log.write_bytes(fail_lines(expected(2)))         # all of it is news
    assert seen(drain(source, 2)) == expected(2)
    source.close()


def test_restart_after_a_rotation_while_down_reads_the_old_rest_then_the_new(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    lines = expected(30)
    append(log, fail_lines(lines[:10]))
    source = FileSource(log, FailParser(), start_at_end=False)
    assert seen(source.read()) == lines[:10]
    checkpoint = source.checkpoint()
    source.close()
    append(log, fail_lines(lines[10:20]))
    log.rename(tmp_path / "auth.log.1")
    append(log, fail_lines(lines[20:]))
    source = source_over(log, checkpoint)
    assert seen(source.read()) == lines[10:]
    source.close()


def test_restart_after_a_compressed_rotation_while_down(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = expected(30)
    append(log, fail_lines(lines[:10]))
    source = FileSource(log, FailParser(), start_at_end=False)
    assert seen(source.read()) == lines[:10]
    checkpoint = source.checkpoint()
    source.close()
    append(log, fail_lines(lines[10:20]))
    with gzip.open(tmp_path / "auth.log.1.gz", "wb") as packed:
        packed.write(log.read_bytes())
    log.unlink()
    append(log, fail_lines(lines[20:]))
    source = source_over(log, checkpoint)
    assert seen(source.read()) == lines[10:]
    source.close()


def test_a_reused_inode_with_other_content_is_a_new_file(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, fail_lines(expected(5)))
    info = log.stat()
    stale = {"device": info.st_dev, "inode": info.st_ino, "offset": 60, "line": 2,
             "head": "00" * 16, "head_len": 60}
    source = source_over(log, stale)
    assert seen(source.read()) == expected(5)
    source.close()


def test_a_damaged_checkpoint_reads_the_file_as_new(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    append(log, fail_lines(expected(2)))
    source = source_over(log, {"device": "x", "offset": -3})
    assert seen(source.read()) == expected(2)
    source.close()


def test_overlong_lines_are_dropped_counted_and_never_stop_it(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    source = source_over(log)
    append(log, garbage())
    append(log, b"FAIL 192.0.2.7 1" + b"0" * 300_000)    # overlong, its newline not yet there
    assert source.read() == []
    append(log, b"0" * 700_000 + b"\n" + fail_lines(expected(1)))
    assert seen(source.read()) == expected(1)
    assert source.status().skipped == 2
    assert source.status().state is SourceState.OK
    source.close()


def test_a_directory_in_its_place_is_degraded_not_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.mkdir()
    source = source_over(log)
    assert source.read() == []
    assert source.status().state is SourceState.DEGRADED
    log.rmdir()
    log.write_bytes(fail_lines(expected(1)))
    assert seen(drain(source, 1)) == expected(1)
    source.close()


def test_close_twice_and_read_after_close(tmp_path: Path) -> None:
    source = source_over(tmp_path / "auth.log")
    source.close()
    source.close()
    assert source.read() == []
    assert source.fileno() is None


def test_a_write_wakes_its_descriptor(tmp_path: Path) -> None:
    wait_s = 0.0
    log = tmp_path / "auth.log"
    log.touch()
    source = source_over(log)
    fd = source.fileno()
    assert fd is not None
    source.read()
    assert select.select([fd], [], [], wait_s)[0] == []
    append(log, fail_lines(expected(1)))
    assert select.select([fd], [], [], 1.0)[0] == [fd]
    assert seen(source.read()) == expected(1)
    assert select.select([fd], [], [], wait_s)[0] == []
    source.close()


@settings(max_examples=60, deadline=None)
@given(
    noise=st.lists(st.one_of(st.binary(max_size=2000), st.just(b"x" * 1_100_000)), max_size=5),
    cuts=st.lists(st.integers(1, 300_000), max_size=6),
)
def test_fuzzed_bytes_never_stop_it_nor_hide_what_follows(
    noise: list[bytes], cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "auth.log"
        log.touch()
        source = source_over(log)
        data = b"\n".join(noise) + b"\n" + fail_lines(expected(3))
        found, at = [], 0
        for cut in [*cuts, len(data)]:               # written in arbitrary pieces
            append(log, data[at : at + cut])
            at += cut
            found += source.read()
        append(log, data[at:])
        found += source.read()
        assert seen(found)[-3:] == expected(3)
        assert source.status().state is SourceState.OK
        assert source.status().skipped == sum(len(part) > 65536 for part in noise)
        source.close()


def test_a_backlog_is_read_in_slices_and_stays_readable_until_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "READ_BUDGET", 500)   # a few lines a read
    log = tmp_path / "auth.log"
    lines = expected(100)
    append(log, fail_lines(lines[:60]))
    source = FileSource(log, FailParser(), start_at_end=False)
    log.rename(tmp_path / "auth.log.1")               # an older file still to finish first
    append(log, fail_lines(lines[60:]))
    fd = source.fileno()
    assert fd is not None
    got, reads = source.read(), 1
    assert 60 <= len(got) < 80                        # the rotated file's rest whole, then a slice
    while select.select([fd], [], [], 0)[0]:          # readable while more is there
        got += source.read()
        reads += 1
    assert seen(got) == lines and reads >= 4
    source.close()
