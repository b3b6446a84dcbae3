"""A log and its rotations read once, for `logs scan` and `logs replay`: plain or gzip by
the first bytes, oldest first."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.sources import lines as lines_module
from recentd.sources.lines import MAX_LINE, LineSplitter
from recentd.sources.rotated import iter_lines, rotations, scan
from tests.sources.fakes import FailParser, expected, fail_lines, seen


def gz(path: Path, data: bytes) -> None:
    with gzip.open(path, "wb") as file:
        file.write(data)


def test_rotations_oldest_first_then_the_log(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    for name in ["auth.log", "auth.log.1", "auth.log.2.gz", "auth.log.10.gz", "auth.log.3.gz",
                 "auth.logger", "auth.log.1.bak", "other.log.1"]:
        (tmp_path / name).touch()
    assert [p.name for p in rotations(log)] == [
        "auth.log.10.gz", "auth.log.3.gz", "auth.log.2.gz", "auth.log.1", "auth.log"]


def test_dateext_rotations_sort_by_date(tmp_path: Path) -> None:
    for name in ["secure", "secure-20240107", "secure-20231231.gz", "secure-20240114.gz"]:
        (tmp_path / name).touch()
    assert [p.name for p in rotations(tmp_path / "secure")] == [
        "secure-20231231.gz", "secure-20240107", "secure-20240114.gz", "secure"]


def test_gzip_is_told_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    gz(tmp_path / "auth.log.1", b"FAIL 192.0.2.1 1\n")          # compressed, no .gz
    (tmp_path / "auth.log.2.gz").write_bytes(b"FAIL 192.0.2.2 2\n")  # named .gz, plain
    assert list(iter_lines(tmp_path / "auth.log.1")) == ["FAIL 192.0.2.1 1"]
    assert list(iter_lines(tmp_path / "auth.log.2.gz")) == ["FAIL 192.0.2.2 2"]


def test_scan_reads_the_rotations_as_one_stream(tmp_path: Path) -> None:
    lines = expected(9)
    log = tmp_path / "auth.log"
    gz(tmp_path / "auth.log.2.gz", fail_lines(lines[:3]))
    (tmp_path / "auth.log.1").write_bytes(fail_lines(lines[3:6]) + b"OPEN 203.0.113.5 7\n")
    log.write_bytes(b"garbage \xff\n" + fail_lines(lines[6:]).rstrip(b"\n"))  # no last newline
    parser = FailParser()
    found = list(scan(rotations(log), parser))
    assert seen(found[:9]) == lines
    assert [str(o.address) for o in found[9:]] == ["203.0.113.5"]  # still open at the end
    assert str(found[6].origin) == f"file {log} (line 2)"
    assert parser.finished == 1


def test_a_truncated_gzip_is_an_error_for_the_caller(tmp_path: Path) -> None:
    broken = tmp_path / "auth.log.2.gz"
    gz(broken, fail_lines(expected(500)))
    broken.write_bytes(broken.read_bytes()[:200])
    try:
        list(iter_lines(broken))
    except EOFError:
        return
    raise AssertionError("a truncated gzip read as if whole")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=8))
def test_splitting_anywhere_gives_the_same_lines(data: bytes, cuts: list[int]) -> None:
    whole = LineSplitter()
    expected_lines = whole.feed(data) + whole.flush()
    pieces = LineSplitter()
    got: list[str] = []
    at = 0
    for cut in sorted(cuts):
        got += pieces.feed(data[at:cut])
        at = max(at, cut)
    got += pieces.feed(data[at:]) + pieces.flush()
    assert got == expected_lines
    assert len(got) == data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def test_an_overlong_line_is_dropped_whole_and_keeps_its_number() -> None:
    splitter = LineSplitter()
    long = b"FAIL 10.0.0.1 1" + b"9" * (MAX_LINE + 10)
    lines = splitter.feed(b"a\n" + long[: 5 * MAX_LINE // 2])
    lines += splitter.feed(long[5 * MAX_LINE // 2 :] + b"\nb\n")
    assert lines == ["a", "", "b"]
    assert splitter.dropped == 1 and splitter.held == 0


def reference_lines(data: bytes, limit: int) -> list[str]:
    """The rule of recentd.sources.lines, written the plain way."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    texts = [part.decode("utf-8", "replace") for part in parts]
    return [text if len(text) <= limit else "" for text in texts]


segment = st.one_of(
    st.binary(max_size=40),
    st.integers(0, 400).map(lambda n: b"x" * n),            # runs around the limit
    st.integers(0, 120).map(lambda n: "é".encode() * n),    # 2 bytes a character
    st.just(b"\n"),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(segment, max_size=12), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_the_splitter_keeps_the_rule_whatever_the_reads(parts: list[bytes], cuts: list[int]) -> None:
    saved = lines_module.MAX_LINE, lines_module._MAX_HELD
    lines_module.MAX_LINE, lines_module._MAX_HELD = 50, 200  # the same rule, small
    try:
        data = b"".join(parts)
        splitter, got, at = LineSplitter(), [], 0
        for cut in sorted(cuts):
            got += splitter.feed(data[at:cut])
            at = max(at, cut)
        got += splitter.feed(data[at:]) + splitter.flush()
        want = reference_lines(data, 50)
        assert got == want
        assert splitter.dropped == want.count("") - sum(
            1 for part in data.split(b"\n")[: len(want)] if part == b"")
    finally:
        lines_module.MAX_LINE, lines_module._MAX_HELD = saved
