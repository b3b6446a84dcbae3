"""The config's ``[[watch]]`` tables as sources the daemon opens (``recentd run``).

Rules:

1. One source per distinct ``source`` of the config: a file path is a
   :class:`~recentd.sources.files.FileSource` (only new lines at the first start; a
   checkpoint resumes exactly), ``"journal"`` the journal source, ``"-"`` standard input.
   Watches naming the same source share it, with their routes together; they must
   name the same parser (one input, one reading of it).
2. Each source reads through its own :class:`~recentd.logs.observe.ObservingParser` over
   a fresh event parser (``make_parser(watch.parser)``), with a
   :class:`~recentd.logs.ClassicYear` policy that knows no year: a classic syslog line
   gets the most recent year that does not put it in the future, judged against the
   wall clock read as each batch arrives (a daemon that runs over New Year keeps
   dating lines right). A line without a time counts at the moment it is read.
3. The checkpoint key names the source (``file:/var/log/auth.log``, ``journal``,
   ``stdin``): it stays the same across runs whatever the lists are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from recentd.config import JOURNAL, STDIN, Watch
from recentd.errors import ConfigError
from recentd.logs import ClassicYear, RecordParser
from recentd.logs.observe import ObservingParser
from recentd.logs.parsers import EventParser, make_parser
from recentd.observation import Observation, Origin, Route
from recentd.sources import Checkpoint, ObservationSource
from recentd.sources.lines import LineSpan

#: The wall clock, epoch ns (the caller's: :func:`recentd.clock.wall_now_ns`).
WallClock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class WatchedSource:
    """One source of the config and everything its watches do with it."""

    source: str  # "journal", "-" or a file path
    parser: str
    routes: tuple[Route, ...]
    lists: tuple[str, ...]  # the lists its routes write, in order, once each

    @property
    def key(self) -> str:
        """Names the source's checkpoint (rule 3)."""
        if self.source == JOURNAL:
            return "journal"
        if self.source == STDIN:
            return "stdin"
        return f"file:{self.source}"

    def open(self, checkpoint: Checkpoint | None, now: WallClock) -> ObservationSource:
        """The source, resuming from ``checkpoint`` (rule 1), reading with a fresh parser."""
        parser = FreshYearParser(make_parser(self.parser), now)
        if self.source == JOURNAL:
            from recentd.sources.journal import journal_source  # noqa: PLC0415 - only if used

            return journal_source(parser, checkpoint)
        if self.source == STDIN:
            from recentd.sources.stdin import StdinSource  # noqa: PLC0415

            return StdinSource.from_stdin(parser, checkpoint)
        from recentd.sources.files import FileSource  # noqa: PLC0415

        return FileSource(Path(self.source), parser, checkpoint)


def watched_sources(watches: Sequence[Watch]) -> list[WatchedSource]:
    """The config's sources, in the order they first appear (rule 1).

    Raises:
        ConfigError: two watches of one source name different parsers.
    """
    grouped: dict[str, list[Watch]] = {}
    for watch in watches:
        grouped.setdefault(watch.source, []).append(watch)
    return [_merge(source, group) for source, group in grouped.items()]


def _merge(source: str, group: list[Watch]) -> WatchedSource:
    parsers = {watch.parser for watch in group}
    if len(parsers) > 1:
        raise ConfigError(f"one source, one parser: {source} is read by "
                          f"{' and '.join(sorted(parsers))}", key="watch.parser",
                          source=group[-1].origin)  # fmt: skip
    routes = tuple(route for watch in group for route in watch.routes())
    lists = tuple(dict.fromkeys(route.table for route in routes))
    return WatchedSource(source, group[0].parser, routes, lists)


class FreshYearParser(ObservingParser):
    """An :class:`ObservingParser` whose classic-syslog year policy is judged against
    the wall clock of each batch (rule 2)."""

    def __init__(self, events: EventParser, now: WallClock) -> None:
        super().__init__(events, RecordParser(ClassicYear(now=now())), now)

    def feed_lines(self, lines: Sequence[str], span: LineSpan) -> list[Observation]:
        self.records.years.now = self.now()
        return super().feed_lines(lines, span)

    def feed_entry(self, fields: Mapping[str, str], origin: Origin) -> list[Observation]:
        self.records.years.now = self.now()
        return super().feed_entry(fields, origin)
