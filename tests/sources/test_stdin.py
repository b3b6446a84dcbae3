"""Standard input: lines through a pipe, never blocking, finished at its end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.sources import Checkpoint, Source, SourceState
from recentd.sources.stdin import StdinSource
from recentd.testing.sources import Expected, check_source
from tests.sources.fakes import FailParser, expected, fail_lines, garbage, seen


@dataclass
class PipeHarness:
    """A pipe the test writes into; each source reads a duplicate of its read end."""

    reader: int
    writer: int
    current: Source | None = None

    def open(self, checkpoint: Checkpoint | None) -> Source:
        self.current = StdinSource(os.dup(self.reader), FailParser(), checkpoint)
        return self.current

    def emit(self, batch: Sequence[Expected]) -> None:
        os.write(self.writer, fail_lines(batch))

    def emit_garbage(self) -> None:
        """1 MB is more than a pipe holds: written while the source drains it, as a
        shell pipeline would."""
        data, source = garbage(), self.current
        assert source is not None
        while data:
            try:
                written = os.write(self.writer, data[: 1 << 16])
            except BlockingIOError:
                assert source.read() == []  # garbage reports nothing, and makes room
                continue
            data = data[written:]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    reader, writer = os.pipe()
    yield reader, writer
    for fd in (reader, writer):
        with contextlib.suppress(OSError):  # a test may have closed it already
            os.close(fd)


def test_conforms_through_a_pipe(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    os.set_blocking(writer, False)
    harness = PipeHarness(reader, writer)
    check_source(harness)


def test_end_of_input_finishes_the_last_line_and_the_parser(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    parser = FailParser()
    source = StdinSource(os.dup(reader), parser)
    first, last = expected(2)
    os.write(writer, fail_lines([first]) + b"OPEN 203.0.113.9 5\n" + fail_lines([last])[:-1])
    assert seen(source.read()) == [first]            # the last line has no newline yet
    assert source.read() == []                       # nothing more, and no blocking
    os.close(writer)
    found = source.read()
    assert seen(found[:1]) == [last]                 # end of input: it is a line
    assert [(str(o.address), o.kind) for o in found[1:]] == [("203.0.113.9", "preauth")]
    assert parser.finished == 1
    assert source.status().state is SourceState.FINISHED
    assert source.read() == [] and source.fileno() is None
    source.close()


def test_a_file_on_stdin_resumes_at_its_offset(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(fail_lines(expected(5)))
    with log.open("rb") as file:
        source = StdinSource(os.dup(file.fileno()), FailParser())
        assert seen(source.read()) == expected(5)
        checkpoint = source.checkpoint()
        source.close()
    with log.open("ab") as file:
        file.write(fail_lines(expected(2, start=10)))
    with log.open("rb") as file:
        source = StdinSource(os.dup(file.fileno()), FailParser(), checkpoint)
        found = source.read()
        assert seen(found) == expected(2, start=10)
        assert str(found[0].origin) == "stdin - (line 6)"
        source.close()


@settings(max_examples=60, deadline=None)
@given(noise=st.lists(st.binary(max_size=3000), max_size=8), cuts=st.lists(st.integers(1, 97)))
def test_random_bytes_never_stop_it_nor_hide_what_follows(
    noise: list[bytes], cuts: list[int]
) -> None:
    reader, writer = os.pipe()
    source = StdinSource(reader, FailParser())
    data = b"\n".join(noise) + b"\n" + fail_lines(expected(3))
    found, at = [], 0
    for cut in [*cuts, len(data)]:                   # written in arbitrary pieces
        os.write(writer, data[at : at + cut])
        at += cut
        found += source.read()
    os.write(writer, data[at:])
    os.close(writer)
    found += source.read()
    assert seen(found)[-3:] == expected(3)
    assert source.status().state is SourceState.FINISHED
    source.close()
