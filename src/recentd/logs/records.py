"""One log line in, one :class:`LogRecord` out: the line's format found by itself.

Rules:

- Formats are detected per line, so a file may mix them: journal JSON export
  (``journalctl -o json``), RFC 5424, classic syslog (optionally with an RFC 3164
  ``<pri>``), RFC 3339 / ISO 8601 stamps, and bare messages with no stamp.
- The header forms seen in the wild are accepted: ``host prog[pid]:``, no host
  (busybox), no pid, no colon after the pid, ``[prog]``, a facility token
  (``auth.info``), FreeBSD's ``<10.5>``.  What is not a header stays in the message.
- Nothing here raises on bad input: a line that fits no format is a bare message,
  a JSON line that does not decode is a bare message, a date that does not exist
  gives ``time=None``.  The caller decides what a line means.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from recentd.logs.timestamps import ISO_RE, MONTHS, NS, ClassicYear, fraction_ns, iso_ns

try:  # compiled (recentd/logs/_bulk.c); str.count without it
    from recentd.logs._bulk import count_lines as _count_lines
except ImportError:  # pragma: no cover - a checkout without a C compiler
    _count_lines = None  # type: ignore[assignment]  # (then str.count)

if TYPE_CHECKING:
    from datetime import tzinfo

#: Programs whose lines are sshd's (or dropbear's); ``None`` means "no header".
SSH_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth", "dropbear"})


class LineFormat(enum.Enum):
    CLASSIC = "classic"
    RFC3339 = "rfc3339"
    RFC5424 = "rfc5424"
    JOURNAL = "journal"
    BARE = "bare"


class LogRecord(NamedTuple):
    """A line's parts. ``time`` is epoch ns (``None``: the line has none).

    A named tuple, not a frozen dataclass: one is built per log line, and a tuple
    builds five times faster.
    """

    line: int
    message: str
    time: int | None = None
    host: str | None = None
    program: str | None = None
    pid: int | None = None
    format: LineFormat = LineFormat.BARE


_FAST_CLASSIC = re.compile(
    r"([A-Z][a-z]{2}) ([ \d]?\d) (\d\d):(\d\d):(\d\d) ([^\s\[\]]+) ([^\s\[\]:]+)\[(\d+)\]: (.*)",
    re.DOTALL,
)
#: The twin of :data:`_FAST_CLASSIC` for a batch of lines each ended by ``\n``
#: (matched at a line's start): the lines of sshd's programs only, with the message
#: as the line's strip leaves it (it must keep a character; an empty one is not this
#: form).  The same groups, read by :meth:`RecordParser.record_of`.
SSH_CLASSIC_LINE = re.compile(
    r"(" + "|".join(MONTHS) + r") ([ \d]?\d) (\d\d):(\d\d):(\d\d) ([^\s\[\]]+) "
    r"(" + "|".join(re.escape(name) for name in sorted(SSH_PROGRAMS)) + r")\[(\d+)\]: "
    r"([^\n]*[^ \t\r\n])[ \t\r]*\n"
)
_CLASSIC = re.compile(r"([A-Z][a-z]{2}) +(\d\d?) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (.*)", re.DOTALL)
#: The start of every line :meth:`RecordParser.parse` reads as classic (after its
#: strip and any ``<pri>``), in a batch joined by ``\n``: its month.
_CLASSIC_MONTH = re.compile(
    r"^[ \t\r]*(?:<\d{1,3}>[ \t\r]*)*(" + "|".join(MONTHS)
    + r") +\d\d? \d\d:\d\d:\d\d(?:\.\d+)? [^\n]*?[^ \t\r\n]",
    re.MULTILINE,
)
_MONTH_NAMES = {number: name for name, number in MONTHS.items()}
#: The characters a line read as classic can start with (before its strip and ``<pri>``).
_CLASSIC_FIRST = frozenset(" \t\r<" + "".join(name[0] for name in MONTHS))
_CLASSIC_START = re.compile("\n[" + re.escape("".join(sorted(_CLASSIC_FIRST))) + "]")
_PRI = re.compile(r"<\d{1,3}>")
_RFC5424 = re.compile(r"<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) (\S+) (.*)", re.DOTALL)
_WITH_PID = re.compile(
    r"(?:<\d+\.\d+> )?(?:([^\s\[\]]+) )??(?:[a-z0-9]+\.[a-z]+:? )?"
    r"([A-Za-z/][\w./-]*)\[(\d+)\]:? +(.*)",
    re.DOTALL,
)
_NO_PID = re.compile(
    r"(?:<\d+\.\d+> )?(?:([^\s\[\]]+) )??(?:\[([A-Za-z][\w.-]*)\]:?|([A-Za-z/][\w./-]*):) +(.*)",
    re.DOTALL,
)
_FACILITY = re.compile(r"[a-z0-9]+\.(?:emerg|alert|crit|err|error|warn|warning|notice|info|debug)")


def _header(rest: str, stamped: bool) -> tuple[str | None, str | None, int | None, str]:
    """(host, program, pid, message) of what follows a line's stamp."""
    match = _WITH_PID.fullmatch(rest)
    if match:
        host, program, pid, message = match.groups()
        return host, _basename(program), int(pid[:9]), message.lstrip(" ")
    match = _NO_PID.fullmatch(rest)
    if match:
        host, bracketed, program, message = match.groups()
        name = _basename(bracketed or program)
        if _FACILITY.fullmatch(name):
            return host, None, None, message.lstrip(" ")
        if name in SSH_PROGRAMS or (stamped and host is not None):
            return host, name, None, message.lstrip(" ")
    return None, None, None, rest


def _basename(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def count_lines(text: str, prefix: str = "") -> tuple[int, int]:
    """The lines of a batch (``text.count("\\n")``) and how many start with ``prefix``
    (``text.count("\\n" + prefix) + text.startswith(prefix)``), in one pass where the
    compiled helper can read the text (``logs replay`` reads 1 MB chunks: 0.05 ms each
    against 1.1 ms for the two counts, measured)."""
    if _count_lines is not None and text.isascii() and prefix.isascii():
        found: tuple[int, int] = _count_lines(text, prefix)
        return found
    return text.count("\n"), text.count("\n" + prefix) + text.startswith(prefix)


@dataclass
class RecordParser:
    """Turns raw lines into records; holds the classic-syslog year state.

    Args:
        years: the year policy for classic lines (and the zone of local times).
    """

    years: ClassicYear
    _stamp: str = field(default="", init=False)
    _stamp_time: int | None = field(default=None, init=False)

    @property
    def tz(self) -> tzinfo | None:
        return self.years.tz

    def parse(self, text: str, line: int) -> LogRecord:
        """The record of one line (without its line break), numbered ``line``."""
        text = text.strip(" \t\r")
        if not text:
            return LogRecord(line, "")
        first = text[0]
        if first == "{":
            return self._journal(text, line)
        if first == "<":
            return self._with_pri(text, line)
        if "A" <= first <= "Z":
            return self._classic(text, line)
        if "0" <= first <= "9":
            return self._iso(text, line)
        return self._bare(text, line)

    def skip_lines(self, text: str) -> bool:
        """Prepare to leave the lines of ``text`` (a batch, each line ended by ``\n``)
        unparsed, or some of them: whether that is exact.

        Parsing a line changes this parser's state only through the classic year policy,
        and only by the line's month; a run of classic lines all in one month moves it
        as its first line does.  So: the batch's classic lines all in one month (or
        none): that month's effect is applied here, and any line may be skipped
        (``True``); several months: nothing is changed, parse every line (``False``).
        """
        years = self.years
        if years.year is None:
            return True  # the latest-year rule has no state: each line decides alone
        # Two cheap sufficient answers first (0.1 µs a line against 0.9, measured): every
        # line starts with the month already placed, or no line can start a classic one.
        if years.month:
            lines, current = count_lines(text, _MONTH_NAMES[years.month] + " ")
            if current >= lines:
                return True
        if text[:1] not in _CLASSIC_FIRST and _CLASSIC_START.search(text) is None:
            return True
        months = set(_CLASSIC_MONTH.findall(text))
        if len(months) > 1:
            return False
        if months:
            self.years.note_month(MONTHS[months.pop()])
        return True

    def reset_stamp(self) -> None:
        """Forget the last classic stamp's time (a cache): the next one is converted anew."""
        self._stamp = ""

    def record_of(self, fast: re.Match[str], line: int) -> LogRecord:
        """The record of a classic line read by :data:`SSH_CLASSIC_LINE` (or the
        common form, :data:`_FAST_CLASSIC`), numbered ``line``."""
        stamp = fast.string[fast.start() : fast.end(5)]
        return self.classic_record(stamp, *fast.groups(), line=line)

    def classic_record(  # noqa: PLR0917 (the fields of a classic line, in order)
        self, stamp: str, month: str, day: str, hh: str, mm: str, ss: str, host: str,
        program: str, pid: str, message: str, *, line: int,
    ) -> LogRecord:  # fmt: skip
        """The record of a classic line with a pid, from its fields as written (``stamp``
        is the line's text up to the seconds)."""
        time = self.classic_time(stamp, month, day, hh, mm, ss)
        return LogRecord(line, message, time, host, program, int(pid[:9]), LineFormat.CLASSIC)

    def classic_time(  # noqa: PLR0917 (the fields of a classic stamp, in order)
        self, stamp: str, month: str, day: str, hh: str, mm: str, ss: str
    ) -> int | None:
        """The time of a classic stamp (``stamp`` its text) read by a classic record."""
        if stamp != self._stamp:  # a busy log writes many lines in the same second
            clock = (int(hh), int(mm), int(ss))
            self._stamp_time = self.years.epoch_ns(MONTHS[month], int(day), clock, 0)
            self._stamp = stamp
        return self._stamp_time

    def _classic(self, text: str, line: int) -> LogRecord:
        fast = _FAST_CLASSIC.fullmatch(text)
        if fast and fast.group(1) in MONTHS:
            return self.record_of(fast, line)
        match = _CLASSIC.fullmatch(text)
        if not match or match.group(1) not in MONTHS:
            return self._bare(text, line)
        # The cached stamp is that of the previous classic line: a line in between
        # may have moved the year (see months_unread).
        self._stamp = ""
        month, day, hh, mm, ss, frac, rest = match.groups()
        clock = (int(hh), int(mm), int(ss))
        time = self.years.epoch_ns(MONTHS[month], int(day), clock, fraction_ns(frac))
        host, program, pid, message = _header(rest, stamped=True)
        return LogRecord(line, message, time, host, program, pid, LineFormat.CLASSIC)

    def _iso(self, text: str, line: int) -> LogRecord:
        match = ISO_RE.match(text)
        if not match or text[match.end() : match.end() + 1] != " ":
            return self._bare(text, line)
        time = iso_ns(match, self.tz)
        host, program, pid, message = _header(text[match.end() + 1 :], stamped=True)
        return LogRecord(line, message, time, host, program, pid, LineFormat.RFC3339)

    def _with_pri(self, text: str, line: int) -> LogRecord:
        match = _RFC5424.fullmatch(text)
        if match:
            return self._rfc5424(match, line)
        pri = _PRI.match(text)
        if pri is None:
            return self._bare(text, line)
        return self.parse(text[pri.end() :], line)

    def _rfc5424(self, match: re.Match[str], line: int) -> LogRecord:
        stamp, host, app, procid, _msgid, rest = match.groups()
        iso = ISO_RE.fullmatch(stamp)
        time = iso_ns(iso, self.tz) if iso else None
        message = _after_structured_data(rest)
        return LogRecord(
            line,
            message.removeprefix("\ufeff"),
            time,
            None if host == "-" else host,
            None if app == "-" else _basename(app),
            int(procid[:9]) if procid.isdigit() else None,
            LineFormat.RFC5424,
        )

    def _journal(self, text: str, line: int) -> LogRecord:
        try:
            entry = json.loads(text)
        except (ValueError, RecursionError):
            return self._bare(text, line)
        if not isinstance(entry, dict):
            return self._bare(text, line)
        return self.entry(entry, line)

    def entry(self, entry: Mapping[str, Any], line: int) -> LogRecord:
        """The record of one journal entry, given as its fields (JSON export values, or
        the text the journal source hands over)."""
        return LogRecord(
            line,
            _journal_message(entry.get("MESSAGE")),
            _journal_time(entry.get("__REALTIME_TIMESTAMP")),
            _journal_text(entry.get("_HOSTNAME")),
            _journal_text(entry.get("SYSLOG_IDENTIFIER")) or _journal_text(entry.get("_COMM")),
            _journal_int(entry.get("_PID")) or _journal_int(entry.get("SYSLOG_PID")),
            LineFormat.JOURNAL,
        )

    def _bare(self, text: str, line: int) -> LogRecord:
        host, program, pid, message = _header(text, stamped=False)
        return LogRecord(line, message, None, host, program, pid, LineFormat.BARE)


def _after_structured_data(rest: str) -> str:
    """The MSG part of an RFC 5424 line: skip ``-`` or ``[id k="v" …]…`` elements."""
    if rest.startswith("- ") or rest == "-":
        return rest[2:]
    index, size = 0, len(rest)
    while index < size and rest[index] == "[":
        index = _end_of_element(rest, index)
    return rest[index:].removeprefix(" ")


def _end_of_element(text: str, index: int) -> int:
    """Index after the SD-ELEMENT opening at ``index`` (quotes and ``\\]`` respected)."""
    quoted = False
    index += 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == "]" and not quoted:
            return index + 1
        index += 1
    return index


def _journal_message(value: Any) -> str:
    """MESSAGE is a string, or an array of bytes when it is not clean UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        # "replace": the text is only matched, never written back, and U+FFFD can be
        # part of no address, so a damaged user name cannot move the attribution.
        return bytes(value).decode("utf-8", errors="replace")
    return ""


def _journal_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _journal_int(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _journal_time(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        return int(value) * 1000
    return None


__all__ = ["NS", "SSH_CLASSIC_LINE", "SSH_PROGRAMS", "LineFormat", "LogRecord", "RecordParser"]
