"""A log file followed live, rotation-safe: every line once, none missed, across restarts.

Rules of this module:

1. Where the source is, is a :class:`FilePosition`: the file's identity (device, inode),
   the bytes consumed in complete lines (``offset``), the line number, and a hash of the
   file's first bytes (``head``). Identity alone is not enough: an inode number is reused
   once a file is deleted, and the head tells the new file from the old.
2. Rename rotation (logrotate's default): the old file is read to its end before the
   new one is opened and read from 0 — and it stays open (``draining``) until the new
   one receives its first byte: until its postrotate HUP, the writer still appends to
   the old inode. Only then is its partial last line made a line and the file closed.
   This is the line the gawk script of the seed lost every week, and what fail2ban,
   sshguard and DenyHosts still get wrong when rotation meets a burst.
3. copytruncate, truncation, a rewrite in place: the file is shorter than what was read,
   or its head changed. The lines between the last read and the copy are looked for in
   the copy (a sibling with the same head, plain or gzip) and read from there, then the
   file is read again from 0.
4. A restart from a checkpoint: the same file → from the offset. The file rotated while
   recentd was down → the old one is found among its siblings by identity and head, read
   from the offset to its end, then the new one from 0. A file still draining (rule 2)
   is in the checkpoint too (``"draining"``) and is finished the same way.
5. A missing file is ``waiting``, an unreadable one ``degraded``, with the reason; both
   are retried on every change to the file or its directory (creation, rename, chmod —
   inotify wakes the source) and whenever :meth:`FileSource.read` is called. Nothing
   read from the file raises.
6. Event-driven: inotify watches the directory (names, permissions) and the open files
   (writes). The source has no timer; idle, it costs nothing. One read takes at most
   :data:`READ_BUDGET` bytes of the current file (a backlog is read in slices, so the
   daemon's loop never stalls on it; a rotated file's rest is read whole); a read that
   stops there leaves its descriptor readable. The
   descriptor (:meth:`FileSource.fileno`) is an epoll set of both. Without inotify
   (its limits reached) the source has no descriptor and is read on the daemon's timer.
7. A partial last line is held until its newline; the checkpoint's offset is the start
   of that line, so a restart reads it again, whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from inotify_simple import INotify
from inotify_simple import flags as inflags

from recentd.observation import Observation
from recentd.sources import Checkpoint, SourceState, SourceStatus
from recentd.sources.lines import LineParser, LineSpan, LineSplitter
from recentd.sources.rotated import iter_batches, open_log
from recentd.sources.wakeup import Wakeup

#: How many first bytes identify a file's content (two syslog lines' worth).
HEAD_BYTES = 256
#: The most one :meth:`FileSource.read` takes from the files it follows (rule 6).
READ_BUDGET = 4 << 20
_CHUNK = 1 << 20
_DIR_EVENTS = (
    inflags.CREATE | inflags.MOVED_TO | inflags.MOVED_FROM | inflags.DELETE
    | inflags.ATTRIB | inflags.DELETE_SELF | inflags.MOVE_SELF
)
_FILE_EVENTS = inflags.MODIFY | inflags.ATTRIB


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where in which file a :class:`FileSource` is (rule 1). JSON-able as a checkpoint."""

    device: int
    inode: int
    offset: int
    line: int
    head: str  # hash of the first ``head_len`` bytes
    head_len: int

    def as_checkpoint(self) -> dict[str, object]:
        return {
            "device": self.device, "inode": self.inode, "offset": self.offset,
            "line": self.line, "head": self.head, "head_len": self.head_len,
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> FilePosition | None:
        """The position a checkpoint names; ``None`` when it names none or is damaged
        (the file is then read from its start: its lines count again, but at their own
        times, mostly outside any rule's window)."""
        values = [checkpoint.get(key) for key in ("device", "inode", "offset", "line")]
        head, head_len = checkpoint.get("head"), checkpoint.get("head_len")
        if not all(isinstance(v, int) and v >= 0 for v in [*values, head_len]):
            return None
        if not isinstance(head, str):
            return None
        device, inode, offset, line = (int(v) for v in values if isinstance(v, int))
        assert isinstance(head_len, int)
        return cls(device, inode, offset, line, head, head_len)


class _OpenFile:
    """One generation of the log: an open descriptor and how far it has been read."""

    def __init__(self, fd: int, device: int, inode: int) -> None:
        self.fd, self.device, self.inode = fd, device, inode
        self.read_to = 0  # bytes read from fd (complete lines + the held partial one)
        self.line = 0
        self.head, self.head_len = _digest(b""), 0
        self.splitter = LineSplitter()
        self.watch = -1

    @property
    def offset(self) -> int:
        return self.read_to - self.splitter.held

    def position(self) -> FilePosition:
        return FilePosition(
            self.device, self.inode, self.offset, self.line, self.head, self.head_len
        )

    def seek(self, position: FilePosition) -> None:
        self.read_to, self.line = position.offset, position.line
        self.head, self.head_len = position.head, position.head_len

    def head_matches(self, head: str, head_len: int) -> bool:
        return _digest(os.pread(self.fd, head_len, 0)) == head

    def note_head(self) -> None:
        """Hash the first bytes once more complete lines of them have been read (up to
        HEAD_BYTES; whole lines only: two files may well begin with the same few bytes)."""
        offset = self.offset
        if self.head_len < HEAD_BYTES and offset > self.head_len:
            data = os.pread(self.fd, min(HEAD_BYTES, offset), 0)
            self.head, self.head_len = _digest(data), len(data)


class FileSource:
    """Follows one log file (see the module rules).

    Args:
        path: the log file; it may not exist yet.
        parser: what understands the lines.
        checkpoint: where a previous run stopped (:meth:`checkpoint`), or ``None``.
        start_at_end: with no checkpoint, a file that exists when the source is made is
            read from its end (only new lines), or from its start when False. A file
            that appears later, or replaces a rotated one, is always read from its start.
    """

    def __init__(
        self,
        path: str | Path,
        parser: LineParser,
        checkpoint: Checkpoint | None = None,
        *,
        start_at_end: bool = True,
    ) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"
        self._parser = parser
        self._closed = False
        self._wakeups, self._no_wakeups = _wakeups()
        self._budget = READ_BUDGET
        self._dir_watch: tuple[int, Path] | None = None
        self._current: _OpenFile | None = None
        self._draining: _OpenFile | None = None  # rule 2: the generation before current
        self._resume = FilePosition.from_checkpoint(checkpoint or {})
        draining = (checkpoint or {}).get("draining")
        self._resume_draining = (
            FilePosition.from_checkpoint(draining) if isinstance(draining, dict) else None
        )
        # ``{}`` is a checkpoint too: the file had not appeared yet, so all of it is news
        self._skip_past = _end_now(self.path) if start_at_end and checkpoint is None else None
        self._status = SourceStatus(SourceState.WAITING, f"not opened yet: {self.path}")
        self._dropped = 0
        # Opened now, not at the first read: a file deleted meanwhile is still held.
        # What that finds of rotated files is handed out by the first read; until
        # then the checkpoint is the one given.
        self._given = dict(checkpoint or {})
        self._backlog = self._catch_up()
        self._sync_watches()

    # -- the Source protocol ------------------------------------------------------------

    def fileno(self) -> int | None:
        return self._wakeups.fileno() if self._wakeups and not self._closed else None

    def read(self) -> list[Observation]:
        if self._closed:
            return []
        if self._wakeups is not None:
            self._wakeups.clear()  # what changed does not matter: look at everything
        self._budget = READ_BUDGET
        found, self._backlog = self._backlog, []
        found += self._sync()
        if self._draining is not None:  # whole: its rest is small, and it may be deleted
            found += self._read_new(self._draining, whole=True)
            if self._current and os.fstat(self._current.fd).st_size > 0:
                found += self._finish_draining()
        if self._current is not None and self._budget:  # never before the older file's end
            found += self._read_new(self._current)
        if not self._budget and self._wakeups is not None:
            self._wakeups.more()
        self._sync_watches()
        return found

    @property
    def parser(self) -> LineParser:
        """What understands the lines (metrics read its counts)."""
        return self._parser

    def status(self) -> SourceStatus:
        held = [f.splitter.dropped for f in (self._current, self._draining) if f is not None]
        status = replace(self._status, skipped=self._dropped + sum(held))
        if status.state is SourceState.OK and self._no_wakeups:
            return replace(status, detail=self._no_wakeups)
        return status

    def checkpoint(self) -> Checkpoint:
        if self._backlog:
            return self._given
        position = self._current.position() if self._current else self._resume
        saved = position.as_checkpoint() if position else {}
        if self._draining is not None:
            saved["draining"] = self._draining.position().as_checkpoint()
        return saved

    def close(self) -> None:
        for opened in (self._current, self._draining):
            if opened is not None:
                self._close(opened)
        self._current = self._draining = None
        if self._wakeups is not None:
            self._wakeups.close()
            self._wakeups = None
        self._closed = True

    # -- following the path ---------------------------------------------------------

    def _catch_up(self) -> list[Observation]:
        """Rule 4, at opening: the draining file of the checkpoint, then the path."""
        found: list[Observation] = []
        if self._resume_draining is not None:
            found += self._attach_rotated(self._resume_draining)
            self._resume_draining = None
        return found + self._sync()

    def _sync(self) -> list[Observation]:
        """Compare what is open with what the path names now, and act on the difference."""
        try:
            info = self.path.stat()
        except OSError as exc:
            return self._path_unusable(exc)
        current = self._current
        if current is not None and (current.device, current.inode) == (info.st_dev, info.st_ino):
            return self._check_rewritten(current, info.st_size)
        if not stat.S_ISREG(info.st_mode):
            self._set(SourceState.DEGRADED, f"not a regular file: {self.path}")
            return []
        return self._open_path(info)

    def _path_unusable(self, exc: OSError) -> list[Observation]:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            gone = "renamed or deleted, read to its end" if self._current else "no such file"
            self._set(SourceState.WAITING, f"{gone}: {self.path}; waiting for it to appear")
        else:
            self._set(SourceState.DEGRADED, f"cannot stat {self.path}: {exc.strerror}")
        return []

    def _open_path(self, info: os.stat_result) -> list[Observation]:
        """The path names a file that is not the one open: open it, and let the one
        open drain (rule 2)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            self._set(SourceState.DEGRADED, f"cannot open {self.path}: {exc.strerror}; "
                      "retrying on the next change to it")
            return []
        opened = _OpenFile(fd, *_identity(fd))
        found: list[Observation] = []
        if self._current is not None:  # a rotation: current drains, the one before is done
            found += self._finish_draining() if self._draining is not None else []
            self._draining = self._current
        self._current = opened
        self._set(SourceState.OK)
        return found + self._start(opened, info)

    def _start(self, opened: _OpenFile, info: os.stat_result) -> list[Observation]:
        """Where to start reading a file just opened (rules 2 and 4)."""
        resume, self._resume = self._resume, None
        skip_past, self._skip_past = self._skip_past, None
        if resume is None:
            if skip_past and skip_past[:2] == (opened.device, opened.inode):
                opened.read_to = _line_start(opened.fd, min(skip_past[2], info.st_size))
                opened.note_head()  # an existing log's past is not news
            return []
        same = (opened.device, opened.inode) == (resume.device, resume.inode)
        if (same and info.st_size >= resume.offset
                and opened.head_matches(resume.head, resume.head_len)):
            opened.seek(resume)
            return []
        return self._attach_rotated(resume)

    def _check_rewritten(self, current: _OpenFile, size: int) -> list[Observation]:
        """Rule 3: a file that got shorter, or whose head changed, is read again from 0."""
        self._set(SourceState.OK)
        if size >= current.read_to and current.head_matches(current.head, current.head_len):
            return []
        missed = replace(current.position(), device=-1, inode=-1)
        copy = _find_sibling(self.path, missed)
        found = self._read_rotated_away(copy, missed) if copy else []
        self._dropped += current.splitter.dropped
        current.read_to = current.line = 0
        current.head, current.head_len = _digest(b""), 0
        current.splitter = LineSplitter()
        return found

    def _finish_draining(self) -> list[Observation]:
        """The writer moved on to the new file: the old one's last bytes, its partial
        last line made a line, and it is closed."""
        draining, self._draining = self._draining, None
        assert draining is not None
        found = self._read_new(draining, whole=True)
        found += self._feed(draining, draining.splitter.flush())
        self._close(draining)
        return found

    def _close(self, opened: _OpenFile) -> None:
        self._dropped += opened.splitter.dropped
        opened.splitter.dropped = 0
        if opened.watch >= 0 and self._wakeups is not None:
            _forget_watch(self._wakeups.inotify, opened.watch)
        os.close(opened.fd)

    # -- reading --------------------------------------------------------------------

    def _read_new(self, opened: _OpenFile, *, whole: bool = False) -> list[Observation]:
        """What ``opened`` holds past what was read: within the read's budget, or
        ``whole`` (a file about to be closed is read to its end, whatever the budget)."""
        found: list[Observation] = []
        while whole or self._budget > 0:
            size = _CHUNK if whole else min(_CHUNK, self._budget)
            try:
                data = os.pread(opened.fd, size, opened.read_to)
            except OSError as exc:
                self._set(SourceState.DEGRADED, f"cannot read {self.path}: {exc.strerror}")
                return found
            if not data:
                break
            self._budget = max(0, self._budget - len(data))
            opened.read_to += len(data)
            found += self._feed(opened, opened.splitter.feed(data))
        opened.note_head()
        return found

    def _feed(self, opened: _OpenFile, lines: list[str]) -> list[Observation]:
        if not lines:
            return []
        found = self._parser.feed_lines(lines, LineSpan("file", str(self.path), opened.line + 1))
        opened.line += len(lines)
        return found

    def _attach_rotated(self, position: FilePosition) -> list[Observation]:
        """Rule 4: the file ``position`` names was rotated away while recentd was down.
        Still the same inode under another name: it becomes the draining file (the
        writer may not have moved on yet), the one draining before it is finished. A
        copy (compressed, or the copy of copytruncate): its rest is read once."""
        sibling = _find_sibling(self.path, position)
        if sibling is None:
            return []
        found = self._finish_draining() if self._draining is not None else []
        try:
            fd = os.open(sibling, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            return found + self._read_rotated_away(sibling, position)
        opened = _OpenFile(fd, *_identity(fd))
        if (opened.device, opened.inode) != (position.device, position.inode):
            os.close(fd)
            return found + self._read_rotated_away(sibling, position)
        opened.seek(position)
        self._draining = opened
        return found

    def _read_rotated_away(self, sibling: Path, position: FilePosition) -> list[Observation]:
        """The rest of ``sibling`` (plain or gzip), from ``position.offset`` to its end."""
        splitter = LineSplitter()
        found: list[Observation] = []
        first = position.line + 1
        try:
            for batch in iter_batches(sibling, skip_bytes=position.offset, splitter=splitter):
                found += self._parser.feed_lines(batch, LineSpan("file", str(self.path), first))
                first += len(batch)
        except (OSError, EOFError) as exc:  # EOFError: a truncated gzip
            self._set(SourceState.DEGRADED, f"cannot read {sibling}: {exc}")
        self._dropped += splitter.dropped
        return found

    # -- status and watches ---------------------------------------------------------

    def _set(self, state: SourceState, detail: str = "") -> None:
        self._status = SourceStatus(state, detail)

    def _sync_watches(self) -> None:
        """Watch the directory (or, while it is missing, the nearest ancestor) and the
        files open."""
        if self._wakeups is None:
            return
        inotify = self._wakeups.inotify
        watched = _nearest_directory(self.path)
        try:
            if self._dir_watch is None or self._dir_watch[1] != watched:
                if self._dir_watch is not None:
                    _forget_watch(inotify, self._dir_watch[0])
                self._dir_watch = (inotify.add_watch(watched, _DIR_EVENTS), watched)
            for opened in (self._current, self._draining):
                if opened is not None and opened.watch < 0:
                    # through /proc/self/fd: the very inode open, whatever the path names now
                    opened.watch = inotify.add_watch(f"/proc/self/fd/{opened.fd}", _FILE_EVENTS)
        except OSError as exc:
            self._set(SourceState.DEGRADED, f"cannot watch {watched}: {exc.strerror}")


class _Wakeups:
    """Rule 6: inotify, in a :class:`~recentd.sources.wakeup.Wakeup` set."""

    def __init__(self) -> None:
        self.inotify = INotify(nonblocking=True)
        self._wakeup = Wakeup()
        self._wakeup.watch(self.inotify.fileno())

    def fileno(self) -> int:
        return self._wakeup.fileno()

    def more(self) -> None:
        self._wakeup.more()

    def clear(self) -> None:
        self.inotify.read(timeout=0)
        self._wakeup.clear()

    def close(self) -> None:
        self._wakeup.close()
        self.inotify.close()


def _wakeups() -> tuple[_Wakeups | None, str]:
    """The source's descriptor, or why there is none (inotify's limits reached)."""
    try:
        return _Wakeups(), ""
    except OSError as exc:
        return None, f"no inotify ({exc.strerror}): read on the daemon's timer"


def _end_now(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, size) of ``path`` now, if it is there."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size) if stat.S_ISREG(info.st_mode) else None


def _line_start(fd: int, offset: int) -> int:
    """The start of the line ``offset`` is in (a line being written is news)."""
    back = max(0, offset - 8192)
    cut = os.pread(fd, offset - back, back).rfind(b"\n")
    return back + cut + 1 if cut >= 0 else back


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _forget_watch(inotify: INotify, watch: int) -> None:
    with contextlib.suppress(OSError):  # the kernel dropped it already (its inode is gone)
        inotify.rm_watch(watch)


def _nearest_directory(path: Path) -> Path:
    for directory in path.absolute().parents:
        if directory.is_dir():
            return directory
    return Path("/")


def _find_sibling(path: Path, position: FilePosition) -> Path | None:
    """The rotated copy of the file ``position`` names: same identity, else same head."""
    candidates = [
        sibling for sibling in _siblings(path)
        if sibling.name != path.name and sibling.name.startswith(path.name)
    ]
    for sibling in candidates:
        try:
            info = sibling.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (position.device, position.inode):
            return sibling if _head_of(sibling, position.head_len) == position.head else None
    if position.head_len == 0:  # nothing known of its content: no copy can be told apart
        return None
    for sibling in candidates:
        if _head_of(sibling, position.head_len) == position.head:
            return sibling
    return None


def _siblings(path: Path) -> list[Path]:
    try:
        return sorted(path.parent.iterdir())
    except OSError:
        return []


def _head_of(path: Path, length: int) -> str | None:
    try:
        with open_log(path) as file:
            return _digest(file.read(length))
    except (OSError, EOFError):
        return None

