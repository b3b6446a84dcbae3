"""Old logs through the whole pipeline in virtual time: who would have been banned, when,
until when (``recentd logs replay``; sans-I/O: lines in, ban records out).

Rules:

1. The pipeline is the daemon's: each line goes through the record parser and the
   event parser of the config's ``[[watch]]`` entries (their ``parser`` and lists; their
   ``source`` is for ``recentd run``); each event becomes an
   :class:`~recentd.observation.Observation` (:func:`recentd.logs.observe.observation_of`)
   and is written into the tables by :func:`~recentd.observation.apply_observation`, at
   the tick of the line's own time; then the planner
   (:meth:`~recentd.live.policy.BanPlanner.drop_until`, the same answer the daemon's
   :meth:`~recentd.live.policy.BanPlanner.plan_address` gives) says whether, and until
   when, the rule drops the address. The stamp is added before the rule is checked,
   and the window is inclusive, as in the kernel.
2. The rules that ban are every ``-m recent --rcheck|--update --seconds S -j DROP``
   (``--rsource``, no ``--rttl``, no ``!``) in any chain, per family: an IPv4 event meets
   the ``iptables`` rules of its list and an IPv6 event the ``ip6tables`` rules. A
   list with a mask bans the masked network (the entry the event wrote), shown as a
   CIDR.
3. Virtual time: the tick of a line is ``floor(wall_ns * hz / 1e9)`` — the kernel's
   jiffies with their origin at the epoch — so every window is computed in ticks as
   the kernel computes it. A line without a time of its own (a bare message) takes the
   last time seen; before any, its events are counted and not applied.
4. One :class:`BanRecord` per ban the daemon would push for an address not banned at
   that moment; an event that extends a ban in force (the daemon re-times the kernel
   element) moves its ``until``; a success routed as ``-ADDR`` lifts it (``until`` is
   then the lifting line's time). Records come out in time order.

Design (speed; issue 12): :meth:`LogReplay.feed_text` takes a chunk of lines as one text.
Where the replay has one parser, sshd's, a chunk whose classic lines are all of one month
(``RecordParser.skip_lines``: the year is then the only state a line left unparsed could
move) goes the *bulk* way (:mod:`recentd.logs.bulk`): one compiled pattern finds, at C
speed, the common sshd lines and reads header and message at once; Python runs only on
them and on the rare gap lines that may move something (parsed the usual way); the last
time seen is recovered from the lines left unparsed only where a line without a time
needs it. Each found line moves its connection with the same steps as
``SshdParser.feed_plain``, and a failure into plain ``failure = LIST`` routes is written
and checked inline — the twins of ``apply_observation``, :meth:`LogReplay._observe` and
``BanPlanner.drop_until`` (``RecentTable.stamps`` instead of an entry view). Everything
else (other parsers, routes that pick a kind or a category, successes, probes routed to a
list, a report that wants every observation) goes through the line-by-line definition,
:meth:`LogReplay.feed_lines`.

The bulk loop runs compiled where it can (``recentd/logs/_bulk.c``, built by the install;
:attr:`LogReplay.compiled`): tables without the unmasked-write quirk. It
is the same loop (its comment gives its rules: the lines it reads itself, the harmless
lines it skips, everything else handed to this class's own methods), because Python's
regex and loop cost ~5 µs a line where sshguard's flex parser takes ~2 (``bench/logs.py``:
~1.5 µs a line compiled, in process). Without the extension the Python bulk loop runs.
``tests/logs/test_bulk.py`` checks that all three give the same ban records, counts and
state; ``bench/logs.py`` prints each path's cost per line.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from recentd.backends import BanClass
from recentd.live.policy import BanPlanner, OffloadCase
from recentd.logs.address import parse_address
from recentd.logs.bulk import BULK_LINE, DANGER, FORMS, GAP_LINE
from recentd.logs.events import AuthEvent, IPAddress, Kind, Outcome
from recentd.logs.observe import EVIDENCE, observation_of
from recentd.logs.parsers import EventParser, make_parser
from recentd.logs.records import RecordParser
from recentd.logs.sshd import Session, SshdParser
from recentd.logs.sshd_messages import MAX_MESSAGE
from recentd.logs.timestamps import NS
from recentd.observation import (
    Action,
    Evidence,
    Observation,
    Origin,
    Route,
    apply_observation,
)
from recentd.recent import ALL_ONES_MASK, Command, ModuleParams, RecentMatch, RecentTables, Side
from recentd.recent.table import RecentTable
from recentd.recent.ticks import DEFAULT_HZ, ns_to_ticks, ticks_to_ns
from recentd.rules import Engine, Ruleset
from recentd.rules.render import save_rule

try:  # the compiled twin of the bulk loop (built by the install; Python without it)
    from recentd.logs import _bulk as _compiled
except ImportError:  # pragma: no cover - a checkout without a C compiler
    _compiled = None  # type: ignore[assignment]  # (then the Python bulk path runs)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from recentd.config import Watch  # a type only: the config module reads files

_NS = 1_000_000_000
#: A chunk whose classic lines span months and has fewer lines than this is read line
#: by line; a bigger one is cut in two (the bulk path needs one month per chunk).
_MIN_SPLIT = 8
#: Seconds of a classic stamp, as ``ClassicYear.epoch_ns`` adds them (60: a leap second).
_SECONDS = {f"{n:02d}": min(n, 59) * NS for n in range(61)}
#: A minute ``_stamp_time`` has not converted yet (compared by identity).
_UNSEEN_MINUTE = -1
_STAMP = re.compile(r"(\S+) +(\S+) (\d\d):(\d\d):(\d\d)")
_CACHE_LIMIT = 65_536
#: The address cache's answer for a text it has not seen (compared by identity).
_UNSEEN: tuple[IPAddress, int, int] = (ipaddress.IPv4Address(0), 0, 0)
_PAM, _AUTH, _INVALID, _RECEIVED, _DISCONNECTED, _CONNECTION = (
    FORMS[name] for name in ("pam", "auth", "invalid", "received", "disconnected", "connection")
)
_FAILURE, _SUCCESS = Outcome.FAILURE, Outcome.SUCCESS
_BANNING = (Command.CHECK, Command.UPDATE)


class _CompiledContext(NamedTuple):
    """What ``recentd.logs._bulk.scan`` reads, in the order its C reads it (one per chunk:
    the replay's state and the methods it calls back)."""

    sessions: dict[Any, Session]
    session_limit: int
    session_class: type[Session]
    inline: bool
    tables: list[tuple[Any, ...]]  # (table, *RecentTable.representation())
    targets4: list[tuple[int, int, int, BanRule, str, int]]  # (table index, hitcount, …)
    targets6: list[tuple[int, int, int, BanRule, str, int]]
    take_probe: bool
    hz: int
    held_bans: dict[tuple[str, int], BanRecord]
    addresses: dict[str, tuple[IPAddress, int, int] | None]
    kinds: dict[str, Kind]
    by_minute: bool
    minutes: dict[str, int | None]
    reader: _Reader
    failures: Counter[str]
    probes: Counter[str]
    pam: Kind
    invalid_user: Kind
    disconnect: Kind
    preauth_close: Kind
    failure: Outcome
    success: Outcome
    probe: Outcome
    stamp_time: Callable[..., Any]
    classic_stamp_time: Callable[..., Any]
    address: Callable[..., Any]
    kind: Callable[..., Any]
    gap_line: Callable[..., Any]
    slow_line: Callable[..., Any]
    event: Callable[..., Any]
    ban: Callable[..., Any]
    last_ns: int | None
    ipv4: type[ipaddress.IPv4Address]
    ipv6: type[ipaddress.IPv6Address]


@dataclass(frozen=True, slots=True)
class BanRule:
    """A rule that drops an address because of a list, and the planner that answers for it."""

    family: int
    text: str  # as ``iptables -S`` prints it
    planner: BanPlanner
    prefix: int | None  # the list's mask as a prefix length; None when it is the full one
    key_mask: int  # what of an address names its ban: the masked network, or all of it


def ban_rules(ruleset: Ruleset, tables: RecentTables, hz: int) -> list[BanRule]:
    """Every rule of ``ruleset`` that bans by a list (rule 2), in rule-set order."""
    found = []
    for table, chain, rule in ruleset.rules():
        if rule.target.name != "DROP" or rule.target.goto:
            continue
        for match in rule.matches:
            spec = match.spec
            if not isinstance(spec, RecentMatch) or not _bans(spec):
                continue
            case = OffloadCase(spec.name, spec.seconds, max(spec.hitcount, 1), BanClass(),
                               (table.family,))  # fmt: skip
            planner = BanPlanner(case, tables, hz)
            text = save_rule(chain.name, rule, table.family)
            prefix = _prefix(spec.mask, table.family)
            found.append(BanRule(table.family, text, planner, prefix,
                                 _key_mask(table.family, prefix)))  # fmt: skip
    return found


def _bans(match: RecentMatch) -> bool:
    return (match.command in _BANNING and match.seconds > 0 and match.side is Side.SOURCE
            and not (match.rttl or match.invert))  # fmt: skip


def _key_mask(family: int, prefix: int | None) -> int:
    width = 32 if family == 4 else 128
    ones = width if prefix is None else prefix
    return ((1 << ones) - 1) << (width - ones)


def _prefix(mask: int, family: int) -> int | None:
    if mask == ALL_ONES_MASK:
        return None
    bits = mask >> 96 if family == 4 else mask
    width = 32 if family == 4 else 128
    ones = bin(bits).count("1")
    return ones if bits == ((1 << ones) - 1) << (width - ones) else None


@dataclass(slots=True)
class BanRecord:
    """One ban the daemon would push (see the module rules)."""

    addr: str
    ts_ns: int
    line: int
    until_ns: int
    list: str
    rule: str
    file: str | None = None
    lifted_line: int | None = None
    extended: int = 0

    def as_json(self) -> dict[str, object]:
        """The ``--bans`` record: seconds as numbers, and the exact nanoseconds beside them."""
        record: dict[str, object] = {
            "addr": self.addr, "ts": self.ts_ns / _NS, "line": self.line,
            "until": self.until_ns / _NS, "list": self.list, "rule": self.rule,
            "ts_ns": self.ts_ns, "until_ns": self.until_ns, "extended": self.extended,
        }  # fmt: skip
        if self.lifted_line is not None:
            record["lifted_line"] = self.lifted_line
        if self.file is not None:
            record["file"] = self.file
        return record


@dataclass
class _Reader:
    """The watches that share one parser: the parser, and their routes together."""

    events: EventParser
    routes: tuple[Route, ...]
    #: Whether some route takes a failure, a success, a probe (the others are only counted).
    failure: bool
    success: bool
    probe: bool


@dataclass
class ReplayStats:
    lines: int = 0
    #: Events by kind, per outcome (three counters: an Enum's hash is Python code, a
    #: StrEnum's is str's).
    failures: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    probes: Counter[str] = field(default_factory=Counter)
    untimed: int = 0
    #: Lines the bulk path read at once (the others went line by line): how the replay
    #: went, not what it found.
    bulk_lines: int = 0

    @property
    def events(self) -> Counter[tuple[str, str]]:
        """Events by (outcome, kind): ``("failure", "password")``."""
        found: Counter[tuple[str, str]] = Counter()
        for outcome, counted in ((Outcome.FAILURE, self.failures),
                                 (Outcome.SUCCESS, self.successes), (Outcome.PROBE, self.probes)):
            found.update({(outcome.value, str(kind)): n for kind, n in counted.items()})
        return found


class LogReplay:
    """The pipeline of rule 1 over lines given in order (one instance per replay).

    Args:
        ruleset: the rules (they create the lists).
        watches: the config's ``[[watch]]`` entries (parser and lists).
        records: the record parser, with the year policy and zone of the logs.
        params: the tables' module parameters (``ip_list_tot`` …).
        hz: ticks per second of the tables' stamps.
    """

    def __init__(self, ruleset: Ruleset, watches: Sequence[Watch], records: RecordParser,
                 params: ModuleParams | None = None, hz: int = DEFAULT_HZ) -> None:  # fmt: skip
        self.hz = hz
        self.tables = RecentTables(params, hz=hz)
        self.engine = Engine(ruleset, self.tables, hz=hz)  # acquires the rules' tables
        self.rules = ban_rules(ruleset, self.tables, hz)
        self.records = records
        self.stats = ReplayStats()
        self._readers = _readers(watches)
        self._by_list: dict[tuple[str, int], list[BanRule]] = {}
        for rule in self.rules:
            self._by_list.setdefault((rule.planner.case.name, rule.family), []).append(rule)
        #: (rule, address under the list's mask) → the latest ban it made
        self._open: dict[tuple[str, int], BanRecord] = {}
        self._bans: list[BanRecord] = []
        self._last_ns: int | None = None
        self._file: str | None = None
        #: The origin of the observations (their line is the ban record's, not its text).
        self._origin = Origin("file", "")
        #: Called with each observation applied (a report's timeline; None: nobody asks).
        self.on_observation: Callable[[Observation], None] | None = None
        #: The bulk path's caches: address text -> (address, int, family) or None (no
        #: address), a method's kind, a pid's number.
        self._addresses: dict[str, tuple[IPAddress, int, int] | None] = {}
        self._kinds: dict[str, Kind] = {}
        self._pids: dict[str, int] = {}
        #: Whether the bulk path may run compiled (``recentd.logs._bulk``); the tests turn
        #: it off to hold the Python bulk path to the same answers.
        self.compiled = True

    def start_file(self, name: str | None) -> None:
        """The next lines are ``name``'s (``None``: one input, records name no file)."""
        self._file = name
        self._origin = Origin("file", name or "")

    def feed(self, text: str, line: int) -> None:
        """One line (without its line break), numbered ``line`` in its file."""
        self.feed_lines(((line, text),))

    def feed_lines(self, numbered: Iterable[tuple[int, str]]) -> None:
        """Lines in order, each with its number in its file (a file's lines in one call
        cost less than one call per line)."""
        parse, readers, apply = self.records.parse, self._readers, self._apply
        count = 0
        for line, text in numbered:
            count += 1
            record = parse(text, line)
            if record.time is not None:
                self._last_ns = record.time
            for reader in readers:
                events = reader.events.feed(record)
                if events:
                    apply(events, reader)
        self.stats.lines += count

    def feed_text(self, text: str, first: int) -> None:
        """Lines in order as one text, every line ended by ``\\n`` (the first numbered
        ``first`` in its file): :meth:`feed_lines` made fast (see the module's design).

        The bulk path applies when the replay has one parser, sshd's, and nobody asks for
        every observation (:attr:`on_observation`); otherwise the lines go one by one."""
        if not text:
            return
        if not text.endswith("\n"):
            text += "\n"
        if self.on_observation is not None or not self._bulk_ready():
            self.feed_lines(_numbered(text, first))
            return
        self._feed_chunk(text, first)

    def _bulk_ready(self) -> bool:
        readers = self._readers
        return len(readers) == 1 and isinstance(readers[0].events, SshdParser)

    def _feed_chunk(self, text: str, first: int) -> None:
        """A chunk with one month of classic lines goes in bulk; one across months is cut
        in two (the year policy is the only state a line left unparsed could move)."""
        self.records.reset_stamp()
        if self.records.skip_lines(text):
            self._bulk_chunk("\n" + text, first)
            return
        lines = text.count("\n")
        middle = text.find("\n", len(text) // 2) + 1
        if lines < _MIN_SPLIT or middle in (0, len(text)):
            self.feed_lines(_numbered(text, first))
            return
        self._feed_chunk(text[:middle], first)
        self._feed_chunk(text[middle:], first + text.count("\n", 0, middle))

    def _bulk_chunk(self, text: str, first: int) -> None:
        """The bulk path over ``text`` (it starts with ``\\n``): compiled where it can be
        (:attr:`compiled`, the extension built, tables without the unmasked-write
        quirk), in Python otherwise."""
        context = self._compiled_context()
        if context is None:
            self._python_chunk(text, first)
            return
        assert _compiled is not None  # (no context without it)
        known, self._last_ns, matched, lines = _compiled.scan(text, first, context)
        self._backfill(text, known, len(text) - 1)
        self.stats.lines += lines
        self.stats.bulk_lines += matched
        self.records.reset_stamp()

    def _compiled_context(self) -> _CompiledContext | None:
        """What :func:`recentd.logs._bulk.scan` works with, or ``None`` where it cannot."""
        if not self.compiled or _compiled is None:
            return None
        reader = self._readers[0]
        parser = reader.events
        assert isinstance(parser, SshdParser)
        inline, written, targets = self._bulk_targets(reader)
        if any(table.quirks.unmasked_proc_writes for table in written):
            return None
        index = {id(table): n for n, table in enumerate(written)}
        aimed = {family: [(index[id(table)], hitcount, window, rule, rule.text, rule.key_mask)
                          for table, hitcount, window, rule in targets.get(family, ())]
                 for family in (4, 6)}  # fmt: skip
        return _CompiledContext(
            parser.sessions, parser.max_sessions, Session, inline,
            [(table, *table.representation()) for table in written], aimed[4], aimed[6],
            reader.probe, self.hz, self._open, self._addresses, self._kinds,
            self.records.years.year is not None, {}, reader, self.stats.failures,
            self.stats.probes, Kind.PAM, Kind.INVALID_USER, Kind.DISCONNECT,
            Kind.PREAUTH_CLOSE, Outcome.FAILURE, Outcome.SUCCESS, Outcome.PROBE,
            self._stamp_time, self._classic_stamp_time, self._address, self._kind,
            self._gap_line, self._slow_line, self._event, self._ban, self._last_ns,
            ipaddress.IPv4Address, ipaddress.IPv6Address,
        )  # fmt: skip

    def _classic_stamp_time(self, stamp: str) -> int | None:
        """A classic stamp's time when each stamp decides its year (the compiled path)."""
        return self.records.classic_time(stamp, *_STAMP.fullmatch(stamp).groups())  # type: ignore[union-attr]

    def _gap_line(self, text: str, start: int, end: int, line: int, known: int,  # noqa: PLR0917 (called from C, positionally)
                  last_ns: int | None) -> tuple[int, int | None]:  # fmt: skip
        """:meth:`_gap` from the last time seen ``last_ns``, for both bulk loops (the
        compiled one calls it a line at a time): (``known``, the last time seen after)."""
        self._last_ns = last_ns
        known = self._gap(text, start, end, line, known)
        return known, self._last_ns

    def _slow_line(self, text: str, known: int, start: int, end: int, line: int,  # noqa: PLR0917 (called from C, positionally)
                   last_ns: int | None) -> int | None:  # fmt: skip
        """A matched line taken the usual way, from the last time seen ``last_ns``, for both
        bulk loops: the last time seen after it."""
        self._last_ns = last_ns
        self._backfill(text, known, start)
        self._line(text[start + 1 : end].rstrip("\r"), line)
        return self._last_ns

    def _python_chunk(self, text: str, first: int) -> None:  # noqa: PLR0912, PLR0915 (one loop, inlined: see the module's design)
        """The bulk path over ``text`` in Python (it starts with ``\\n``; see :mod:`.bulk`).

        Each matched line moves its connection as ``SshdParser.feed_plain`` moves it (the
        twin: the same steps, in the same order, on the same :class:`Session`), and its
        events are counted and applied as :meth:`_apply` does: a failure into plain
        ``failure = LIST`` routes inline (the twin of ``apply_observation``,
        :meth:`_observe` and :meth:`_plan`: :meth:`_bulk_targets`), anything else through
        :meth:`_apply` itself."""
        reader = self._readers[0]
        parser = reader.events
        assert isinstance(parser, SshdParser)
        sessions, limit = parser.sessions, parser.max_sessions
        stats = self.stats
        failures, probes = stats.failures, stats.probes
        inline, written, targets = self._bulk_targets(reader)
        take_probe, hz, ban, held_bans = reader.probe, self.hz, self._ban, self._open
        addresses, kinds, pids = self._addresses, self._kinds, self._pids
        by_minute = self.records.years.year is not None  # else each stamp decides its year
        minutes: dict[str, int | None] = {}
        count, gap_line = text.count, GAP_LINE.search
        last_stamp, time, last_ns = "", None, self._last_ns
        tick_time, tick = -1, 0
        pos, line, known, matched = 0, first, 0, 0
        pam, invalid_user, disconnect, preauth_close = (
            Kind.PAM, Kind.INVALID_USER, Kind.DISCONNECT, Kind.PREAUTH_CLOSE)  # fmt: skip
        for m in BULK_LINE.finditer(text):
            start, end = m.span()
            if start != pos:  # a gap: only the lines that may move something are parsed
                if gap_line(text, pos, start) is not None:
                    known, last_ns = self._gap_line(text, pos, start, line, known, last_ns)
                    last_stamp = ""
                line += count("\n", pos, start)
            number = line
            pos, line = end, line + 1
            matched += 1
            g = m.groups()
            stamp, host, pid, form = g[0], g[1], g[3], m.lastindex or 0
            if stamp != last_stamp:
                last_stamp = stamp
                base = minutes.get(stamp[:-3], _UNSEEN_MINUTE)
                seconds = _SECONDS.get(stamp[-2:])
                if seconds is None or base is None or base == _UNSEEN_MINUTE:
                    time = self._stamp_time(stamp, minutes) if by_minute else \
                        self.records.classic_time(stamp, *_STAMP.fullmatch(stamp).groups())  # type: ignore[union-attr]  # fmt: skip
                else:
                    time = base + seconds  # _stamp_time, its minute known
            # the fields of the form, as its sshd_messages builder reads them (see .bulk)
            who = None
            if form == _PAM:
                address, user, preauth = g[_PAM], g[_PAM + 1], g[_PAM + 2]
                port = None
            elif form == _AUTH:
                user, address, port = g[_AUTH + 3], g[_AUTH + 4], g[_AUTH + 5]
            elif form == _INVALID:
                user, address, port, preauth = g[_INVALID], g[_INVALID + 1], \
                    g[_INVALID + 2], g[_INVALID + 3]  # fmt: skip
            elif form == _RECEIVED:
                address, port, user, preauth = g[_RECEIVED], g[_RECEIVED + 1], None, "pre"
            else:  # a close: "Disconnected from" or "Connection closed|reset by"
                who, user, address, port, preauth = g[form], g[form + 1], g[form + 2], \
                    g[form + 3], g[form + 4]  # fmt: skip
            parsed = addresses.get(address, _UNSEEN)
            if parsed is _UNSEEN:
                parsed = self._address(address)
            if parsed is None:
                continue  # no address (sshd_messages._obs: no event, nothing moved)
            key = (host, pids.get(pid) or self._pid(pid))
            session = sessions.get(key)
            if (time is None or (session is not None and session.pending)
                    or pos - start > MAX_MESSAGE):  # fmt: skip
                # no time of its own, a count waiting in the connection, or a line that may
                # hold a message observe does not read: the usual way
                last_ns = self._slow_line(text, known, start, pos, number, last_ns)
                last_stamp, known = "", pos
                continue
            last_ns, known = time, pos
            ip, addr, family = parsed
            # SshdParser.feed_plain from here: the session, then the action
            if session is None:
                session = sessions[key] = Session()
                if len(sessions) > limit:
                    sessions.popitem(last=False)
            else:
                sessions.move_to_end(key)
            session.address = ip
            if port is not None and len(port) <= 5:  # sshd_messages._port
                session.port = int(port) or session.port
            if form == _AUTH:
                invalid = g[_AUTH + 2] is not None
                session.user, session.user_invalid = user, invalid
                kind = kinds.get(g[_AUTH + 1]) or self._kind(g[_AUTH + 1])
                if g[_AUTH] == "Accepted":
                    session.authenticated = True
                    self._event(reader, Outcome.SUCCESS, ip, time, kind, number, user, invalid,
                                g[2], key)  # fmt: skip
                    continue
                session.counted = True
            elif form >= _DISCONNECTED:  # Action.CLOSE
                del sessions[key]
                if user is not None:
                    session.user, session.user_invalid = user, who == "invalid user"
                if session.authenticated or who == "user" or session.counted:
                    continue
                if (preauth or who is not None) and session.user is not None:
                    session.counted = True
                    kind, user, invalid = preauth_close, session.user, session.user_invalid
                else:
                    if preauth or who is not None or session.banner:
                        if take_probe:
                            self._event(reader, Outcome.PROBE, ip, time, preauth_close, number,
                                        None, False, g[2], key)  # fmt: skip
                        else:
                            probes[preauth_close] += 1
                    continue
            else:  # Action.CONTEXT
                if form == _PAM:
                    kind, invalid = pam, False
                    if user is not None:
                        session.user, session.user_invalid = user, False
                elif form == _INVALID:
                    kind, invalid = invalid_user, True
                    session.user, session.user_invalid = user, True
                else:
                    kind, invalid = disconnect, False
                if take_probe:
                    self._event(reader, Outcome.PROBE, ip, time, kind, number, user, invalid,
                                g[2], key)  # fmt: skip
                else:
                    probes[kind] += 1
                continue
            # a failure (the line's own, or a close's count)
            if not inline:
                self._event(reader, Outcome.FAILURE, ip, time, kind, number, user, invalid,
                            g[2], key)  # fmt: skip
                continue
            failures[kind] += 1
            if time != tick_time:
                tick_time, tick = time, time * hz // NS  # recent.ticks.ns_to_ticks
            for table in written:
                table.add(family, addr, tick)
            for table, hitcount, window, rule in targets[family]:
                stamps = table.stamps(family, addr)
                if len(stamps) >= hitcount:
                    until = sorted(stamps)[-hitcount] + window
                    if until > tick:
                        # _ban, for a ban in force that moves on (most events of an attack)
                        held = held_bans.get((rule.text, addr & rule.key_mask))
                        if held is not None and held.until_ns > time:
                            until_ns = until * NS // hz  # recent.ticks.ticks_to_ns
                            if until_ns != held.until_ns:
                                held.until_ns = max(held.until_ns, until_ns)
                                held.extended += 1
                        else:
                            ban(rule, ip, addr, time, until, number)
        end = len(text) - 1
        if pos < end and gap_line(text, pos, end) is not None:
            known, last_ns = self._gap_line(text, pos, end, line, known, last_ns)
        self._last_ns = last_ns
        self._backfill(text, known, end)
        stats.lines += count("\n") - 1
        stats.bulk_lines += matched
        self.records.reset_stamp()

    def _gap(self, text: str, pos: int, end: int, line: int, known: int) -> int:
        """Parse, the usual way, each line between the ``\\n`` at ``pos`` and the one at
        ``end`` (numbered from ``line``) that may move something (:data:`.bulk.GAP_LINE`,
        then :data:`.bulk.DANGER`); the others move nothing. Returns the end of the last
        line parsed (``known``)."""
        found = GAP_LINE.search(text, pos, end)
        while found is not None:
            start = found.start()
            stop = text.find("\n", start + 1)
            if DANGER.search(text, start, stop) is not None:
                self._backfill(text, known, start)
                self._line(text[start + 1 : stop].rstrip("\r"),
                           line + text.count("\n", pos, start))  # fmt: skip
                known = stop
            found = GAP_LINE.search(text, stop, end)
        return known

    def _backfill(self, text: str, known: int, end: int) -> None:
        """The last time seen, as the lines between the ``\\n`` at ``known`` and the one at
        ``end`` (left unparsed) would leave it: the time of the last one that has one."""
        while end > known:
            start = text.rfind("\n", known, end)
            record = self.records.parse(text[start + 1 : end].rstrip("\r"), 0)
            if record.time is not None:
                self._last_ns = record.time
                return
            end = start

    def _line(self, text: str, number: int) -> None:
        """One line through the record parser and every parser (rule 1)."""
        record = self.records.parse(text, number)
        if record.time is not None:
            self._last_ns = record.time
        for reader in self._readers:
            events = reader.events.feed(record)
            if events:
                self._apply(events, reader)

    def _stamp_time(self, stamp: str, minutes: dict[str, int | None]) -> int | None:
        """The time of a classic stamp: ``RecordParser.classic_time``, the start of each
        minute converted once (the twin of ``ClassicYear.epoch_ns``: with ``--year``, a
        stamp's time is its minute's plus its seconds, capped at 59)."""
        seconds = _SECONDS.get(stamp[-2:])
        minute = stamp[:-3]
        if seconds is None or minute not in minutes:
            parts = _STAMP.fullmatch(stamp)
            if parts is None:  # (the pattern's stamps all fit)
                return None
            month, day, hh, mm, ss = parts.groups()
            time = self.records.classic_time(stamp, month, day, hh, mm, ss)
            if seconds is None:
                return time
            minutes[minute] = None if time is None else time - seconds
            return time
        base = minutes[minute]
        return None if base is None else base + seconds

    def _bulk_targets(self, reader: _Reader) -> tuple[
        bool, list[RecentTable], dict[int, list[tuple[RecentTable, int, int, BanRule]]]
    ]:
        """How the bulk path writes a failure: whether it can inline (every route that
        takes failures is a plain ``+LIST``); the tables written, in route order (as
        ``apply_observation`` writes them); per family, the rules to check after, in the
        order :meth:`_observe` checks them, each with its table, hitcount and window in
        ticks plus one (``BanPlanner.expiry_tick``)."""
        routes = [route for route in reader.routes if route.evidence is Evidence.AUTH_FAILURE]
        if any(route.action is not Action.ADD or route.kind or route.category
               for route in routes):  # fmt: skip
            return False, [], {}
        written: list[RecentTable] = []
        targets: dict[int, list[tuple[RecentTable, int, int, BanRule]]] = {4: [], 6: []}
        for route in routes:
            table = self.tables.get(route.table)
            if table is None:
                continue
            written.append(table)
            for family, checks in targets.items():
                for rule in self._by_list.get((route.table, family), ()):
                    case = rule.planner.case
                    checks.append((table, case.hitcount, case.seconds * self.hz + 1, rule))
        return True, written, targets

    def _event(  # noqa: PLR0917 (an AuthEvent's parts, in its order)
        self, reader: _Reader, outcome: Outcome, ip: IPAddress, time: int, kind: Kind,
        line: int, user: str | None, user_invalid: bool, program: str, key: tuple[str, int],
    ) -> None:  # fmt: skip
        """One event of the bulk path the usual way (:meth:`_apply`)."""
        self._apply((AuthEvent(outcome, ip, time, kind, line, user, user_invalid, program,
                               key[1], key[0]),), reader)  # fmt: skip

    def _address(self, text: str) -> tuple[IPAddress, int, int] | None:
        if len(self._addresses) >= _CACHE_LIMIT:
            self._addresses.clear()
        address = parse_address(text)
        parsed = None if address is None else (address, int(address), address.version)
        self._addresses[text] = parsed
        return parsed

    def _kind(self, method: str) -> Kind:
        if len(self._kinds) >= _CACHE_LIMIT:
            self._kinds.clear()
        kind = self._kinds[method] = Kind.for_method(method)
        return kind

    def _pid(self, text: str) -> int:
        if len(self._pids) >= _CACHE_LIMIT:
            self._pids.clear()
        pid = self._pids[text] = int(text[:9])
        return pid

    def finish(self) -> list[BanRecord]:
        """End of input (sessions still open are closed); the bans, in time order."""
        for reader in self._readers:
            self._apply(reader.events.close(), reader)
        return sorted(self._bans, key=lambda ban: ban.ts_ns)

    def _apply(self, events: Iterable[AuthEvent], reader: _Reader) -> None:
        stats = self.stats
        for event in events:
            outcome = event.outcome
            if outcome is _FAILURE:
                stats.failures[event.kind] += 1
                taken = reader.failure
            elif outcome is _SUCCESS:
                stats.successes[event.kind] += 1
                taken = reader.success
            else:
                stats.probes[event.kind] += 1
                taken = reader.probe
            if not taken:
                continue
            wall_ns = event.time if event.time is not None else self._last_ns
            if wall_ns is None:
                self.stats.untimed += 1
                continue
            observation = observation_of(event, self._origin, _at(wall_ns))
            self._observe(observation, reader.routes, event.line)
            if self.on_observation is not None:
                self.on_observation(observation)

    def _observe(self, observation: Observation, routes: Sequence[Route], line: int) -> None:
        tick = ns_to_ticks(observation.wall_ns, self.hz)
        family = observation.address.version
        for write in apply_observation(self.tables, routes, observation, tick):
            rules = self._by_list.get((write.table, family), ())
            for rule in rules:
                if write.action is Action.ADD:
                    self._plan(rule, observation, tick, line)
                elif write.changed:
                    self._lift(rule, observation, line)

    def _plan(self, rule: BanRule, observation: Observation, now: int, line: int) -> None:
        addr = int(observation.address)
        until = rule.planner.drop_until(rule.family, addr, now)
        if until is not None:
            self._ban(rule, observation.address, addr, observation.wall_ns, until, line)

    def _ban(  # noqa: PLR0917 (called per event: positional is cheaper)
        self, rule: BanRule, ip: IPAddress, addr: int, wall_ns: int, until: int, line: int
    ) -> None:
        """Rule 4: a new ban, or one in force moved on."""
        key = (rule.text, addr & rule.key_mask)
        until_ns = ticks_to_ns(until, self.hz)
        held = self._open.get(key)
        if held is not None and held.until_ns > wall_ns:
            if until_ns != held.until_ns:
                held.until_ns, held.extended = max(held.until_ns, until_ns), held.extended + 1
            return
        shown = _shown(ip, rule.prefix)
        ban = BanRecord(shown, wall_ns, line, until_ns, rule.planner.case.name, rule.text,
                        self._file)  # fmt: skip
        self._open[key] = ban
        self._bans.append(ban)

    def _lift(self, rule: BanRule, observation: Observation, line: int) -> None:
        held = self._open.get((rule.text, int(observation.address) & rule.key_mask))
        if held is not None and held.until_ns > observation.wall_ns:
            held.until_ns, held.lifted_line = observation.wall_ns, line


def _numbered(text: str, first: int) -> Iterator[tuple[int, str]]:
    """The lines of a text whose every line ends with ``\n``, numbered from ``first``, as
    the CLI reads a file's (without ``\r`` before the break)."""
    for number, line in enumerate(text.split("\n")[:-1], first):
        yield number, line.rstrip("\r")


def _at(wall_ns: int) -> Callable[[], int]:
    """The "now" of a line without a time: the last time seen (rule 3)."""
    return lambda: wall_ns


def _readers(watches: Sequence[Watch]) -> list[_Reader]:
    """One parser per parser name, with the routes of every watch that names it."""
    routes: dict[str, list[Route]] = {}
    for watch in watches:
        routes.setdefault(watch.parser, []).extend(watch.routes())
    return [_Reader(make_parser(name), tuple(found), *_taken(found))
            for name, found in routes.items()]  # fmt: skip


def _taken(routes: Iterable[Route]) -> tuple[bool, bool, bool]:
    evidence = {route.evidence for route in routes}
    failure, success, probe = (EVIDENCE[outcome.value] in evidence
                               for outcome in (Outcome.FAILURE, Outcome.SUCCESS, Outcome.PROBE))
    return failure, success, probe


def _shown(address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int | None) -> str:
    """The address as a ban names it: canonical, or the masked network as a CIDR."""
    if prefix is None:
        return str(address)
    return str(ipaddress.ip_network((address, prefix), strict=False))
