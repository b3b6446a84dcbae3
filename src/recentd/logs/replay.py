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
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recentd.backends import BanClass
from recentd.live.policy import BanPlanner, OffloadCase
from recentd.logs.events import AuthEvent, Outcome
from recentd.logs.observe import EVIDENCE, observation_of
from recentd.logs.parsers import EventParser, make_parser
from recentd.logs.records import RecordParser
from recentd.observation import Action, Observation, Origin, Route, apply_observation
from recentd.recent import ALL_ONES_MASK, Command, ModuleParams, RecentMatch, RecentTables, Side
from recentd.recent.ticks import DEFAULT_HZ, ns_to_ticks, ticks_to_ns
from recentd.rules import Engine, Ruleset
from recentd.rules.render import save_rule

if TYPE_CHECKING:
    from recentd.config import Watch  # a type only: the config module reads files

_NS = 1_000_000_000
_FAILURE, _SUCCESS = Outcome.FAILURE, Outcome.SUCCESS
_BANNING = (Command.CHECK, Command.UPDATE)


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
        if until is None:
            return
        key = (rule.text, addr & rule.key_mask)
        until_ns = ticks_to_ns(until, self.hz)
        held = self._open.get(key)
        if held is not None and held.until_ns > observation.wall_ns:
            if until_ns != held.until_ns:
                held.until_ns, held.extended = max(held.until_ns, until_ns), held.extended + 1
            return
        shown = _shown(observation.address, rule.prefix)
        ban = BanRecord(shown, observation.wall_ns, line, until_ns, rule.planner.case.name,
                        rule.text, self._file)  # fmt: skip
        self._open[key] = ban
        self._bans.append(ban)

    def _lift(self, rule: BanRule, observation: Observation, line: int) -> None:
        held = self._open.get((rule.text, int(observation.address) & rule.key_mask))
        if held is not None and held.until_ns > observation.wall_ns:
            held.until_ns, held.lifted_line = observation.wall_ns, line


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
