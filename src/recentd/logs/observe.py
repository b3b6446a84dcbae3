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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from recentd.logs.events import AuthEvent, Outcome
from recentd.logs.parsers import EventParser
from recentd.logs.records import RecordParser
from recentd.observation import Evidence, Observation, Origin
from recentd.sources.lines import LineSpan

#: The evidence each outcome is (rule 2).
EVIDENCE = {
    Outcome.FAILURE: Evidence.AUTH_FAILURE,
    Outcome.SUCCESS: Evidence.AUTH_SUCCESS,
    Outcome.PROBE: Evidence.PROBE,
}


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


def observation_of(event: AuthEvent, origin: Origin, now: Callable[[], int]) -> Observation:
    """The observation an event is (see the module rules)."""
    return Observation(
        evidence=EVIDENCE[event.outcome],
        address=event.address,
        wall_ns=event.time if event.time is not None else now(),
        origin=origin,
        user=event.user or "",
        kind=event.kind.value,
        category=event.category.value,
        detail=event.service,
    )
