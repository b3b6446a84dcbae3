"""Log lines in, :class:`~recentd.observation.Observation` values out: a parser behind the
:class:`~recentd.sources.lines.LineParser` seam the sources feed.

Rules:

1. One :class:`ObservingParser` per input (a file, the journal, standard input): it owns
   the record parser (the classic-syslog year state) and the event parser (the sshd
   connections), so both see the input's lines in order, across batches.
2. An event becomes an observation by its outcome: a counted failure is
   :attr:`Evidence.AUTH_FAILURE`, a login :attr:`Evidence.AUTH_SUCCESS`, anything else
   the parser attributes is :attr:`Evidence.PROBE`; the event's kind (``password``,
   ``invalid_user``, ``preauth_close`` …) is the observation's ``kind``, its user category
   (``root``, ``invalid``, ``valid``) its ``category``.
3. Time is the line's own; a line that carries none (a bare message) takes ``now()``,
   the moment it was read — the caller's clock, never read here.
4. The origin names the line where the event's evidence stands (the last line of a
   session that counted at its close).

Design (speed; issue 12): a batch is read as one text, not line by line, and Python runs
only where a line can matter:

- Most lines of an auth log are other programs' (cron, systemd, sudo): the sshd parser
  drops them at their header.  One compiled pattern (:data:`_OTHER_PROGRAM_RUN`) steps
  over each run of such lines (classic or RFC 3339, with a pid) at C speed.
- The commonest sshd lines (``pam_unix``, ``Failed``/``Accepted``, ``Invalid user``,
  ``Received disconnect``, ``Disconnected``, ``Connection closed``) are read header
  and message at once by :data:`recentd.logs.fast.COMMON_LINE` and fed to the sessions
  flat (``SshdParser.feed_plain``); other sshd lines have their header read from the
  batch (``SSH_CLASSIC_LINE``) and their message by ``observe``; the rest are parsed
  as the reference does.
- Each event becomes its observation straight from its parts (no ``AuthEvent``).
- The classic year policy is the only state a skipped line could move: a batch whose
  classic lines span months takes the reference path (``RecordParser.skip_lines``).

The twin is :meth:`ObservingParser.feed_lines_reference` (every line through
``records.parse`` and ``events.feed``): it is the definition, kept for parsers other than
sshd's, batches with a ``\n`` inside a line, and batches across a month.
``tests/logs/test_fast_path.py`` checks that both give the same observations and leave
the same state after every batch, on generated logs across New Year, every peer-corpus
line, every pair of messages in one connection, and generated and mutated lines cut
into batches anywhere.  Measured with ``bench/parse.py`` (200k generated classic
lines, loaded 2-core machine): ~1.4x the reference path in the same process; the
floor per event is building its ``Observation`` and ``Origin`` (~2.5 µs, frozen
dataclasses of the seam), ~43% of the generated lines being events.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from recentd.logs.events import AuthEvent, IPAddress, Kind, Outcome, user_category
from recentd.logs.fast import COMMON_LINE, feed_common
from recentd.logs.parsers import EventParser
from recentd.logs.records import SSH_CLASSIC_LINE, SSH_PROGRAMS, RecordParser
from recentd.logs.sshd import EventMaker, SshdParser
from recentd.logs.timestamps import ISO_RE, MONTHS
from recentd.observation import Evidence, Observation, Origin
from recentd.sources.lines import LineSpan

#: The evidence each outcome is (rule 2), by the outcome's value: an enum member hashes in
#: Python code (3.11), its value in C.
EVIDENCE = {
    Outcome.FAILURE.value: Evidence.AUTH_FAILURE,
    Outcome.SUCCESS.value: Evidence.AUTH_SUCCESS,
    Outcome.PROBE.value: Evidence.PROBE,
}

_NOT_SSH = r"(?!(?:" + "|".join(re.escape(name) for name in sorted(SSH_PROGRAMS)) + r")\[)"
#: A run of lines the sshd parser drops at their header, each ending in ``\n``: lines
#: with a pid whose program is not sshd's, classic or RFC 3339.  Twins: for classic,
#: ``records._FAST_CLASSIC`` (which reads such a header so); for RFC 3339, ``ISO_RE``
#: followed by a space and ``records._WITH_PID`` read with a host (a host holds no
#: ``[``, so it cannot be read as the program; the program here has no ``/``, so it is
#: its own basename).  The message must hold a character the record parser's strip
#: keeps, so that the strip cannot change how the header reads.
_OTHER_PROGRAM_RUN = re.compile(
    r"(?:(?:(?:" + "|".join(MONTHS) + r") [ \d]?\d \d\d:\d\d:\d\d [^\s\[\]]+ " + _NOT_SSH
    + r"[^\s\[\]:]+|(?:" + ISO_RE.pattern + r") [^\s\[\]]+ " + _NOT_SSH + r"[A-Za-z][\w.-]*)"
    r"\[\d+\]: [ \t\r]*[^ \t\r\n][^\n]*\n)*"
)


_MONTH_INITIALS = frozenset(name[0] for name in MONTHS)


class ObservingParser:
    """A :class:`~recentd.sources.lines.LineParser` over one event parser.

    Args:
        events: the event parser (``make_parser("sshd")``), fresh for this input.
        records: the record parser, with the input's year policy and zone.
        now: epoch ns for a line without a time of its own.
    """

    def __init__(self, events: EventParser, records: RecordParser,
                 now: Callable[[], int]) -> None:  # fmt: skip
        self.events = events
        self.records = records
        self.now = now
        self._last_origin = Origin("", "")
        self._journal_lines = 0
        #: Lines (and journal entries) read; those that gave evidence; those whose
        #: header was not understood (no program named). Read by metrics.
        self.lines_read = 0
        self.lines_matched = 0
        self.lines_unparsed = 0

    def feed_lines(self, lines: Sequence[str], span: LineSpan) -> list[Observation]:
        """The observations of a batch (see the module's design): the fast path."""
        events = self.events
        if not lines or not isinstance(events, SshdParser):
            return self.feed_lines_reference(lines, span)
        text = "\n".join(lines) + "\n"
        if text.count("\n") != len(lines) or not self.records.skip_lines(text):
            return self.feed_lines_reference(lines, span)
        found: list[Observation] = []
        records, feed, make = self.records, events.feed_as, self._maker(span)
        common_line = COMMON_LINE.match
        parse, record_of = records.parse, records.record_of
        skip_run, ssh_line = _OTHER_PROGRAM_RUN.match, SSH_CLASSIC_LINE.match
        find, count = text.find, text.count
        first, position, index, end = span.first, 0, 0, len(text)
        matched = unparsed = 0
        while position < end:
            run = skip_run(text, position)  # it matches always (maybe nothing)
            start = run.end() if run else position
            if start == end:
                break
            index += count("\n", position, start)
            # A classic line starts with its month: only then try the classic patterns.
            classic = text[start] in _MONTH_INITIALS
            common = common_line(text, start) if classic else None
            read = feed_common(common, records, events, first + index, make) if common else None
            if common and read is not None:  # the commonest sshd lines: all at once
                made = read
                position = common.end()
            elif classic and (sshd := ssh_line(text, start)):  # an sshd line's header
                made = feed(record_of(sshd, first + index), make)
                position = sshd.end()
            else:
                line, made = lines[index], []
                if line:
                    record = parse(line, first + index)
                    unparsed += record.program is None
                    made = feed(record, make)
                position = find("\n", start) + 1
            if made:
                found += made
                matched += 1
            index += 1
        self._last_origin = span.origin(len(lines) - 1)
        self.lines_read += len(lines) - lines.count("")
        self.lines_matched += matched
        self.lines_unparsed += unparsed
        return found

    def feed_lines_reference(self, lines: Sequence[str], span: LineSpan) -> list[Observation]:
        """The observations of a batch, every line parsed in turn: the definition the
        fast path (:meth:`feed_lines`) keeps, and the path of the batches it leaves."""
        found: list[Observation] = []
        parse, feed = self.records.parse, self.events.feed
        first = span.first
        read = matched = unparsed = 0
        for index, text in enumerate(lines):
            if not text:
                continue
            read += 1
            record = parse(text, first + index)
            if record.program is None:
                unparsed += 1
            events = feed(record)
            if events:
                matched += 1
                found += self._observe(events, span.origin(index))
        if lines:
            self._last_origin = span.origin(len(lines) - 1)
        self.lines_read += read
        self.lines_matched += matched
        self.lines_unparsed += unparsed
        return found

    def feed_entry(self, fields: Mapping[str, str], origin: Origin) -> list[Observation]:
        self._journal_lines += 1
        self._last_origin = origin
        self.lines_read += 1
        record = self.records.entry(fields, self._journal_lines)
        if record.program is None:
            self.lines_unparsed += 1
        events = self.events.feed(record)
        if events:
            self.lines_matched += 1
        return self._observe(events, origin)

    def finish(self) -> list[Observation]:
        return self._observe(self.events.close(), self._last_origin)

    def _observe(self, events: list[AuthEvent], origin: Origin) -> list[Observation]:
        return [observation_of(event, origin, self.now) for event in events]

    def _maker(self, span: LineSpan) -> EventMaker[Observation]:
        """Builds a batch's observations straight from the parts of its events."""
        origin, first, now = span.origin, span.first, self.now

        def make(  # noqa: PLR0917 (an EventMaker: AuthEvent's fields, in order)
            outcome: Outcome, address: IPAddress, time: int | None, kind: Kind, line: int,
            user: str | None, user_invalid: bool, service: str, pid: int | None,
            host: str | None,
        ) -> Observation:  # fmt: skip
            return _observation(outcome, address, time, kind, user, user_invalid, service,
                                origin(line - first), now)  # fmt: skip

        return make


def observation_of(event: AuthEvent, origin: Origin, now: Callable[[], int]) -> Observation:
    """The observation an event is (see the module rules)."""
    return _observation(event.outcome, event.address, event.time, event.kind, event.user,
                        event.user_invalid, event.service, origin, now)  # fmt: skip


def _observation(  # noqa: PLR0917 (the parts of an event, in AuthEvent's order)
    outcome: Outcome, address: IPAddress, time: int | None, kind: Kind, user: str | None,
    user_invalid: bool, service: str, origin: Origin, now: Callable[[], int],
) -> Observation:  # fmt: skip
    # ``_value_``, not ``.value``: the same text without a property call (3.11).
    return Observation(
        EVIDENCE[outcome._value_],
        address,
        time if time is not None else now(),
        origin,
        user or "",
        kind._value_,
        user_category(user, user_invalid)._value_,
        service,
    )
