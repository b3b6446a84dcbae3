"""The common sshd lines read by one pattern: header and message at once, from a batch.

Rules:

- This is a *twin*, kept only for speed: :data:`COMMON_LINE` reads, at a line's start in
  a batch text (each line ended by ``\n``), a classic line with a pid written by one of
  sshd's programs whose message is one of the six forms an attacked server writes
  most (``pam_unix(sshd:auth)``, ``Failed``/``Accepted``, ``Invalid user``, ``Received
  disconnect``, ``Disconnected from``, ``Connection closed by``).  Each form is the
  *first* pattern ``sshd_messages`` tries for its first word, so where it matches,
  ``observe`` reads the same fields; each reader names the builder it repeats.
  :func:`feed_common` moves the record parser's stamp (``classic_time``) and hands the
  fields to ``SshdParser.feed_plain`` (the flat twin of its step for these actions).
- Whenever this reading could differ from ``records.parse`` + ``observe``, it declines
  (``None``, nothing moved) and the caller parses the line the ordinary way: a
  ``Failed``/``Accepted`` line with a second `` from `` (two readings: the session
  decides), an overlong message, a `` [preauth]`` or blanks read inside a field.
- ``tests/logs/test_fast_path.py`` checks that observations and state agree with the
  line-by-line path.  Measured (``bench/parse.py`` lines, loaded 2-core machine): one
  match plus the flat step is ~7 µs a common line, against ~12 µs for ``parse``,
  ``observe`` and the step object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from recentd.logs.address import parse_address
from recentd.logs.events import Kind
from recentd.logs.records import SSH_PROGRAMS, RecordParser
from recentd.logs.sshd import EventMaker, SshdParser
from recentd.logs.sshd_messages import MAX_MESSAGE, Action
from recentd.logs.timestamps import MONTHS

_PREAMBLE = r"(?:(?P<{0}who>invalid user|authenticating user|user) (?P<{0}user>.*) )?"
#: The forms; a field that ends the message is lazy, so that a final `` [preauth]``
#: is read as ``pre`` (as ``normalise`` cuts it) and trailing blanks stay outside.
_FORMS = "|".join([
    # sshd_messages: "pam_unix(sshd:auth):"
    r"pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* "
    r"tty=\S* ruser=\S* rhost=(?P<pam_addr>\S+)(?:  user=(?P<pam_user>.*?))?",
    # sshd_messages._AUTH_GREEDY
    r"(?P<verb>Failed|Accepted) (?P<method>\S+) for (?P<invalid>invalid user )?(?P<auth_user>.*)"
    r" from (?P<auth_addr>\S+) port (?P<auth_port>\d+) ssh[12]?(?::.*?)?",
    # sshd_messages: "Invalid" (the first pattern)
    r"Invalid user (?P<inv_user>.*) from (?P<inv_addr>\S+) port (?P<inv_port>\d+)",
    # sshd_messages: "Received" (the first pattern)
    r"Received disconnect from (?P<rcv_addr>\S+) port (?P<rcv_port>\d+):(?:\d+): .*?",
    # sshd_messages: "Disconnected" and "Connection" (the first pattern of each)
    r"Disconnected from " + _PREAMBLE.format("dis_")
    + r"(?P<dis_addr>\S+) port (?P<dis_port>\d+)",
    r"Connection (?:closed|reset) by " + _PREAMBLE.format("con_")
    + r"(?P<con_addr>\S+) port (?P<con_port>\d+)",
])  # fmt: skip

#: A common sshd line at a line's start (see the module rules); the message is
#: ``msg`` (the body, and `` [preauth]`` as ``pre`` when the pattern found it there).
COMMON_LINE = re.compile(
    r"(" + "|".join(MONTHS) + r") ([ \d]?\d) (\d\d):(\d\d):(\d\d) ([^\s\[\]]+) "
    r"(" + "|".join(re.escape(name) for name in sorted(SSH_PROGRAMS)) + r")\[(\d+)\]: "
    r"(?P<msg>(?:" + _FORMS + r")(?P<pre> \[preauth\])?)[ \t\r]*\n"
)
_PREAUTH = " [preauth]"
T = TypeVar("T")


def feed_common(
    match: re.Match[str], records: RecordParser, sessions: SshdParser, line: int,
    make: EventMaker[T],
) -> list[T] | None:  # fmt: skip
    """The events of a :data:`COMMON_LINE` match numbered ``line``, with the record
    parser's and the sessions' state moved as ``records.parse`` and ``sessions.feed_as``
    move it — or ``None``, nothing moved, where this reading could differ from theirs
    (then parse the line as usual)."""
    message = match.group("msg")
    preauth = message.endswith(_PREAUTH)
    # The first two can only happen if a form's last field were greedy (they are lazy):
    # kept so that a form added later cannot read a field other than observe reads it.
    if (
        preauth != (match.start("pre") >= 0)  # " [preauth]" read inside a field
        or message[-1] in " \t\r"  # blanks the strip removes, read inside a field
        or len(message) > MAX_MESSAGE
    ):
        return None
    first = message[:2]
    if first in ("Fa", "Ac") and message.count(" from ") != 1:  # (" [preauth]" adds none)
        return None  # two readings of the address: observe's _auth weighs them
    stamp = match.string[match.start() : match.end(5)]
    time = records.classic_time(stamp, *match.group(1, 2, 3, 4, 5))
    host, program, pid = match.group(6, 7, 8)
    message_parts = _READERS[first](match, preauth)
    if message_parts is None:
        return []  # observe gives no observation: the line moves no session
    action, kind, address, port, user, user_invalid, who = message_parts
    parsed = parse_address(address)
    if parsed is None:
        return []  # a host name where the address belongs (sshd_messages._obs: no event)
    return sessions.feed_plain(host, int(pid[:9]), time, line, program, action, kind, parsed,
                               _port(port), user, user_invalid, preauth, who, make)  # fmt: skip


#: What a form says: action, kind, address text, port text, user, user_invalid, who —
#: the arguments ``sshd_messages`` gives ``_obs`` for the same message.
_Parts = tuple[Action, Kind, str, "str | None", "str | None", bool, "str | None"]
_Reader = Callable[[re.Match[str], bool], "_Parts | None"]


def _port(text: str | None) -> int | None:  # sshd_messages._port
    return int(text) if text and len(text) <= 5 else None


def _auth(m: re.Match[str], preauth: bool) -> _Parts | None:  # sshd_messages._auth
    verb, method, invalid, user, address, port = m.group(
        "verb", "method", "invalid", "auth_user", "auth_addr", "auth_port"
    )
    action = Action.FAILED if verb == "Failed" else Action.ACCEPTED
    user_invalid = bool(invalid) or user == "<invalid username>"
    return action, Kind.for_method(method), address, port, user, user_invalid, None


def _pam_unix(m: re.Match[str], preauth: bool) -> _Parts | None:  # sshd_messages._pam_unix
    return Action.CONTEXT, Kind.PAM, m.group("pam_addr"), None, m.group("pam_user"), False, None


def _invalid(m: re.Match[str], preauth: bool) -> _Parts | None:  # sshd_messages._invalid
    address, port, user = m.group("inv_addr", "inv_port", "inv_user")
    return Action.CONTEXT, Kind.INVALID_USER, address, port, user, True, None


def _received(m: re.Match[str], preauth: bool) -> _Parts | None:
    """sshd_messages._received_disconnect: only before authentication."""
    if not preauth:
        return None
    return Action.CONTEXT, Kind.DISCONNECT, m.group("rcv_addr"), m.group("rcv_port"), None, \
        False, None  # fmt: skip


def _closer(prefix: str) -> _Reader:  # sshd_messages._close_preamble
    names = tuple(prefix + name for name in ("who", "user", "addr", "port"))

    def read(m: re.Match[str], preauth: bool) -> _Parts | None:
        who, user, address, port = m.group(*names)
        return Action.CLOSE, Kind.PREAUTH_CLOSE, address, port, user, who == "invalid user", who

    return read


_READERS: dict[str, _Reader] = {
    "Fa": _auth,
    "Ac": _auth,
    "pa": _pam_unix,
    "In": _invalid,
    "Re": _received,
    "Di": _closer("dis_"),
    "Co": _closer("con_"),
}
