"""The control socket: a non-blocking adapter for the daemon's ``selectors`` loop.

The daemon owns one selector and one thread. The server is one file descriptor
to watch for reading — its own epoll set, holding the listening socket and every
connection, is readable whenever any of them is ready — and ``on_ready()`` does
whatever is ready without blocking. That is the daemon's adapter protocol
(``fileno()`` + ``on_ready()``)::

    server = ControlServer(Path("/run/recentd/control.sock"), service)
    daemon.adapters.append(server)          # or: server.register(selector)
    ...
    server.close()

Requests are answered in the loop's thread, so the core is never touched
concurrently. A connection that sends a line longer than the protocol allows is
answered with an error and closed; a peer that stops reading is not read from
until it drains its replies.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import selectors
import socket
from collections.abc import Callable
from pathlib import Path

from recentd import defaults
from recentd.clock import Clock, MonotonicClock
from recentd.control.access import Peer
from recentd.control.dispatch import Context, Service, dispatch
from recentd.control.protocol import (
    MAX_REQUEST_BYTES,
    ErrorReply,
    ProtocolError,
    Reply,
    decode_request,
    encode,
)
from recentd.errors import BackendError
from recentd.recent import RecentTables
from recentd.state import StateStore

#: Where ``recentd run`` listens and ``recentd ctl`` connects by default.
DEFAULT_SOCKET = defaults.SOCKET
_RECV_SIZE = 65536
#: Stop reading a connection whose unsent replies exceed this (it is not reading).
_MAX_PENDING_OUTPUT = 4 * 1024 * 1024

EventHandler = Callable[[int], None]


class ControlServer:
    """Listen on ``path`` and answer requests against ``service``.

    Args:
        path: the Unix socket to create; its directory is made (0755) if missing, and
            a stale socket left by a dead daemon is replaced.
        service: what to serve.
        mode: the socket's permissions. Anyone may connect by default: access is
            decided per table from the peer's credentials, as /proc does.

    Raises:
        BackendError: the socket cannot be created, or another daemon answers on it.
    """

    def __init__(self, path: Path, service: Service, *, mode: int = 0o666) -> None:
        self.path = Path(path)
        self.service = service
        self._connections: set[_Connection] = set()
        self._sock = _listen(self.path, mode)
        # An epoll set is itself pollable: one fd stands for all our sockets.
        self._selector = selectors.EpollSelector()
        self._selector.register(self._sock, selectors.EVENT_READ, self._on_listener)

    def fileno(self) -> int:
        """The descriptor to watch for reading (the server's own epoll set)."""
        return self._selector.fileno()

    def on_ready(self) -> None:
        """Handle every socket that is ready, without blocking."""
        for key, mask in self._selector.select(0):
            key.data(mask)

    def register(self, selector: selectors.BaseSelector) -> None:
        """Have the daemon's ``selector`` watch the server; the key's ``data`` is a
        callable taking the event mask (``key.data(mask)``)."""
        selector.register(self.fileno(), selectors.EVENT_READ, self._on_outer_event)

    def _on_outer_event(self, mask: int) -> None:
        self.on_ready()

    def _on_listener(self, mask: int) -> None:
        self.handle_readable()

    def handle_readable(self) -> None:
        """Accept every pending connection, without blocking."""
        while True:
            try:
                sock, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return
                raise
            connection = _Connection(sock, self)
            self._connections.add(connection)
            connection.register(self._selector)

    def _forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def close(self) -> None:
        """Close every connection and the socket, and remove the socket file."""
        for connection in list(self._connections):
            connection.close()
        if self._sock.fileno() < 0:
            return
        self._selector.unregister(self._sock)
        self._selector.close()
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def selector_adapter(
    path: Path,
    tables: RecentTables,
    *,
    clock: Clock | None = None,
    store: StateStore | None = None,
) -> ControlServer:
    """The control server as ``recentd run`` wires it: a daemon adapter.

    Args:
        path: the socket.
        tables: the daemon's tables.
        clock: the daemon's clock (default :class:`recentd.clock.MonotonicClock` at
            ``tables.hz``): writes stamp at its ticks, records carry its reading.
        store: when given, every acknowledged write is recorded and fsynced first,
            and ``status`` shows the store's figures.
    """
    clock = clock or MonotonicClock(tables.hz)
    service = Service(tables, clock=clock.now_ticks)
    if store is not None:
        service.after_write = functools.partial(_record_and_sync, store, tables, clock)
        service.state = store.status
    return ControlServer(path, service)


def _record_and_sync(store: StateStore, tables: RecentTables, clock: Clock) -> None:
    now = clock.read()
    store.record(tables, now.wall_ns, now.tick)
    store.sync()


def _listen(path: Path, mode: int) -> socket.socket:
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.fspath(path))
        path.chmod(mode)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        raise BackendError(
            f"cannot listen on {path}: {exc.strerror or exc}", backend="control"
        ) from exc
    return sock


def _remove_stale(path: Path) -> None:
    """Remove a socket file nobody answers on; refuse to steal a live daemon's."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        path.unlink()
    else:
        raise BackendError(f"another recentd is listening on {path}", backend="control")
    finally:
        probe.close()


class _Connection:
    """One client: buffers request bytes in and reply bytes out."""

    def __init__(self, sock: socket.socket, server: ControlServer) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.server = server
        self.peer = Peer.of(sock)
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._closing = False
        self._selector: selectors.BaseSelector | None = None

    def register(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        selector.register(self.sock, selectors.EVENT_READ, self.on_event)

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and self.sock.fileno() >= 0:
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        self._inbox += data
        self._answer_complete_lines()

    def _answer_complete_lines(self) -> None:
        while not self._closing:
            cut = self._inbox.find(b"\n")
            if cut < 0:
                if len(self._inbox) > MAX_REQUEST_BYTES:
                    self._refuse_oversized()
                return
            line = bytes(self._inbox[:cut])
            del self._inbox[: cut + 1]
            self._send(self._answer(line))

    def _answer(self, line: bytes) -> Reply:
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            return ErrorReply(ProtocolError.kind, exc.message)
        return dispatch(request, Context(self.server.service, self.peer))

    def _refuse_oversized(self) -> None:
        self._send(ErrorReply(ProtocolError.kind, f"request longer than {MAX_REQUEST_BYTES}"))
        self._closing = True
        self._inbox.clear()
        if not self._outbox:
            self.close()

    def _send(self, reply: Reply) -> None:
        self._outbox += encode(reply)
        self._flush()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self._outbox) if self._outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        del self._outbox[:sent]
        if self._closing and not self._outbox:
            self.close()
        else:
            self._watch()

    def _watch(self) -> None:
        """Watch for writability while replies are pending; stop reading a peer that
        has too many unread replies."""
        if self._selector is None or self.sock.fileno() < 0:
            return
        events = selectors.EVENT_WRITE if self._outbox else 0
        if len(self._outbox) < _MAX_PENDING_OUTPUT and not self._closing:
            events |= selectors.EVENT_READ
        self._selector.modify(self.sock, events or selectors.EVENT_READ, self.on_event)

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self.sock)
        self.sock.close()
        self.server._forget(self)
