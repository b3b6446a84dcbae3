"""Standard input (``-``): log lines piped in, read without ever blocking.

Rules of this module:

1. A finite source: at end of input the held partial line is a line, the parser is told
   (:meth:`~recentd.sources.lines.LineParser.finish`: sessions still open count now), and
   the source is ``finished``.
2. Never blocks: the descriptor is read only when ``select`` says it is readable (a pipe
   then hands what it holds, at once), at most :data:`READ_BUDGET` bytes a call, and its
   flags are left alone (O_NONBLOCK on a shared stdin would change it for every process
   sharing it).
3. The source owns the descriptor it is given and closes it (:meth:`StdinSource.from_stdin`
   gives it a duplicate of fd 0, so closing the source leaves stdin open).
4. Its checkpoint is the line count and, for a seekable input (``< FILE``), the offset
   of the next line: reopened over the same file it resumes there; a pipe cannot be
   rewound, so a source reopened over one reads on from where the pipe is.
"""

from __future__ import annotations

import os
import select
import stat

from recentd.observation import Observation
from recentd.sources import Checkpoint, SourceState, SourceStatus
from recentd.sources.lines import LineParser, LineSpan, LineSplitter

#: The most a single :meth:`StdinSource.read` takes from the descriptor.
READ_BUDGET = 4 << 20
_CHUNK = 1 << 16


class StdinSource:
    """Reads lines from a descriptor until its end (see the module rules)."""

    def __init__(
        self, fd: int, parser: LineParser, checkpoint: Checkpoint | None = None,
        *, name: str = "-",
    ) -> None:
        self.name = f"stdin {name}"
        self._label = name
        self._fd: int | None = fd
        self._parser = parser
        self._splitter = LineSplitter()
        self._line, self._offset = 0, 0
        self._seekable = stat.S_ISREG(os.fstat(fd).st_mode)
        if self._seekable:  # `(head -1; recentd …) < FILE`: it starts where stdin stands
            self._offset = os.lseek(fd, 0, os.SEEK_CUR)
        self._state = SourceState.OK
        if checkpoint:
            self._resume(checkpoint)

    @classmethod
    def from_stdin(cls, parser: LineParser, checkpoint: Checkpoint | None = None) -> StdinSource:
        return cls(os.dup(0), parser, checkpoint)

    def fileno(self) -> int | None:
        return self._fd

    def read(self) -> list[Observation]:
        found: list[Observation] = []
        taken = 0
        while self._fd is not None and taken < READ_BUDGET:
            if not select.select([self._fd], [], [], 0)[0]:
                break
            data = os.read(self._fd, _CHUNK)
            if not data:
                return found + self._end()
            taken += len(data)
            self._offset += len(data)
            found += self._feed(self._splitter.feed(data))
        return found

    @property
    def parser(self) -> LineParser:
        """What understands the lines (metrics read its counts)."""
        return self._parser

    def status(self) -> SourceStatus:
        detail = "end of input" if self._state is SourceState.FINISHED else ""
        return SourceStatus(self._state, detail, self._splitter.dropped)

    def checkpoint(self) -> Checkpoint:
        return {"line": self._line, "offset": self._offset - self._splitter.held}

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _resume(self, checkpoint: Checkpoint) -> None:
        line, offset = checkpoint.get("line"), checkpoint.get("offset")
        if isinstance(line, int) and line >= 0:
            self._line = line
        if self._seekable and isinstance(offset, int) and offset >= 0 and self._fd is not None:
            self._offset = os.lseek(self._fd, offset, os.SEEK_SET)

    def _feed(self, lines: list[str]) -> list[Observation]:
        if not lines:
            return []
        found = self._parser.feed_lines(lines, LineSpan("stdin", self._label, self._line + 1))
        self._line += len(lines)
        return found

    def _end(self) -> list[Observation]:
        found = self._feed(self._splitter.flush()) + self._parser.finish()
        self._state = SourceState.FINISHED
        self.close()
        return found
