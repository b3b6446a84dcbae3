"""What the log parsers report: one frozen :class:`AuthEvent` per attributed line.

Rules:

- An event names exactly one remote address, validated by :mod:`ipaddress` and
  canonical (``::ffff:a.b.c.d`` is the IPv4 address, IPv6 zones are gone).
- ``outcome`` is a closed set: a counted failed attempt, a successful login, or a
  *probe* — evidence that the address was there (an ``Invalid user`` line, a banner
  grab, a PAM context line) which is reported but never counted as an attempt.
- ``kind`` says which sshd message made the event; the user category (root, invalid,
  valid) is derived from the event, so per-category policies need no re-parsing.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Outcome(enum.Enum):
    """What an event means for the address it names."""

    FAILURE = "failure"  #: one counted failed authentication attempt
    SUCCESS = "success"  #: a successful login (``Accepted …``)
    PROBE = "probe"  #: attributed context, never counted


class Kind(enum.StrEnum):
    """The message an event comes from. Failed/Accepted lines use the method's name."""

    PASSWORD = "password"  # noqa: S105 (a method name, not a secret)
    PUBLICKEY = "publickey"
    KEYBOARD_INTERACTIVE = "keyboard-interactive"
    HOSTBASED = "hostbased"
    GSSAPI = "gssapi"
    NONE = "none"  #: the ``none`` method, logged for invalid users
    OTHER_METHOD = "other_method"  #: a method name sshd reports that is none of the above
    INVALID_USER = "invalid_user"
    NOT_ALLOWED = "not_allowed"  #: AllowUsers/DenyUsers/AllowGroups/DenyGroups refusals
    ROOT_REFUSED = "root_refused"  #: ``ROOT LOGIN REFUSED FROM``
    PAM = "pam"  #: PAM's own failure lines (context: sshd logs ``Failed`` beside them)
    MAX_ATTEMPTS = "max_attempts"  #: MaxAuthTries reached
    PREAUTH_CLOSE = "preauth_close"  #: a connection that ended before authentication
    PENALTY = "penalty"  #: PerSourcePenalties (``srclimit_penalise``)
    PENALTY_DROP = "penalty_drop"  #: a connection dropped while penalised (rate-limited)
    BANNER = "banner"  #: no or a bad SSH banner (scanners, port probes)
    NEGOTIATION = "negotiation"  #: no common algorithm (old clients, scanners)
    TIMEOUT = "timeout"  #: LoginGraceTime expired
    DISCONNECT = "disconnect"  #: ``Received disconnect`` before authentication
    REFUSED_CONNECT = "refused_connect"  #: tcp-wrappers refusals
    CUSTOM = "custom"  #: a user-defined parser's pattern

    @classmethod
    def for_method(cls, method: str) -> Kind:
        """The kind of a Failed/Accepted line whose method sshd wrote as ``method``."""
        known = _METHODS.get(method)
        if known is not None:
            return known
        name = method.split("/", 1)[0]
        if name.startswith("gssapi"):
            return cls.GSSAPI
        return _METHODS.get(name, cls.OTHER_METHOD)


_METHODS = {
    "password": Kind.PASSWORD,
    "publickey": Kind.PUBLICKEY,
    "keyboard-interactive": Kind.KEYBOARD_INTERACTIVE,
    "hostbased": Kind.HOSTBASED,
    "none": Kind.NONE,
}


class UserCategory(enum.Enum):
    """Who was tried: the categories a policy may treat differently."""

    ROOT = "root"
    INVALID = "invalid"  #: a name the server does not know (or refuses as unknown)
    VALID = "valid"
    UNKNOWN = "unknown"  #: the line names no user


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One attributed log line.

    Attributes:
        outcome: failure (counted), success or probe.
        address: the remote address, canonical.
        time: epoch nanoseconds of the line, ``None`` when the line carries no time.
        kind: the message the event comes from.
        line: 1-based line number in its input.
        user: the user name as logged (may be empty or hostile), ``None`` if absent.
        user_invalid: sshd said the user does not exist (or is not allowed).
        service: the program that wrote the line (``sshd``, ``sshd-session``, …).
        pid: its process id, if the line has one.
        host: the host name in the line's header, if any.
    """

    outcome: Outcome
    address: IPAddress
    time: int | None
    kind: Kind
    line: int
    user: str | None = None
    user_invalid: bool = False
    service: str = ""
    pid: int | None = None
    host: str | None = None

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.address.version

    @property
    def category(self) -> UserCategory:
        return user_category(self.user, self.user_invalid)


def user_category(user: str | None, user_invalid: bool) -> UserCategory:
    """The category of a user name as an event reports it (see :class:`UserCategory`)."""
    if user is None:
        return UserCategory.UNKNOWN
    if user == "root":
        return UserCategory.ROOT
    return UserCategory.INVALID if user_invalid else UserCategory.VALID
