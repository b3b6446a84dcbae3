"""``recentd-pam-hook``: sshd's PAM stack tells the daemon that a session opened or closed.

Installed in ``/etc/pam.d/sshd`` as (docs/pam.md)::

    session optional pam_exec.so quiet /usr/local/bin/recentd-pam-hook

Rules of this program:

1. It never delays or blocks a login. Whatever happens — daemon down, socket missing,
   a daemon that accepts and never answers, no address, garbage in the environment —
   it exits 0, and within :data:`DEADLINE_S` of starting: every socket operation gets
   only the time left, and a watchdog thread ends the process :data:`WATCHDOG_GRACE_S`
   later as a last resort (``pam_exec`` waits for its child with no timeout of its own).
2. It starts fast: stdlib only, and of recentd only :mod:`recentd.pam.address` (the
   package ``__init__`` files import nothing). The C modules ``_socket`` and ``_thread``
   stand in for ``socket`` and ``signal``/``threading``, whose enum wrappers and helpers
   cost more to import (10-20 ms on a busy machine) than the rest of the hook takes to run.
3. It sends one ``Login`` request (:class:`recentd.control.protocol.Login`, written here
   by hand for the same reason; a test holds the two to the same wire form) and waits
   for its reply until the deadline, so a refusal reaches ``pam_exec``'s ``log=`` file.
4. The address is taken as :func:`recentd.pam.address.session_address` says: never a
   host name, never resolved.
5. Diagnostics go to stderr, one line each (``/dev/null`` unless ``pam_exec`` has
   ``log=FILE``); the exit status is 0 whatever they say. :func:`main` holds the one
   broad ``except``: even a bug in the hook is a diagnostic, not a failed session.

Arguments (after the program path in the PAM line): ``--socket PATH`` (default
``/run/recentd/control.sock``) and ``--deadline-ms N`` (default 200, at most 2000).
"""

from __future__ import annotations

import _socket
import _thread
import os
import sys
import time

from recentd.pam.address import session_address

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (mypy reads any TYPE_CHECKING as
#: true): ``collections.abc`` pulls in ``collections``, a cost at every login.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The daemon's control socket when ``--socket`` is not given (recentd.defaults.SOCKET).
DEFAULT_SOCKET = "/run/recentd/control.sock"
#: The whole run's budget, from the start of :func:`main` to exit.
DEADLINE_S = 0.2
#: The watchdog fires this long after the deadline: the socket timeouts, which end the
#: run cleanly, come first.
WATCHDOG_GRACE_S = 0.05
#: ``--deadline-ms`` may not make a login wait longer than this.
MAX_DEADLINE_S = 2.0
#: The wire's version (recentd.control.protocol.PROTOCOL_VERSION).
PROTOCOL_VERSION = 1
#: PAM_TYPE → Login.event; other module types (auth, account, password) send nothing.
EVENTS = {"open_session": "open", "close_session": "close"}
#: PAM items are short; longer text is cut (the daemon refuses fields over 256).
MAX_FIELD = 256
_REPLY_LIMIT = 4096


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Tell the daemon about this PAM session event; always returns 0.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).
        environ: the environment ``pam_exec`` gave (default ``os.environ``).
    """
    started = time.monotonic()
    socket_path, deadline_s = _options(sys.argv[1:] if argv is None else argv)
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_watchdog, (done, deadline_s + WATCHDOG_GRACE_S))
    try:
        request = login_request(os.environ if environ is None else environ)
        if request is not None:
            _send(socket_path, request, started + deadline_s)
    except Exception as exc:  # the one guard (rule 1): a bug here must not fail a login
        _say(f"internal error, nothing sent: {exc!r}")
    finally:
        done.release()
    return 0


def _watchdog(done: _thread.LockType, timeout_s: float) -> None:
    """End the process unless ``done`` is released within ``timeout_s``."""
    if done.acquire(timeout=timeout_s):
        return
    _say("deadline reached; the login goes on without recentd")
    os._exit(0)  # no cleanup: whatever hangs must not hold the login


def _options(argv: Sequence[str]) -> tuple[str, float]:
    """``--socket`` and ``--deadline-ms``; anything wrong is reported and ignored."""
    socket_path, deadline_s = DEFAULT_SOCKET, DEADLINE_S
    args = iter(argv)
    for arg in args:
        value = next(args, "")
        if arg == "--socket" and value:
            socket_path = value
        elif arg == "--deadline-ms" and value.isdigit() and int(value) > 0:
            deadline_s = min(int(value) / 1000, MAX_DEADLINE_S)
        else:
            _say(f"ignored argument {arg!r} {value!r}")
    return socket_path, deadline_s


def login_request(environ: Mapping[str, str]) -> bytes | None:
    """The ``Login`` request line for this environment, or None when there is none to send.

    None when ``PAM_TYPE`` is not a session event (the line sits in another stack) or
    when no numeric client address is known (a local login, a name with no fallback).
    """
    event = EVENTS.get(environ.get("PAM_TYPE", ""))
    if event is None:
        _say(f"PAM_TYPE {environ.get('PAM_TYPE', '')!r} is not a session event; nothing sent")
        return None
    address = session_address(environ)
    if address is None:
        _say(f"no numeric client address (PAM_RHOST {_field(environ, 'PAM_RHOST')!r})")
        return None
    fields: dict[str, str | int] = {
        "v": PROTOCOL_VERSION,
        "type": "Login",
        "addr": address,
        "user": _field(environ, "PAM_USER"),
        "service": _field(environ, "PAM_SERVICE"),
        "event": event,
        "tty": _field(environ, "PAM_TTY"),
    }
    return _json_object(fields) + b"\n"


def _field(environ: Mapping[str, str], name: str) -> str:
    """A PAM item as text: undecodable bytes replaced, cut to :data:`MAX_FIELD`."""
    raw = environ.get(name, "").encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace")[:MAX_FIELD]


def _json_object(fields: Mapping[str, str | int]) -> bytes:
    """A flat JSON object of strings and ints (``json`` costs more to import than this)."""
    parts = [f"{_json_string(key)}:{_json_value(value)}" for key, value in fields.items()]
    return ("{" + ",".join(parts) + "}").encode("ascii")


def _json_value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else _json_string(value)


def _json_string(text: str) -> str:
    """JSON string literal, ASCII only: every character outside printable ASCII, and
    ``"`` and ``\\``, as ``\\uXXXX`` (surrogate pairs beyond the BMP), as JSON allows."""
    out = []
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F and char not in '"\\':
            out.append(char)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def _send(socket_path: str, request: bytes, deadline: float) -> None:
    """Send ``request``, read one reply line, all before ``deadline`` (monotonic)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(_left(deadline))
        sock.connect(socket_path)
        sock.settimeout(_left(deadline))
        sock.sendall(request)
        reply = _read_line(sock, deadline)
    except OSError as exc:  # TimeoutError is one: a slow daemon is a daemon down
        _say(f"recentd at {socket_path} not told: {exc.strerror or exc}")
        return
    finally:
        sock.close()
    if not reply.startswith(b'{"v":1,"type":"LoginResult"'):
        _say(f"recentd refused: {reply[:300].decode('utf-8', 'replace').strip()}")


def _read_line(sock: _socket.socket, deadline: float) -> bytes:
    reply = b""
    while b"\n" not in reply and len(reply) < _REPLY_LIMIT:
        sock.settimeout(_left(deadline))
        chunk = sock.recv(_REPLY_LIMIT)
        if not chunk:
            break
        reply += chunk
    return reply


def _left(deadline: float) -> float:
    """Seconds left before ``deadline``; a spent budget times out at once."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline reached")
    return left


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"recentd-pam-hook: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # no stderr at all: stay silent
        pass


if __name__ == "__main__":
    sys.exit(main())
