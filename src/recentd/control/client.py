"""A blocking control client, for ``recentd ctl``, the FUSE mount and tests.

Usage::

    with ControlClient(Path("/run/recentd/control.sock")) as client:
        reply = client.call(ShowTable("SSH"))

Failures to reach the daemon become one :class:`ControlError` whose message says
what to check; a refusal by the daemon is an ordinary :class:`ErrorReply` value.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType

from recentd.control.protocol import Reply, Request, decode_reply, encode
from recentd.errors import ControlError

#: Long enough for a big listing on a busy daemon, short enough that a hung one is noticed.
DEFAULT_TIMEOUT = 10.0


class ControlClient:
    """One connection to the daemon; opened lazily by the first :meth:`call`."""

    def __init__(self, path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def call(self, request: Request) -> Reply:
        """Send one request and wait for its reply.

        Raises:
            ControlError: the daemon is unreachable, hung up, or answered garbage.
        """
        sock = self._connect()
        try:
            sock.sendall(encode(request))
            line = self._read_line(sock)
        except TimeoutError:
            self.close()
            raise ControlError(
                f"recentd at {self.path} did not answer within {self.timeout:g} s",
                request=request,
            ) from None
        except OSError as exc:
            self.close()
            raise ControlError(
                f"lost the connection to recentd at {self.path}: {exc.strerror or exc}",
                request=request,
            ) from None
        return decode_reply(line)

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self.path))
        except OSError as exc:
            sock.close()
            raise ControlError(_unreachable(self.path, exc)) from None
        self._sock = sock
        return sock

    def _read_line(self, sock: socket.socket) -> bytes:
        while True:
            cut = self._buffer.find(b"\n")
            if cut >= 0:
                line = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                return line
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError(0, "the daemon closed the connection")
            self._buffer += chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _unreachable(path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return f"recentd is not running (no daemon listening on {path})"
    if isinstance(exc, PermissionError):
        return f"not allowed to connect to {path} (permission denied)"
    return f"cannot connect to recentd at {path}: {exc.strerror or exc}"
