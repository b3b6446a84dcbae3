"""The systemd journal: sshd's entries, through the journal API, or journalctl without it.

Rules of this module:

1. Only sshd's entries are read: ``_COMM`` or ``SYSLOG_IDENTIFIER`` is ``sshd`` or
   ``sshd-session`` (OpenSSH 9.8+ logs pre-auth work from ``sshd-session``). journald's
   own indexes do the matching.
2. Where the source is, is the cursor of the last entry it looked at. Resuming seeks
   that cursor; the journal hands that very entry back first (``seek_cursor`` places
   the read position *on* it), so it is skipped — once, and only if it is that entry
   (``test_cursor``): an entry vacuumed since makes the next one the first.
3. Without a checkpoint, only entries written from now on are news (the cursor of the
   journal's last entry is noted at once, so a restart before anything new arrives
   misses nothing); with ``{}`` (a checkpoint taken before any entry existed) or
   ``from_start``, everything is.
4. Entries reach the parser as text: bytes decoded as UTF-8 with replacement (the rule of
   :mod:`recentd.sources.lines`), ``__REALTIME_TIMESTAMP`` in microseconds as decimal
   digits, the first value of a field given several times. An entry whose ``MESSAGE``
   is longer than :data:`~recentd.sources.lines.MAX_LINE` is skipped and counted.
5. python-systemd's :class:`systemd.journal.Reader` where it is installed (the
   ``journald`` extra): its descriptor (inotify; the reader's ``process()`` is called
   after each wakeup) wakes the source. Otherwise ``journalctl -o json --follow`` as an
   argv-list subprocess, its stdout pipe wakes the source; a journalctl that exits is
   ``degraded`` with what it said, and started again from the cursor on the next read.
   A journal that cannot be opened is ``degraded``, retried on each read; meanwhile the
   source has no descriptor (:meth:`fileno` is ``None``: the daemon's timer reads it).
6. One read hands on at most :data:`ENTRY_BUDGET` entries (journalctl: at most
   :data:`READ_BUDGET` bytes); the source's descriptor (a
   :class:`~recentd.sources.wakeup.Wakeup`, the same across reopenings) stays readable
   while more is there.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from recentd.observation import Observation, Origin
from recentd.sources import Checkpoint, SourceState, SourceStatus
from recentd.sources.lines import MAX_LINE, LineParser, LineSplitter, decode
from recentd.sources.wakeup import Wakeup

#: The processes whose entries are sshd's (rule 1).
SSHD_IDENTIFIERS = ("sshd", "sshd-session")
#: Rule 6: the most entries one read hands on (Reader), and bytes it takes (journalctl).
ENTRY_BUDGET = 10_000
READ_BUDGET = 4 << 20
_MATCH_FIELDS = ("_COMM", "SYSLOG_IDENTIFIER")


def journal_source(
    parser: LineParser,
    checkpoint: Checkpoint | None = None,
    *,
    directory: str | Path | None = None,
    identifiers: Sequence[str] = SSHD_IDENTIFIERS,
    from_start: bool = False,
) -> ReaderJournalSource | JournalctlSource:
    """A journal source through python-systemd if installed, else through journalctl."""
    kind = ReaderJournalSource if reader_available() else JournalctlSource
    return kind(parser, checkpoint, directory=directory, identifiers=identifiers,
                from_start=from_start)


def reader_available() -> bool:
    try:
        from systemd import journal  # noqa: F401, PLC0415 -- optional: the journald extra
    except ImportError:
        return False
    return True


class _JournalBase:
    """What both ways of reading the journal share: cursor, status, handing entries on."""

    def __init__(
        self,
        parser: LineParser,
        checkpoint: Checkpoint | None,
        *,
        directory: str | Path | None,
        identifiers: Sequence[str],
        from_start: bool,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.name = f"journal {self.directory}" if self.directory else "journal"
        self._parser = parser
        self._identifiers = tuple(identifiers)
        saved = checkpoint.get("cursor") if checkpoint is not None else None
        self._cursor: str | None = saved if isinstance(saved, str) and saved else None
        self._from_start = from_start or (checkpoint is not None and self._cursor is None)
        self._status = SourceStatus(SourceState.WAITING, "not opened yet")
        self._skipped = 0
        self._closed = False
        self._wakeup = Wakeup()
        self._watched: int | None = None  # the descriptor in the wakeup set now

    def fileno(self) -> int | None:
        return self._wakeup.fileno() if self._watched is not None else None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._let_go()
            self._wakeup.close()

    def _watch(self, fd: int) -> None:
        self._wakeup.watch(fd)
        self._watched = fd

    def _unwatch(self) -> None:
        if self._watched is not None:
            self._wakeup.unwatch(self._watched)
            self._watched = None

    def _let_go(self) -> None:
        """Release the medium (each way of reading has its own)."""

    @property
    def parser(self) -> LineParser:
        """What understands the lines (metrics read its counts)."""
        return self._parser

    def status(self) -> SourceStatus:
        return SourceStatus(self._status.state, self._status.detail, self._skipped)

    def checkpoint(self) -> Checkpoint:
        return {"cursor": self._cursor} if self._cursor else {}

    def _set(self, state: SourceState, detail: str = "") -> None:
        self._status = SourceStatus(state, detail)

    def _hand_on(self, fields: Mapping[str, str], cursor: str) -> list[Observation]:
        self._cursor = cursor
        if len(fields.get("MESSAGE", "")) > MAX_LINE:
            self._skipped += 1
            return []
        return self._parser.feed_entry(fields, Origin("journal", self.name, cursor))


class ReaderJournalSource(_JournalBase):
    """The journal through python-systemd's Reader (see the module rules)."""

    def __init__(
        self,
        parser: LineParser,
        checkpoint: Checkpoint | None = None,
        *,
        directory: str | Path | None = None,
        identifiers: Sequence[str] = SSHD_IDENTIFIERS,
        from_start: bool = False,
    ) -> None:
        super().__init__(parser, checkpoint, directory=directory, identifiers=identifiers,
                         from_start=from_start)
        self._reader: Any = None
        self._skip_cursor: str | None = None
        self._open()

    def read(self) -> list[Observation]:
        if self._closed:
            return []
        if self._reader is None and not self._open():
            return []
        self._wakeup.clear()
        found: list[Observation] = []
        try:
            self._reader.process()
            for _ in range(ENTRY_BUDGET):
                entry = self._reader.get_next()
                if not entry:
                    return found
                found += self._entry(entry)
            self._wakeup.more()
        except OSError as exc:  # a damaged journal file: reopened from the cursor
            self._let_go()
            self._set(SourceState.DEGRADED, f"cannot read the journal: {exc}; reopening")
        return found

    def _entry(self, entry: Mapping[str, object]) -> list[Observation]:
        cursor = str(entry["__CURSOR"])
        if self._skip_cursor is not None:
            resumed, self._skip_cursor = self._skip_cursor, None
            if self._reader.test_cursor(resumed):
                return []
        return self._hand_on(_reader_fields(entry), cursor)

    def _open(self) -> bool:
        from systemd import journal  # noqa: PLC0415 -- optional: the journald extra

        raw = dict.fromkeys(journal.DEFAULT_CONVERTERS, _same)  # text is made by rule 4
        try:
            if self.directory is not None:
                reader = journal.Reader(path=str(self.directory), converters=raw)
            else:
                reader = journal.Reader(converters=raw)
            _add_matches(reader, self._identifiers)
            reader.fileno()  # set up its inotify watches before the first read
            self._position(reader)
        except OSError as exc:
            self._set(SourceState.DEGRADED, f"cannot open the journal: {exc}; retrying")
            return False
        self._reader = reader
        self._watch(int(reader.fileno()))
        self._set(SourceState.OK)
        return True

    def _position(self, reader: Any) -> None:
        """Rules 2 and 3."""
        if self._cursor is not None:
            reader.seek_cursor(self._cursor)
            self._skip_cursor = self._cursor
        elif self._from_start:
            reader.seek_head()
        else:
            reader.seek_tail()
            last = reader.get_previous()
            if last:
                self._cursor = str(last["__CURSOR"])
            else:  # an empty journal: all that comes is news (and "after the tail" of
                reader.seek_head()  # no entry would skip the first file's entries)

    def _let_go(self) -> None:
        self._unwatch()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


def _same(value: object) -> object:
    return value


def _add_matches(reader: Any, identifiers: Sequence[str]) -> None:
    """Rule 1: (_COMM is one of them) OR (SYSLOG_IDENTIFIER is one of them)."""
    for number, field in enumerate(_MATCH_FIELDS):
        if number:
            reader.add_disjunction()
        for identifier in identifiers:
            reader.add_match(f"{field}={identifier}")


def _reader_fields(entry: Mapping[str, object]) -> dict[str, str]:
    return {key: _text(value) for key, value in entry.items()}


def _text(value: object) -> str:
    """Rule 4, for what python-systemd hands back (str, bytes, int, lists, tuples)."""
    if isinstance(value, list | tuple):
        return _text(value[0]) if value else ""
    if isinstance(value, bytes):
        return decode(value)
    return str(value)


class JournalctlSource(_JournalBase):
    """The journal through ``journalctl -o json --follow`` (see the module rules)."""

    def __init__(
        self,
        parser: LineParser,
        checkpoint: Checkpoint | None = None,
        *,
        directory: str | Path | None = None,
        identifiers: Sequence[str] = SSHD_IDENTIFIERS,
        from_start: bool = False,
        journalctl: str = "journalctl",
    ) -> None:
        super().__init__(parser, checkpoint, directory=directory, identifiers=identifiers,
                         from_start=from_start)
        self._journalctl = journalctl
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._splitter = LineSplitter()
        self._dropped = 0  # overlong JSON lines of splitters before the current one
        if self._cursor is None and not self._from_start:
            self._cursor = self._last_cursor()
            self._from_start = self._cursor is None  # an empty journal: all of it is news
        self._start()

    def read(self) -> list[Observation]:
        if self._closed:
            return []
        if self._process is None and not self._start():
            return []
        process = self._process
        assert process is not None and process.stdout is not None
        found: list[Observation] = []
        taken = 0
        while taken < READ_BUDGET:  # a pipe left unread stays readable: no wakeup needed
            try:
                data = os.read(process.stdout.fileno(), min(1 << 20, READ_BUDGET - taken))
            except BlockingIOError:
                return found
            if not data:
                return found + self._exited()
            taken += len(data)
            for line in self._splitter.feed(data):
                found += self._json_line(line)
        return found

    def _argv(self, *position: str) -> list[str]:
        where = ["--directory", str(self.directory)] if self.directory else []
        matches: list[str] = []
        for number, field in enumerate(_MATCH_FIELDS):
            matches += ["+"] if number else []
            matches += [f"{field}={identifier}" for identifier in self._identifiers]
        return [self._journalctl, "-o", "json", "--all", "--no-pager", "--quiet",
                *where, *position, *matches]

    def _last_cursor(self) -> str | None:
        """Rule 3: the cursor of the last entry there is now (``None``: there is none)."""
        try:
            done = subprocess.run(self._argv("--lines=1"), capture_output=True, timeout=30,
                                  check=False)
            return str(json.loads(done.stdout.splitlines()[-1])["__CURSOR"])
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError, KeyError):
            return None

    def _start(self) -> bool:
        if self._cursor is not None:
            position = ["--after-cursor", self._cursor]  # rule 2: journalctl skips it
        else:
            position = ["--no-tail"] if self._from_start else ["--lines=0"]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the process
        try:
            process = subprocess.Popen(self._argv("--follow", *position),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=self._stderr)
        except OSError as exc:
            self._set(SourceState.DEGRADED, f"cannot run {self._journalctl}: {exc.strerror}")
            self._stderr.close()
            return False
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._watch(process.stdout.fileno())
        self._dropped += self._splitter.dropped
        self._process, self._splitter = process, LineSplitter()
        self._set(SourceState.OK)
        return True

    def _json_line(self, line: str) -> list[Observation]:
        try:
            entry = json.loads(line)
            cursor = entry["__CURSOR"]
        except (ValueError, KeyError, TypeError):
            self._skipped += bool(line)
            return []
        fields = {key: text for key, value in entry.items()
                  if (text := _json_text(value)) is not None}
        return self._hand_on(fields, str(cursor))

    def _exited(self) -> list[Observation]:
        process, stderr = self._process, self._stderr
        assert process is not None and stderr is not None
        code = process.wait()
        stderr.seek(0)
        said = decode(stderr.read()[-500:]).strip()
        self._let_go()
        self._set(SourceState.DEGRADED, f"{self._journalctl} exited ({code}): {said}; "
                  "restarting from the cursor on the next read")
        return []

    def status(self) -> SourceStatus:
        status = super().status()
        dropped = self._dropped + self._splitter.dropped
        return SourceStatus(status.state, status.detail, status.skipped + dropped)

    def _let_go(self) -> None:
        self._unwatch()
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _json_text(value: object) -> str | None:
    """Rule 4, for journalctl's JSON: a string; an array of byte values (a binary field);
    an array of values (a field given several times: the first); null (too large)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(item, int) for item in value):
            return decode(bytes(item & 0xFF for item in value))
        return _json_text(value[0])
    return None
