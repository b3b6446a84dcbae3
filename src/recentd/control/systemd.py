"""sd_notify(3) for ``Type=notify`` units: readiness, watchdog pings and status.

A plain datagram to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace), so no library is needed. Every call is a no-op when the variable is
unset (not started by systemd), and a failure to notify is reported as
:class:`BackendError` once, never as a crash of the daemon's loop.

The daemon calls :func:`notify_ready` once the rules, state and control socket
are up, :func:`notify_watchdog` at least every ``WatchdogSec/2`` from its loop
(see :func:`watchdog_interval`), and :func:`notify_status` with a one-line summary.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from recentd.errors import BackendError


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (``KEY=value`` lines); returns whether there was anyone to tell."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        raise BackendError(
            f"cannot notify systemd at {address!r}: {exc.strerror or exc}", backend="systemd"
        ) from exc
    return True


def notify_ready(environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the daemon is up (``READY=1``) and which process it is."""
    return notify(f"READY=1\nMAINPID={os.getpid()}", environ)


def notify_reloading(environ: Mapping[str, str] | None = None) -> bool:
    """Before re-reading configuration on SIGHUP; follow with :func:`notify_ready`."""
    return notify("RELOADING=1", environ)


def notify_stopping(environ: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", environ)


def notify_watchdog(environ: Mapping[str, str] | None = None) -> bool:
    """Keep-alive ping for ``WatchdogSec=``."""
    return notify("WATCHDOG=1", environ)


def notify_status(text: str, environ: Mapping[str, str] | None = None) -> bool:
    """A one-line status for ``systemctl status`` (newlines are flattened)."""
    return notify("STATUS=" + " ".join(text.split()), environ)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``), or ``None`` without a watchdog.

    ``WATCHDOG_PID``, when set, must be this process: the watchdog is not ours otherwise.
    """
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
