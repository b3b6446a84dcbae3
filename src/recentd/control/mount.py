"""``recentd run --mount DIR``: the tables as files, like ``/proc/net/xt_recent/``.

Each table is one file whose mode, owner and group are the table's
``ip_list_perms``/``ip_list_uid``/``ip_list_gid``; the mount uses the
``default_permissions`` option so the kernel itself enforces them, and
``allow_other`` so other users reach the files at all. Reading gives the /proc
listing; each write(2) behaves as on the kernel's file (47-byte cap, EINVAL,
one command per open file and then ESPIPE, ``/`` not moving the offset).

Theory of operation: pyfuse3 runs under trio in a thread of its own, so the
mount is just another *client* of the control socket. It never touches the
tables; the daemon's single thread answers its requests like any other. (So the
daemon loop must be running for the files to answer; a request that gets no
answer within the client timeout fails with EIO.)

The file offset: FUSE moves the kernel's offset by what write(2) returned, but a
``/`` does not move the /proc file's offset. So each open file keeps the offset
the /proc file would have; a write at exactly where FUSE's offset should be is a
plain write() and uses it, any other position is a pwrite()/lseek and is used as is.

pyfuse3 is process-global: one mount per process.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recentd.clock import wall_now_ns
from recentd.control.client import ControlClient
from recentd.control.protocol import (
    ErrorReply,
    ListTables,
    Reply,
    Request,
    ShowTable,
    TableInfo,
    TableList,
    TableListing,
    WriteResult,
    WriteTable,
)
from recentd.errors import BackendError, ControlError
from recentd.recent import EntryView, format_entry

try:  # the [mount] extra
    import pyfuse3
    import trio

    HAVE_FUSE = True
except ImportError:  # pragma: no cover - exercised only without the extra
    HAVE_FUSE = False

_ROOT = 1
_MOUNT_OPTIONS = ("fsname=recentd", "default_permissions", "allow_other")
_START_TIMEOUT = 10.0


@dataclass
class _OpenFile:
    """One open file description: the table, the /proc offset, the listing read."""

    name: str
    proc_offset: int = 0
    vfs_offset: int = 0
    listing: bytes | None = None


class Mount:
    """A running mount; :meth:`close` unmounts it. Made by :func:`mount`."""

    def __init__(self, directory: Path, socket_path: Path) -> None:
        self.directory = Path(directory)
        self.socket_path = Path(socket_path)
        self._thread: threading.Thread | None = None
        self._token: Any = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> None:
        if not HAVE_FUSE:
            raise BackendError("the mount needs: pip install recentd[mount]", backend="fuse")
        _clear_stale_mount(self.directory)
        self._thread = threading.Thread(target=self._run, name="recentd-mount", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise BackendError(f"mounting {self.directory} timed out", backend="fuse")
        if self._failure is not None:
            raise BackendError(
                f"cannot mount {self.directory}: {self._failure}", backend="fuse"
            ) from self._failure

    def _run(self) -> None:
        try:
            pyfuse3.init(_Operations(self.socket_path), os.fspath(self.directory),
                         set(_MOUNT_OPTIONS))  # fmt: skip
        except (RuntimeError, OSError) as exc:
            self._failure = exc
            self._ready.set()
            return
        try:
            trio.run(self._main)
        finally:
            pyfuse3.close(unmount=True)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._ready.set()
        await pyfuse3.main()

    def close(self) -> None:
        """Unmount and wait for the mount's thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None or self._failure is not None:
            return
        if self._token is not None:
            trio.from_thread.run_sync(pyfuse3.terminate, trio_token=self._token)
        thread.join(_START_TIMEOUT)


def _clear_stale_mount(directory: Path) -> None:
    """Lazily unmount a recentd mount a killed daemon left at ``directory`` (its files
    answer ENOTCONN); any other filesystem mounted there is left alone and the
    mount then fails with pyfuse3's own error."""
    target = os.path.realpath(directory)
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        point = fields.split(" ")[4].replace("\\040", " ") if fields.count(" ") >= 4 else ""
        fstype, source = [*tail.split(" "), "", ""][:2]
        if point == target and fstype.startswith("fuse") and source == "recentd":
            subprocess.run(
                ["fusermount3", "-u", "-z", target], check=False, capture_output=True, timeout=10
            )


def mount(directory: Path, socket_path: Path) -> Mount:
    """Mount the tables of the daemon listening on ``socket_path`` at ``directory``.

    Raises:
        BackendError: pyfuse3 missing, /dev/fuse unusable, or the mount refused.
    """
    mounted = Mount(directory, socket_path)
    mounted.start()
    return mounted


class _Operations(pyfuse3.Operations if HAVE_FUSE else object):  # type: ignore[misc]
    """The filesystem: a root directory holding one file per table."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__()
        self.socket_path = socket_path
        self._inodes: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._next_inode = itertools.count(_ROOT + 1)
        self._files: dict[int, _OpenFile] = {}
        self._next_fh = itertools.count(1)
        self._started = wall_now_ns()

    # ---- talking to the daemon ----------------------------------------------------------

    async def _call(self, request: Request) -> Reply:
        reply: Reply = await trio.to_thread.run_sync(self._call_blocking, request)
        if isinstance(reply, ErrorReply):
            code = getattr(errno, reply.errno, errno.EIO) if reply.errno else errno.EIO
            raise pyfuse3.FUSEError(code)
        return reply

    def _call_blocking(self, request: Request) -> Reply:
        try:
            with ControlClient(self.socket_path) as client:
                return client.call(request)
        except ControlError:
            return ErrorReply("ControlError", "daemon unreachable", "EIO")

    async def _tables(self) -> list[TableInfo]:
        reply = await self._call(ListTables())
        assert isinstance(reply, TableList)
        return reply.tables

    async def _table(self, inode: int) -> TableInfo:
        name = self._names.get(inode)
        for table in await self._tables():
            if table.name == name:
                return table
        raise pyfuse3.FUSEError(errno.ENOENT)

    def _inode(self, name: str) -> int:
        inode = self._inodes.get(name)
        if inode is None:
            inode = self._inodes[name] = next(self._next_inode)
            self._names[inode] = name
        return inode

    # ---- attributes ------------------------------------------------------------------------

    def _attributes(self, inode: int, table: TableInfo | None) -> Any:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = inode
        attrs.st_nlink = 2 if table is None else 1
        if table is None:
            attrs.st_mode = stat.S_IFDIR | 0o555
        else:
            attrs.st_mode = stat.S_IFREG | table.ip_list_perms
            attrs.st_uid, attrs.st_gid = table.ip_list_uid, table.ip_list_gid
        attrs.st_size = 0  # like /proc: the size is unknown until read
        attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = self._started
        # No caching: tables, modes and owners change while mounted.
        attrs.attr_timeout = attrs.entry_timeout = 0
        return attrs

    async def getattr(self, inode: int, ctx: Any = None) -> Any:
        if inode == _ROOT:
            return self._attributes(_ROOT, None)
        return self._attributes(inode, await self._table(inode))

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> Any:
        if parent_inode != _ROOT:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        text = os.fsdecode(name)
        for table in await self._tables():
            if table.name == text:
                return self._attributes(self._inode(text), table)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def setattr(self, inode: int, attr: Any, fields: Any, fh: Any, ctx: Any) -> Any:
        # `echo > FILE` truncates first; /proc ignores that, and so do we.
        if fields.update_mode or fields.update_uid or fields.update_gid:
            raise pyfuse3.FUSEError(errno.EPERM)
        return await self.getattr(inode, ctx)

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any) -> Any:
        raise pyfuse3.FUSEError(errno.EACCES)  # as /proc: tables come from rules only

    # ---- the directory ---------------------------------------------------------------------

    async def opendir(self, inode: int, ctx: Any) -> int:
        if inode != _ROOT:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return _ROOT

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        tables = await self._tables()
        for position, table in enumerate(tables[start_id:], start=start_id + 1):
            attrs = self._attributes(self._inode(table.name), table)
            if not pyfuse3.readdir_reply(token, os.fsencode(table.name), attrs, position):
                return

    # ---- files -----------------------------------------------------------------------------

    async def open(self, inode: int, flags: int, ctx: Any) -> Any:
        table = await self._table(inode)
        fh = next(self._next_fh)
        self._files[fh] = _OpenFile(table.name)
        # direct_io: every read and write reaches us as the program made it.
        return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        state = self._files[fh]
        if state.listing is None or off == 0:
            reply = await self._call(ShowTable(state.name))
            assert isinstance(reply, TableListing)
            state.listing = _render(reply).encode()
        return state.listing[off : off + size]

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        state = self._files[fh]
        offset = state.proc_offset if off == state.vfs_offset else off
        reply = await self._call(WriteTable(state.name, bytes(buf), offset))
        assert isinstance(reply, WriteResult)
        state.proc_offset = reply.offset
        state.vfs_offset = off + reply.written
        return reply.written

    async def release(self, fh: int) -> None:
        self._files.pop(fh, None)

    async def releasedir(self, fh: int) -> None:
        return None


def _render(listing: TableListing) -> str:
    return "".join(
        format_entry(EntryView(e.family, e.addr, e.ttl, e.index, tuple(e.stamps), e.last_seen))
        for e in listing.entries
    )
