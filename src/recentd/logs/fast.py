"""The common sshd lines read by one pattern: header and message at once, from a batch.

Rules:

- This is a *twin*, kept only for speed: :data:`COMMON_LINE` reads, at a line's start in
  a batch text (each line ended by ``\\n``), a classic line with a pid written by one of
  sshd's programs whose message is one of the six forms an attacked server writes
  most (``pam_unix(sshd:auth)``, ``Failed``/``Accepted``, ``Invalid user``, ``Received
  disconnect``, ``Disconnected from``, ``Connection closed by``).  :func:`read_common`
  gives the :class:`~recentd.logs.records.LogRecord` and the message
  :class:`~recentd.logs.sshd_messages.Observation` that ``RecordParser.parse`` and
  ``observe`` give for that line (their definitions stand; the sessions' rules are
  not repeated here: the caller hands both to ``SshdParser.feed_observed``).
- Whenever this reading could differ from theirs, it declines (``None``) and the
  caller parses the line the ordinary way: a message ending in `` [preauth]`` that the
  pattern read as part of a field, trailing blanks the line's strip would remove, a
  ``Failed``/``Accepted`` line with a second `` from `` (two readings: the session
  decides), an overlong message.  Each form is the *first* pattern ``observe`` tries
  for its first word, so where it matches, ``observe`` uses the same one.
- ``tests/logs/test_fast_path.py`` checks that observations and state agree with the
  line-by-line path on generated, mutated and every peer-corpus line.

Measured (200k-line generated classic log, loaded 2-core machine): header and message
in one match cost ~2 µs a line against ~7 µs for ``parse`` + ``observe``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from recentd.logs.events import Kind
from recentd.logs.records import SSH_PROGRAMS, LogRecord, RecordParser
from recentd.logs.sshd_messages import (
    MAX_MESSAGE,
    Action,
    Observation,
    make_observation,
)
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


def read_common(
    match: re.Match[str], records: RecordParser, line: int
) -> tuple[LogRecord, Observation | None] | None:
    """The record and message observation of a :data:`COMMON_LINE` match numbered
    ``line`` — as ``records.parse`` and ``observe`` read it — or ``None`` where this
    reading could differ from theirs (then parse the line as usual)."""
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
    month, day, hh, mm, ss, host, program, pid = match.group(1, 2, 3, 4, 5, 6, 7, 8)
    stamp = match.string[match.start() : match.end(5)]
    record = records.classic_record(
        stamp, month, day, hh, mm, ss, host, program, pid, message, line=line
    )
    first = message[:2]
    if first in ("Fa", "Ac"):
        if message.count(" from ") != 1:  # (" [preauth]" adds none)
            return None  # two readings of the address: observe's _auth weighs them
        return record, _auth(match)
    return record, _READERS[first](match, preauth)


def _auth(m: re.Match[str]) -> Observation | None:
    verb, method, invalid, user = m.group("verb", "method", "invalid", "auth_user")
    action = Action.FAILED if verb == "Failed" else Action.ACCEPTED
    user_invalid = bool(invalid) or user == "<invalid username>"
    return make_observation(action, Kind.for_method(method), m.group("auth_addr"),
                            m.group("auth_port"), user=user, user_invalid=user_invalid)  # fmt: skip


def _pam_unix(m: re.Match[str], preauth: bool) -> Observation | None:
    return make_observation(Action.CONTEXT, Kind.PAM, m.group("pam_addr"),
                            user=m.group("pam_user"))  # fmt: skip


def _invalid(m: re.Match[str], preauth: bool) -> Observation | None:
    address, port, user = m.group("inv_addr", "inv_port", "inv_user")
    return make_observation(Action.CONTEXT, Kind.INVALID_USER, address, port, user=user,
                            user_invalid=True)  # fmt: skip


def _received(m: re.Match[str], preauth: bool) -> Observation | None:
    if not preauth:
        return None
    return make_observation(Action.CONTEXT, Kind.DISCONNECT, m.group("rcv_addr"),
                            m.group("rcv_port"))  # fmt: skip


_Reader = Callable[[re.Match[str], bool], Observation | None]


def _closer(prefix: str) -> _Reader:
    names = tuple(prefix + name for name in ("who", "user", "addr", "port"))

    def read(m: re.Match[str], preauth: bool) -> Observation | None:
        who, user, address, port = m.group(*names)
        invalid = who == "invalid user"
        return make_observation(Action.CLOSE, Kind.PREAUTH_CLOSE, address, port, user=user,
                                user_invalid=invalid, preauth=preauth, who=who)  # fmt: skip

    return read


_READERS: dict[str, _Reader] = {
    "pa": _pam_unix,
    "In": _invalid,
    "Re": _received,
    "Di": _closer("dis_"),
    "Co": _closer("con_"),
}
