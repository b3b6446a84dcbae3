"""What one sshd or dropbear message says, before any session context: a table.

Rules:

- Every pattern is matched against the *whole* message (``fullmatch``).  Where a
  user-controlled field (a user name, a client banner, a key comment) precedes the
  address, the user field is greedy and the address is anchored at the end, right
  before the tail sshd writes itself (``port P ssh2``, ``[preauth]``); where the
  address comes first after fixed sshd text, the pattern is anchored there.  So an
  injected ``from 1.2.3.4`` inside a user name is never the address.
- A message whose address could be read two ways (a user name *and* a trailing
  field both carry attacker text) reports the alternatives too; the session state
  (:mod:`recentd.logs.sshd`) settles it with the address the connection already has,
  and without one the rightmost complete reading (``from A port P sshN``) stands:
  it is where every sshd since 3.x writes the peer.
- Only texts :func:`~recentd.logs.address.parse_address` accepts are addresses.  A
  host name, or a short prefix in a penalty line, gives no address.
- The table is data: :data:`MESSAGES` maps a message's first word to its patterns,
  so a line costs one dictionary look-up plus the few patterns that can match it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import NamedTuple

from recentd.logs.address import parse_address, split_host_port
from recentd.logs.events import IPAddress, Kind


class Action(enum.Enum):
    """What a message does to its session (see :mod:`recentd.logs.sshd`)."""

    FAILED = "failed"  #: one failed attempt: counted
    ACCEPTED = "accepted"  #: a successful login
    CONTEXT = "context"  #: attributed, never counted (a probe)
    MAX_ATTEMPTS = "max_attempts"  #: counts once if the session has counted nothing yet
    CLOSE = "close"  #: the connection ended; counts once if pre-auth with a user, uncounted
    PENALTY = "penalty"  #: a PerSourcePenalties penalty: counted
    BANNER_NOTE = "banner_note"  #: a banner failure with no address: the session's one
    NOTE = "note"  #: names the connection's address (``Connection from``), no event


class Observation(NamedTuple):
    """One message, read without context (a named tuple: one per sshd line)."""

    action: Action
    kind: Kind
    address: IPAddress | None = None
    port: int | None = None
    user: str | None = None
    user_invalid: bool = False
    preauth: bool = False
    #: ``"invalid user"``/``"authenticating user"``/``"user"`` when sshd wrote its preamble
    who: str | None = None
    #: other addresses the message could be read as (see the module rules)
    alternatives: tuple[IPAddress, ...] = ()


Builder = Callable[[re.Match[str], bool], Observation | None]

#: Messages longer than this are no sshd message (sshd caps its lines near 1 KiB;
#: "Their offer" lists reach a few hundred bytes).  Longer lines give no event.
MAX_MESSAGE = 8192

_SOLARIS_TAG = re.compile(r"\[ID \d+ [\w.]+\] ")
_DROPBEAR_STAMP = re.compile(r"\[\d+\] [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
_KERNEL_STAMP = re.compile(r"kernel: ?\[ *\d+\.\d+\]:? ")
_PREAUTH = " [preauth]"
_LEVELS = frozenset({"error: ", "fatal: "})
#: Prefixes some relays put before sshd's message, by the message's first 2 characters.
_RELAY_PREFIXES = {
    "[I": _SOLARIS_TAG,
    **{f"[{digit}": _DROPBEAR_STAMP for digit in "0123456789"},
    "ke": _KERNEL_STAMP,
}


def _port(text: str | None) -> int | None:
    return int(text) if text and len(text) <= 5 else None


def _obs(
    action: Action,
    kind: Kind,
    address: str | None,
    port: str | None = None,
    *,
    user: str | None = None,
    user_invalid: bool = False,
    preauth: bool = False,
    who: str | None = None,
) -> Observation | None:
    parsed = parse_address(address) if address is not None else None
    if address is not None and parsed is None:
        return None  # a host name or garbage where the address belongs: no event
    return Observation(action, kind, parsed, _port(port), user, user_invalid, preauth, who)


# ---------------------------------------------------------------- Failed / Accepted
_AUTH_TAIL = r" from (\S+) port (\d+) ssh[12]?(?::.*)?"
_AUTH_GREEDY = re.compile(r"(Failed|Accepted) (\S+) for (invalid user )?(.*)" + _AUTH_TAIL, re.S)
_AUTH_LAZY = re.compile(r"(Failed|Accepted) (\S+) for (invalid user )?(.*?)" + _AUTH_TAIL, re.S)
_AUTH_PORT = re.compile(r"(Failed|Accepted) (\S+) for (invalid user )?(.*) from (\S+) port (\d+)")
_AUTH_BARE = re.compile(r"(Failed|Accepted) (\S+) for (invalid user )?(.*) from (\S+)")


def _auth(message: str, preauth: bool) -> Observation | None:
    match = (
        _AUTH_GREEDY.fullmatch(message)
        or _AUTH_PORT.fullmatch(message)
        or _AUTH_BARE.fullmatch(message)
    )
    if match is None:
        return None
    verb, method, invalid, user, address = match.group(1, 2, 3, 4, 5)
    port = match.group(6) if match.re is not _AUTH_BARE else None
    action = Action.FAILED if verb == "Failed" else Action.ACCEPTED
    user_invalid = bool(invalid) or user == "<invalid username>"
    observation = _obs(
        action, Kind.for_method(method), address, port, user=user, user_invalid=user_invalid
    )
    if observation is None or match.re is not _AUTH_GREEDY or message.count(" from ") < 2:
        return observation  # a second reading needs a second " from "
    readings = (
        _AUTH_LAZY.fullmatch(message),  # attacker text after "ssh2:" (hostbased, ssh1)
        _AUTH_PORT.fullmatch(message),  # an old sshd's tail, after an injected "ssh2"
        _AUTH_BARE.fullmatch(message),
    )
    others = [
        address
        for reading in readings
        if reading is not None
        and (address := parse_address(reading.group(5))) not in (None, observation.address)
    ]
    return observation._replace(alternatives=tuple(others)) if others else observation


# ---------------------------------------------------------------- context lines
def _table(*rows: tuple[str, Builder]) -> list[tuple[re.Pattern[str], Builder]]:
    return [(re.compile(pattern, re.S), build) for pattern, build in rows]


def _invalid(m: re.Match[str], preauth: bool) -> Observation | None:
    port = m.group(3) if m.re.groups >= 3 else None
    return _obs(Action.CONTEXT, Kind.INVALID_USER, m.group(2), port,
                user=m.group(1), user_invalid=True)


def _not_allowed(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.CONTEXT, Kind.NOT_ALLOWED, m.group(2), user=m.group(1), user_invalid=True)


def _root_refused(m: re.Match[str], preauth: bool) -> Observation | None:
    port = m.group(2) if m.re.groups >= 2 else None
    return _obs(Action.CONTEXT, Kind.ROOT_REFUSED, m.group(1), port, user="root")


def _pam(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.CONTEXT, Kind.PAM, m.group(3), user=m.group(2),
                user_invalid=bool(m.group(1)))


def _pam_unix(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.CONTEXT, Kind.PAM, m.group(1), user=m.group(2))


def _max_attempts(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.MAX_ATTEMPTS, Kind.MAX_ATTEMPTS, m.group(3), m.group(4),
                user=m.group(2), user_invalid=bool(m.group(1)))


def _too_many_old(m: re.Match[str], preauth: bool) -> Observation | None:
    return Observation(Action.MAX_ATTEMPTS, Kind.MAX_ATTEMPTS, user=m.group(2),
                       user_invalid=bool(m.group(1)))


def _close_preamble(m: re.Match[str], preauth: bool) -> Observation | None:
    who, user, address, port = m.group(1, 2, 3, 4)
    return _obs(Action.CLOSE, Kind.PREAUTH_CLOSE, address, port, user=user,
                user_invalid=who == "invalid user", preauth=preauth, who=who)


_DISCONNECTING_LAZY = re.compile(
    r"Disconnecting (?:(invalid user|authenticating user|user) (.*?) )?(\S+) port (\d+): .*", re.S
)


def _disconnecting(m: re.Match[str], preauth: bool) -> Observation | None:
    """``Disconnecting <preamble> A port P: <reason>``: the reason may quote names the
    client chose (``Change of username or service not allowed: (u,s) -> (u2,s2)``),
    so attacker text can sit on both sides of the address.  When the first and the
    last reading disagree, the line names no address: its connection's decides."""
    observation = _close_preamble(m, preauth)
    lazy = _DISCONNECTING_LAZY.fullmatch(m.string)
    if observation is None or lazy is None or lazy.group(3) == m.group(3):
        return observation
    return observation._replace(address=None, port=None, user=None)


def _close_bare(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.CLOSE, Kind.PREAUTH_CLOSE, m.group(1), preauth=preauth)


def _received_disconnect(m: re.Match[str], preauth: bool) -> Observation | None:
    if not preauth:
        return None
    port = m.group(2) if m.re.groups >= 3 else None
    return _obs(Action.CONTEXT, Kind.DISCONNECT, m.group(1), port)


def _probe(kind: Kind) -> Builder:
    def build(m: re.Match[str], preauth: bool) -> Observation | None:
        port = m.group(2) if m.re.groups >= 2 else None
        return _obs(Action.CONTEXT, kind, m.group(1), port)

    return build


def _note(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.NOTE, Kind.PREAUTH_CLOSE, m.group(1), m.group(2))


def _note_bare(m: re.Match[str], preauth: bool) -> Observation | None:
    return _obs(Action.NOTE, Kind.PREAUTH_CLOSE, m.group(1))


def _banner_note(m: re.Match[str], preauth: bool) -> Observation | None:
    return Observation(Action.BANNER_NOTE, Kind.BANNER)


def _penalty(m: re.Match[str], preauth: bool) -> Observation | None:
    address, bits = m.group(1, 2)
    parsed = parse_address(address)
    if parsed is None or int(bits) != parsed.max_prefixlen:
        return None  # a penalty on a whole prefix names no one address
    return Observation(Action.PENALTY, Kind.PENALTY, parsed)


# ---------------------------------------------------------------- dropbear
def _dropbear(action: Action, kind: Kind, invalid: bool = False) -> Builder:
    def build(m: re.Match[str], preauth: bool) -> Observation | None:
        address, port = split_host_port(m.group(2))
        if address is None:
            return None
        return Observation(action, kind, address, port, user=m.group(1), user_invalid=invalid)

    return build


_DROPBEAR_USER = re.compile(r".*?\(user '(.*)', \d+ fails\)|.* - user '(.*)'", re.S)


def _dropbear_exit(m: re.Match[str], preauth: bool) -> Observation | None:
    address, port = split_host_port(m.group(1))
    if address is None:
        return None
    reason = m.group(2)
    named = _DROPBEAR_USER.match(reason)
    user = (named.group(1) or named.group(2)) if named else None
    action = Action.MAX_ATTEMPTS if "Max auth tries reached" in reason else Action.CLOSE
    kind = Kind.MAX_ATTEMPTS if action is Action.MAX_ATTEMPTS else Kind.PREAUTH_CLOSE
    return Observation(action, kind, address, port, user=user, preauth=True,
                       who="authenticating user" if user else None)


def _dropbear_exit_old(m: re.Match[str], preauth: bool) -> Observation | None:
    address, port = split_host_port(m.group(3))
    if address is None:
        return None
    action = Action.MAX_ATTEMPTS if "Max auth tries reached" in m.group(2) else Action.CLOSE
    kind = Kind.MAX_ATTEMPTS if action is Action.MAX_ATTEMPTS else Kind.PREAUTH_CLOSE
    return Observation(action, kind, address, port, user=m.group(1), preauth=True,
                       who="authenticating user")


_PREAMBLE = r"(?:(invalid user|authenticating user|user) (.*) )?"

#: First word of a message -> the patterns that may match it, tried in order.
MESSAGES: dict[str, list[tuple[re.Pattern[str], Builder]]] = {
    "Invalid": _table(
        (r"Invalid user (.*) from (\S+) port (\d+)", _invalid),
        (r"Invalid user (.*) from (\S+)", _invalid),
    ),
    "Illegal": _table((r"Illegal user (.*) from (\S+)", _invalid)),
    "User": _table((r"User (.*) from (\S+) not allowed because .*", _not_allowed)),
    "ROOT": _table(
        (r"ROOT LOGIN REFUSED FROM (\S+) port (\d+)", _root_refused),
        (r"ROOT LOGIN REFUSED FROM (\S+)", _root_refused),
    ),
    "PAM:": _table(
        (
            r"PAM: (?:[Aa]uthentication (?:failure|error)|User not known to the underlying "
            r"authentication module|unknown user) for (illegal user )?(.*) from (\S+?)"
            r"(?: via \S+)?\s*",
            _pam,
        ),
    ),
    "pam_unix(sshd:auth):": _table(
        (
            r"pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* "
            r"tty=\S* ruser=\S* rhost=(\S+)(?:  user=(.*))?",
            _pam_unix,
        ),
    ),
    "maximum": _table(
        (
            r"maximum authentication attempts exceeded for (invalid user )?(.*) from (\S+) "
            r"port (\d+) ssh2",
            _max_attempts,
        ),
    ),
    "Disconnecting:": _table(
        (r"Disconnecting: Too many authentication failures(?: for (invalid user )?(.*))?",
         _too_many_old),
    ),
    "Disconnecting": _table(
        (r"Disconnecting " + _PREAMBLE + r"(\S+) port (\d+): .*", _disconnecting),
    ),
    "Connection": _table(
        (r"Connection (?:closed|reset) by " + _PREAMBLE + r"(\S+) port (\d+)", _close_preamble),
        (r"Connection (?:closed|reset) by (\S+)", _close_bare),
        (r"Connection from (\S+) port (\d+)(?: on \S+ port \d+(?: rdomain .*)?)?", _note),
        (r"Connection from (\S+)", _note_bare),
    ),
    "Disconnected": _table(
        (r"Disconnected from " + _PREAMBLE + r"(\S+) port (\d+)", _close_preamble),
        (r"Disconnected from (\S+)", _close_bare),
    ),
    "Received": _table(
        (r"Received disconnect from (\S+) port (\d+):(\d+): .*", _received_disconnect),
        (r"Received disconnect from (\S+?): ?(\d+): .*", _received_disconnect),
    ),
    "Did": _table(
        (r"Did not receive identification string from (\S+) port (\d+)", _probe(Kind.BANNER)),
        (r"Did not receive identification string from (\S+)", _probe(Kind.BANNER)),
    ),
    "Bad": _table(
        (r"Bad protocol version identification .* from (\S+) port (\d+)", _probe(Kind.BANNER)),
        (r"Bad protocol version identification .* from (\S+)", _probe(Kind.BANNER)),
        (r"Bad (?:PAM )?password attempt for '(.*)' from (\S+)",
         _dropbear(Action.FAILED, Kind.PASSWORD)),
    ),
    "banner": _table(
        (r"banner exchange: Connection from (\S+) port (\d+): .*", _probe(Kind.BANNER)),
    ),
    "kex_exchange_identification:": _table((r"kex_exchange_identification: .*", _banner_note)),
    "ssh_dispatch_run_fatal:": _table(
        (r"ssh_dispatch_run_fatal: Connection from (\S+) port (\d+): .*",
         _probe(Kind.NEGOTIATION)),
    ),
    "Unable": _table(
        (r"Unable to negotiate with (\S+) port (\d+): no matching .*", _probe(Kind.NEGOTIATION)),
    ),
    "Timeout": _table(
        (r"Timeout before authentication for (\S+) port (\d+)", _probe(Kind.TIMEOUT)),
        (r"Timeout before authentication for connection from (\S+) to \S+, pid = \d+",
         _probe(Kind.TIMEOUT)),
    ),
    "drop": _table(
        (r"drop connection #\d+ from \[([^\]]+)\]:(\d+) on \[[^\]]+\]:\d+ .*",
         _probe(Kind.PENALTY_DROP)),
    ),
    "srclimit_penalise:": _table(
        (r"srclimit_penalise: ipv[46]: new (\S+)/(\d+) \w+ penalty of \d+ seconds for .*",
         _penalty),
        (r"srclimit_penalise: (\S+)/(\d+): activating ipv[46] penalty of \d+ seconds for .*",
         _penalty),
    ),
    "refused": _table(
        (r"refused connect from .* \(([^()\s]+)\)", _probe(Kind.REFUSED_CONNECT)),
    ),
    "bad": _table(
        (r"bad (?:PAM )?password attempt for '(.*)' from (\S+)",
         _dropbear(Action.FAILED, Kind.PASSWORD)),
    ),
    "Login": _table(
        (r"Login attempt for nonexistent user(?: '(.*)')? from (\S+)",
         _dropbear(Action.FAILED, Kind.INVALID_USER, invalid=True)),
    ),
    "login": _table(
        (r"login attempt for nonexistent user(?: '(.*)')? from (\S+)",
         _dropbear(Action.FAILED, Kind.INVALID_USER, invalid=True)),
    ),
    "Exit": _table(
        (r"Exit before auth from <([^>]+)>: (.*)", _dropbear_exit),
        (r"Exit before auth \(user '(.*)', \d+ fails\): (.*) from (\S+)", _dropbear_exit_old),
    ),
    "Password": _table(
        (r"Password auth succeeded for '(.*)' from (\S+)",
         _dropbear(Action.ACCEPTED, Kind.PASSWORD)),
    ),
    "Pubkey": _table(
        (r"Pubkey auth succeeded for '(.*)' with \S+ key .* from (\S+)",
         _dropbear(Action.ACCEPTED, Kind.PUBLICKEY)),
    ),
}


def normalise(message: str) -> tuple[str, bool]:
    """The message without relay prefixes and level words, and whether it was pre-auth."""
    relay = _RELAY_PREFIXES.get(message[:2])
    if relay is not None and (prefix := relay.match(message)):
        message = message[prefix.end() :]
    preauth = message.endswith(_PREAUTH)
    if preauth:
        message = message[: -len(_PREAUTH)]
    if message[:7] in _LEVELS:
        message = message[7:]
    return message, preauth


def observe(message: str) -> Observation | None:
    """What ``message`` (one sshd/dropbear message, without header) says, if anything."""
    if len(message) > MAX_MESSAGE:
        return None
    message, preauth = normalise(message)
    first = message.split(" ", 1)[0]
    if first in ("Failed", "Accepted"):
        return _auth(message, preauth)
    for pattern, build in MESSAGES.get(first, ()):
        match = pattern.fullmatch(message)
        if match:
            return build(match, preauth)
    return None
