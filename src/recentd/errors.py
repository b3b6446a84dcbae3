"""The errors recentd raises, one small tree rooted in :class:`RecentError`.

Every error carries the input that caused it, so a message can always name the
file, line, column, option or address at fault::

    RecentError
    ├── RuleError            a rule, option or rule file is wrong (the admin's input)
    │   └── RecentOptionError    a `-m recent` option combination iptables or the kernel refuses
    ├── SourceError          a log line, capture or other input stream is damaged
    │   └── CaptureError         a pcap/pcapng file is truncated or corrupt
    ├── ControlError         a control request is refused (bad /proc line, permission, protocol)
    │   └── ProcWriteError       a /proc/net/xt_recent write, with the errno the kernel returns
    ├── BackendError         an adapter to the outside (iptables, nft, NFQUEUE, FUSE, store) failed
    ├── StateFileError       a persisted state file is unreadable or of another version
    └── ConfigError          the configuration file or a command-line option is wrong

Errors from other libraries are translated into these once, at the adapter that
called the library (``raise … from exc``); nothing else catches broadly.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: the pure modules that raise these touch no files
    from pathlib import Path


class RecentError(Exception):
    """Root of every error recentd raises on purpose."""


class RuleError(RecentError, ValueError):
    """A rule or rule file is invalid.

    Attributes:
        message: what is wrong, in iptables' own words where iptables has words for it.
        source: the file name (or ``"<command line>"``) the rule came from.
        line: 1-based line number within ``source``, 0 when unknown.
        column: 1-based column of the offending token, 0 when unknown.
        text: the offending rule text.
        option: the option at fault (``"--seconds"``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        line: int = 0,
        column: int = 0,
        text: str = "",
        option: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.text = text
        self.option = option

    def located(self, *, source: str, line: int, column: int = 0, text: str = "") -> RuleError:
        """Return the same error with its position in a file filled in."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        Exception.__init__(clone, self.message)
        clone.source, clone.line = source, line
        clone.column = column or self.column
        clone.text = text or self.text
        return clone

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.source, self.line, self.column) if part)
        return f"{where}: {self.message}" if where else self.message


class RecentOptionError(RuleError):
    """A `-m recent` option set that iptables (``origin="iptables"``) or the kernel's
    checkentry (``origin="kernel"``, errno EINVAL) rejects."""

    def __init__(self, message: str, *, option: str = "", origin: str = "iptables") -> None:
        super().__init__(message, option=option)
        self.origin = origin


class SourceError(RecentError):
    """An input stream (log file, journal, capture) could not be read as expected.

    Attributes:
        path: the file or stream name.
        position: line number, or packet number for captures (1-based; 0 when unknown).
        raw: the offending raw line or bytes, possibly shortened.
    """

    def __init__(
        self, message: str, *, path: str | Path = "", position: int = 0, raw: object = None
    ):
        super().__init__(message)
        self.message = message
        self.path = str(path)
        self.position = position
        self.raw = raw

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.path, self.position) if part)
        return f"{where}: {self.message}" if where else self.message


class CaptureError(SourceError):
    """A capture file is truncated, corrupt or of an unsupported link type.

    ``position`` is the number of the first packet that could not be read, and
    ``offset`` the byte offset in the file where the damage starts.
    """

    def __init__(self, message: str, *, path: str | Path = "", position: int = 0, offset: int = 0):
        super().__init__(message, path=path, position=position)
        self.offset = offset


class ControlError(RecentError):
    """A control request was refused. ``request`` is the offending input."""

    def __init__(self, message: str, *, request: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class ProcWriteError(ControlError):
    """A write to a ``/proc/net/xt_recent/NAME`` file that the kernel refuses.

    ``errno`` is what the kernel's write(2) returns (EINVAL, ESPIPE, EACCES …).
    """

    def __init__(self, message: str, *, errno: int, request: object = None) -> None:
        super().__init__(message, request=request)
        self.errno = errno

    @property
    def errno_name(self) -> str:
        return _errno.errorcode.get(self.errno, str(self.errno))


class BackendError(RecentError):
    """An adapter to the outside world failed.

    Attributes:
        backend: which adapter ("iptables", "nft", "nfqueue", "fuse", …).
        argv: the command that was run, when one was.
        returncode: its exit status, when it ran.
        stderr: what it said.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        argv: tuple[str, ...] = (),
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr

    def __str__(self) -> str:
        detail = f" ({self.stderr.strip()})" if self.stderr.strip() else ""
        return f"{self.backend}: {self.message}{detail}"


class StateFileError(RecentError):
    """A state file or journal cannot be used. ``found``/``expected`` are versions."""

    def __init__(
        self, message: str, *, path: str | Path, found: object = None, expected: object = None
    ):
        super().__init__(message)
        self.message = message
        self.path = str(path)
        self.found = found
        self.expected = expected

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(RecentError):
    """A configuration value is wrong. ``key`` names it, ``value`` is what was given."""

    def __init__(self, message: str, *, key: str = "", value: object = None, source: str = ""):
        super().__init__(message)
        self.message = message
        self.key = key
        self.value = value
        self.source = source

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        what = f"{self.key}: " if self.key else ""
        return f"{where}{what}{self.message}"


def exit_status(error: RecentError) -> int:
    """The command line's exit status for ``error``: 2 when the input is at fault (a rule,
    a log or capture, the configuration or an option), 1 when an operation failed (a
    backend, the state files, the daemon unreachable or failing). A request the daemon
    refuses comes back as a reply, and ``recentd ctl`` exits 2 for it itself."""
    return 2 if isinstance(error, RuleError | SourceError | ConfigError) else 1
