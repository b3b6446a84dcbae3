"""Whatever a writer, logrotate and restarts do in whatever order, a followed file reports
every line once and in order.

The model: a writer appends lines (sometimes stopping mid-line) to the file it has open;
logrotate renames (the writer keeps the old file until its HUP) or copies and truncates;
recentd reads, or restarts from its checkpoint. One race is copytruncate's own: lines
written and copied before recentd ever read a whole line of that file cannot be told
from another file's (logrotate's documentation says copytruncate may lose lines). A
daemon woken by inotify reads within milliseconds of a write, long before logrotate's
next run, so the model reads once before such a copy. Likewise a file that appears at
the path wakes the daemon (IN_CREATE), so the model reads when one does: a file created
and rotated away again between two reads would never have been seen.
"""

from __future__ import annotations

import os
import select
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.observation import Observation
from recentd.sources import files
from recentd.sources.files import FileSource
from recentd.testing.sources import drain
from tests.sources.fakes import FailParser, expected, fail_lines, seen

LINES = expected(2000)

operation = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 30), st.integers(0, 40)),
    st.tuples(st.just("read")),
    st.tuples(st.just("rotate")),
    st.tuples(st.just("hup")),
    st.tuples(st.just("copytruncate")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("delete")),
)


class World:
    def __init__(self, directory: Path) -> None:
        self.log = directory / "auth.log"
        self.log.touch()
        self.writer = self.log.open("ab", buffering=0)
        self.writer_on_log = True
        self.next = 0  # lines written whole or in part
        self.rest = b""  # the part of line `next - 1` not written yet
        self.source = FileSource(self.log, FailParser())
        self.got: list[Observation] = []
        self.read_since_first_line = False  # of the file the path names now
        self.whole_lines_in_file = 0

    def write(self, count: int, cut: int) -> None:
        data = self.rest + fail_lines(LINES[self.next : self.next + count])
        self.next = min(self.next + count, len(LINES))
        self.rest = b""
        if cut and self.next < len(LINES):
            line = fail_lines(LINES[self.next : self.next + 1])
            cut = min(cut, len(line) - 1)
            data, self.rest = data + line[:cut], line[cut:]
            self.next += 1
        self.writer.write(data)
        if self.writer_on_log:
            self.whole_lines_in_file += data.count(b"\n")

    def read(self) -> None:
        """As the daemon's loop does: read, and again while the descriptor says so."""
        self.got += self.source.read()
        fd = self.source.fileno()
        while fd is not None and select.select([fd], [], [], 0)[0]:
            self.got += self.source.read()
        self.read_since_first_line = self.whole_lines_in_file > 0

    def finish_line(self) -> None:
        """A writer writes whole lines: before it moves, its line is done."""
        self.write(0, 0)

    def rotate(self) -> None:
        if not self.writer_on_log:
            return  # logrotate runs again only long after the writer's HUP
        self._shift()
        self.log.rename(self.log.with_name("auth.log.1"))
        self.log.touch()
        self.writer_on_log = False
        self._new_file()

    def hup(self) -> None:
        self.finish_line()
        self.writer.close()
        self.writer = self.log.open("ab", buffering=0)
        self.writer_on_log = True

    def copytruncate(self) -> None:
        if not self.writer_on_log:
            return
        self.finish_line()
        if not self.read_since_first_line:
            self.read()  # the one race the module docstring names
        self._shift()
        shutil.copyfile(self.log, self.log.with_name("auth.log.1"))
        os.truncate(self.log, 0)
        self._new_file()

    def delete(self) -> None:
        if not self.writer_on_log:
            return
        self.finish_line()
        self.log.unlink()
        self.hup()
        self._new_file()

    def restart(self) -> None:
        checkpoint = self.source.checkpoint()
        self.source.close()
        self.source = FileSource(self.log, FailParser(), checkpoint)

    def settle(self) -> list[Observation]:
        self.hup()
        self.got += drain(self.source, self.next - len(self.got), timeout_s=1.0)
        self.writer.close()
        self.source.close()
        return self.got

    def _new_file(self) -> None:
        self.read_since_first_line, self.whole_lines_in_file = False, 0
        self.read()  # IN_CREATE wakes the daemon

    def _shift(self) -> None:
        for number in range(8, 0, -1):
            older = self.log.with_name(f"auth.log.{number}")
            if older.exists():
                older.rename(self.log.with_name(f"auth.log.{number + 1}"))


@pytest.mark.parametrize("budget", [100, files.READ_BUDGET])  # a few lines a read; the real one
@settings(max_examples=100, deadline=None)
@given(operations=st.lists(operation, max_size=40))
def test_every_line_once_in_order_whatever_happens(
    budget: int, operations: list[tuple[object, ...]]
) -> None:
    saved, files.READ_BUDGET = files.READ_BUDGET, budget
    try:
        with tempfile.TemporaryDirectory() as directory:
            world = World(Path(directory))
            for name, *args in operations:
                getattr(world, str(name))(*args)
            got = world.settle()
            assert seen(got) == LINES[: world.next]
    finally:
        files.READ_BUDGET = saved
