"""The patterns of the bulk replay path: a chunk of classic lines read at C speed, Python
only on the lines that can move something (:meth:`recentd.logs.replay.LogReplay.feed_text`).

Rules:

- A chunk is read as one text that starts with ``\n`` and whose every line ends with
  ``\n``. :data:`BULK_LINE` is searched from each ``\n``: it matches, at a line's start,
  a classic line with a pid written by one of sshd's programs whose message is one of
  the six forms an attacked server writes most (the forms of :mod:`recentd.logs.fast`,
  narrowed as said below). A match names its form by ``lastindex`` (:data:`FORMS`).
- Every line :data:`BULK_LINE` does not match lies in a *gap* between two matches. A
  gap line can make an event, or move a connection, only if its message reads as one of
  ``sshd_messages``' patterns: its first word (after ``normalise``) is a key of
  ``MESSAGES`` or ``Failed``/``Accepted`` — so the line holds that word — or it is a
  journal JSON line (``{``), whose ``MESSAGE`` may spell words with escapes.
  :data:`DANGER` finds any such word (the one key whose every pattern goes on with a
  literal, ``pam_unix(sshd:auth):``, is looked for with it). A gap without one moves
  nothing but the classic year (the caller's ``skip_lines``) and the last time seen;
  each line with one is parsed the ordinary way (``records.parse`` and the parser).
- Narrowing, so that a match reads each field exactly as ``observe`` does and C does not
  backtrack over user text: a user name is ``\\S*`` (a name with a blank is left to the
  ordinary path), and ``Failed``/``Accepted`` lines have no trailer after ``sshN`` (so
  the message holds exactly one `` from ``: no second reading, ``_auth``'s alternatives
  are empty). Where a field sits before the address, the address is still anchored where
  sshd writes it (the user is ``\\S*`` up to `` from `` or to the address's own blank).
  ``Received disconnect`` is matched only before authentication (``[preauth]``; after it,
  ``observe`` gives nothing and the line goes to a gap, where it moves nothing).
- ``tests/logs/test_bulk.py`` checks, line for line, that the bulk path and the
  line-by-line path give the same bans, records and counts on generated logs, the peers'
  corpus and mutated lines.
- The compiled twin of the loop (``recentd/logs/_bulk.c``) reads the same forms without
  these patterns; it declines what it cannot read exactly and hands each gap line it
  cannot show harmless to :data:`GAP_LINE` and :data:`DANGER` (``LogReplay._gap``).
"""

from __future__ import annotations

import re

from recentd.logs.records import SSH_PROGRAMS
from recentd.logs.sshd_messages import MESSAGES
from recentd.logs.timestamps import MONTHS

_MONTH = "(?:" + "|".join(MONTHS) + ")"
_PROGRAM = "(?:" + "|".join(re.escape(name) for name in sorted(SSH_PROGRAMS)) + ")"
_PRE = r"( \[preauth\])?"
_WHO = r"(?:(invalid user|authenticating user|user) (\S*) )?"

#: The forms, each one group that ends the match's groups (so ``lastindex`` names it);
#: the twins are the first pattern ``sshd_messages`` tries for each first word.
_FORM_TEXT = {
    # "pam_unix(sshd:auth):" — lazy user, so that " [preauth]" and blanks stay outside
    "pam": r"(pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* "
           r"tty=\S* ruser=\S* rhost=(\S+)(?:  user=(.*?))?" + _PRE + ")",
    # _AUTH_GREEDY, without the trailer
    "auth": r"((Failed|Accepted) (\S+) for (invalid user )?(\S*) from (\S+) port (\d+) ssh[12]?"
            + _PRE + ")",
    # "Invalid" (the first pattern)
    "invalid": r"(Invalid user (\S*) from (\S+) port (\d+)" + _PRE + ")",
    # "Received" (the first pattern), before authentication only
    "received": r"(Received disconnect from (\S+) port (\d+):\d+: .*? \[preauth\])",
    # "Disconnected" and "Connection" (the first pattern of each)
    "disconnected": r"(Disconnected from " + _WHO + r"(\S+) port (\d+)" + _PRE + ")",
    "connection": r"(Connection (?:closed|reset) by " + _WHO + r"(\S+) port (\d+)" + _PRE + ")",
}  # fmt: skip

#: Header groups: 1 stamp (``Mar 14 10:22:01``), 2 host, 3 program, 4 pid; then the forms.
#: The header is the twin of ``records.SSH_CLASSIC_LINE``'s (``_FAST_CLASSIC``'s reading).
BULK_LINE = re.compile(
    r"\n(" + _MONTH + r" [ \d]?\d \d\d:\d\d:\d\d) ([^\s\[\]]+) (" + _PROGRAM + r")\[(\d+)\]: "
    r"(?:" + "|".join(_FORM_TEXT.values()) + r")[ \t\r]*(?=\n)"
)


def _form_groups() -> dict[str, int]:
    """The group number of each form (its ``lastindex``)."""
    found, number = {}, 4
    for name, text in _FORM_TEXT.items():
        found[name] = number + 1
        number += re.compile(text).groups
    return found


#: Form name -> the ``lastindex`` of a match of that form; its fields follow in order.
FORMS = _form_groups()

_NOT_SSH = r"(?!" + _PROGRAM + r"[\[:])"
#: A line start (its ``\n``) whose line is not one of those that move nothing whatever
#: their message says (see the module rules): a classic line with a pid whose program is
#: not sshd's (the twin of ``records._FAST_CLASSIC``'s reading, as
#: ``observe._OTHER_PROGRAM_RUN``); a classic line without a pid whose header names a
#: program (``_CLASSIC`` then ``_header``'s ``_NO_PID``: a host that is a host name and
#: a program without a dot, so neither a ``<n.n>`` prefix nor a facility); an sshd line
#: whose first word no pattern of ``sshd_messages`` reads (PAM's own lines).
GAP_LINE = re.compile(
    r"\n(?!" + _MONTH + r" [ \d]?\d \d\d:\d\d:\d\d (?:"
    r"[^\s\[\]]+ " + _NOT_SSH + r"[^\s\[\]:]+\[\d+\]: [ \t\r]*[^ \t\r\n]"
    r"|[\w.-]+ " + _NOT_SSH + r"[A-Za-z][\w-]*: +[^ \t\r\n]"
    r"|[^\s\[\]]+ " + _PROGRAM + r"\[\d+\]: (?:pam_unix\(sshd:auth\): (?!authentication failure)"
    r"|PAM |pam_unix\(sshd:session\): )))"
)

_KEYS = [key for key in MESSAGES if key != "pam_unix(sshd:auth):"]
#: What a gap line must hold to be read by ``observe`` (see the module rules).
DANGER = re.compile(
    "|".join(re.escape(word) for word in
             ["Failed", "Accepted", "pam_unix(sshd:auth): authentication failure", *_KEYS, "{"])
)  # fmt: skip

__all__ = ["BULK_LINE", "DANGER", "FORMS", "GAP_LINE"]
