"""When a user-space drop may be carried by the kernel alone, and for how long.

Theory of operation. recentd offloads exactly one shape of rule set, the classic
recipe, and nothing else::

    -A INPUT -p tcp --dport P -m state --state NEW -j X      (J: first rule of INPUT)
    -A X [-m state --state NEW] -m recent --rcheck --seconds S --hitcount H --name N -j DROP
                                                             (R: first rule of X)
    … any further rules of X (the recipe's --update and --set) …

Conditions, all checked by :func:`find_offload_case`, in every family that has a
filter table:

1. J is the first rule of INPUT: every NEW TCP packet to port P reaches it, and
   nothing earlier can decide or touch a table. Its IP part is only ``-p tcp``.
2. X is a user chain reached only by J, and R is its first rule: R is the first
   thing every such packet meets. R's ``recent`` match is ``--rcheck`` with
   ``--seconds S > 0`` and ``--hitcount H > 0``, ``--rsource``, the full mask, no
   ``--rttl``, no ``--reap``, no ``!``; its other matches are only ``state NEW``.
3. No rule outside X names table N (so no traffic that stays in user space can
   change N's entry for a banned source).

Why that is exact. ``--rcheck`` never mutates the table, and a packet R drops
never reaches another rule. So while a source is over the count, its class-C
packets change nothing: the entry stays frozen and R keeps matching until the
H-th most recent stamp ``s_H`` leaves the window, i.e. exactly while
``now <= s_H + S*HZ``. A kernel set element with a *fixed* (not refreshed)
timeout ending at that tick drops the same packets, and when it lapses the
user-space table is in the state it would have been in anyway. The timeout is
rounded *down* to whole seconds (libnftables JSON speaks seconds), so the kernel
drops a prefix of what user space would drop, and user space drops the rest.

What can still differ, and is repaired rather than prevented: the entry may be
evicted (LRU, ``ip_list_tot``), removed or flushed through the control plane,
or the rules reloaded; :meth:`BanPlanner.stale` finds bans whose entry is gone or
whose expiry moved, and the daemon withdraws them (an :class:`~recentd.commands.Unban`)
within one timer turn. A table written by an observation (a log line routed to N) is
planned at once (:meth:`BanPlanner.plan_address`): no packet is needed for the ban.

``--update … -j DROP`` is *not* offloaded: a drop stamps the entry, so whether
the next packet is dropped depends on H stamps inside the window, which no
refresh-on-traffic timeout reproduces for H > 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recentd.backends import BanClass, check_address
from recentd.commands import Ban
from recentd.packets.packet import IPPROTO_TCP, Packet
from recentd.recent import ALL_ONES_MASK, Command, RecentMatch, RecentTables, Side
from recentd.recent.table import EntryView
from recentd.recent.ticks import ClockReading, wall_of_tick
from recentd.rules.model import Chain, CtState, Match, Rule, Ruleset, Table


@dataclass(frozen=True, slots=True)
class OffloadCase:
    """One offloadable drop: packets of ``ban_class`` checked against table ``name``."""

    name: str
    seconds: int
    hitcount: int
    ban_class: BanClass
    families: tuple[int, ...]

    def describe(self) -> str:
        """What the kernel will drop, in words (for ``recentd run --dry-run``)."""
        cls = self.ban_class
        what = {6: "tcp", 17: "udp"}.get(cls.proto, f"protocol {cls.proto}")
        if cls.dports:
            what += " to port " + ",".join(str(port) for port in cls.dports)
        if cls.ct_new_only:
            what += ", new connections"
        families = " and ".join(f"IPv{family}" for family in self.families)
        return (f"a source with {self.hitcount} hits in {self.seconds} s in list "
                f"{self.name!r} goes into an nftables set; the kernel then drops its "
                f"{what} ({families}) until the rule would stop matching")

    def covers(self, packet: Packet, ctstate: int) -> bool:
        """Whether ``packet`` is in the class the kernel rule drops."""
        cls = self.ban_class
        return (
            packet.family in self.families
            and packet.proto == cls.proto
            and not packet.frag_offset
            and (not cls.dports or packet.dport in cls.dports)
            and (not cls.ct_new_only or ctstate == CtState.NEW)
        )


# ---- recognising the recipe ----------------------------------------------------------------


def find_offload_case(ruleset: Ruleset) -> OffloadCase | None:
    """The offloadable case of ``ruleset`` (conditions 1–3 above), or ``None``."""
    found = [_case_of(table) for table in ruleset.tables if table.name == "filter"]
    cases = [case for case in found if case is not None]
    if not cases or len(cases) != len(found):
        return None
    first = cases[0]
    if any((c.name, c.seconds, c.hitcount, c.ban_class) != _key(first) for c in cases):
        return None
    families = tuple(sorted({f for c in cases for f in c.families}))
    case = OffloadCase(first.name, first.seconds, first.hitcount, first.ban_class, families)
    return case if _only_x_names_table(ruleset, case.name) else None


def _key(case: OffloadCase) -> tuple[str, int, int, BanClass]:
    return case.name, case.seconds, case.hitcount, case.ban_class


def _case_of(table: Table) -> OffloadCase | None:
    inp = table.chain("INPUT")
    if inp is None or not inp.rules:
        return None
    jump = inp.rules[0]
    port = _jump_port(jump)
    chain = table.chain(jump.target.name)
    if port is None or chain is None or chain.builtin or table.references(chain.name) != 1:
        return None
    recent = _rcheck_drop(chain)
    if recent is None:
        return None
    ban_class = BanClass(proto=IPPROTO_TCP, dports=(port,), ct_new_only=True)
    return OffloadCase(recent.name, recent.seconds, recent.hitcount, ban_class, (table.family,))


def _jump_port(rule: Rule) -> int | None:
    ip = rule.ip
    if (ip.proto, ip.inv_proto, ip.src, ip.dst, ip.iif, ip.oif, ip.fragment) != (
        IPPROTO_TCP, False, None, None, "", "", None,
    ):  # fmt: skip
        return None
    if rule.target.goto or rule.target.ext is not None:
        return None
    names = sorted(m.name for m in rule.matches)
    if names not in (["state", "tcp"], ["conntrack", "tcp"]):
        return None
    port = None
    for match in rule.matches:
        if match.name == "tcp":
            port = _single_dport(match)
        elif not _is_state_new(match):
            return None
    return port


def _single_dport(match: Match) -> int | None:
    """The one destination port the match requires, when it requires nothing else."""
    if match.ext.reads(match.spec) != frozenset({"dport", "frag_offset"}):  # no sport, flags
        return None
    dports = match.ext.dports(match.spec)
    if dports is None or len(dports) != 1 or dports[0][0] != dports[0][1]:
        return None
    return dports[0][0]


def _is_state_new(match: Match) -> bool:
    return match.ext.ctstates(match.spec) == CtState.NEW


def _rcheck_drop(chain: Chain) -> RecentMatch | None:
    if not chain.rules:
        return None
    rule = chain.rules[0]
    if rule.ip != type(rule.ip)() or rule.target.name != "DROP":
        return None
    recent = [found for m in rule.matches if (found := m.ext.recent(m.spec)) is not None]
    others = [m for m in rule.matches if m.ext.recent(m.spec) is None]
    if len(recent) != 1 or not all(_is_state_new(other) for other in others):
        return None
    match = recent[0]
    ok = (
        match.command is Command.CHECK
        and match.seconds > 0
        and match.hitcount > 0
        and match.side is Side.SOURCE
        and match.mask == ALL_ONES_MASK
        and not (match.rttl or match.reap or match.invert)
    )
    return match if ok else None


def _only_x_names_table(ruleset: Ruleset, name: str) -> bool:
    for table in ruleset.tables:
        inp = table.chain("INPUT")
        allowed = table.chain(inp.rules[0].target.name) if inp and inp.rules else None
        for chain in table.chains:
            if chain is allowed:
                continue
            if any(_names(rule, name) for rule in chain.rules):
                return False
    return True


def _names(rule: Rule, name: str) -> bool:
    return any((recent := m.ext.recent(m.spec)) is not None and recent.name == name
               for m in rule.matches)


# ---- deciding bans at run time ---------------------------------------------------------------


class BanPlanner:
    """Turns the tables into kernel bans when :class:`OffloadCase` allows it.

    Pure: it reads the tables and the :class:`~recentd.clock.ClockReading` it is given,
    and returns :class:`~recentd.commands.Ban` values; carrying them out is the
    enforcer's job.

    Args:
        case: the recognised case.
        tables: the engine's tables (read only).
        hz: tick rate of ``now``.
    """

    def __init__(self, case: OffloadCase, tables: RecentTables, hz: int) -> None:
        self.case = case
        self.tables = tables
        self.hz = hz
        self.reason = f"{case.hitcount} hits in {case.seconds} s in list {case.name}"

    def plan(self, packet: Packet, ctstate: int, now: ClockReading) -> Ban | None:
        """The ban that carries this dropped packet's source, or ``None``."""
        if not self.case.covers(packet, ctstate):
            return None
        return self.plan_address(packet.family, packet.src, now, "packet")

    def plan_address(self, family: int, addr: int, now: ClockReading, origin: str) -> Ban | None:
        """What R decides now for every packet of the ban class from ``addr``, as a ban.

        R drops them exactly while the entry's ``H``-th most recent stamp is inside the
        window, whatever else happens to other addresses: a ban until that stamp leaves
        it, or ``None`` when R would not drop (or for less than a whole second).
        """
        if family not in self.case.families:
            return None
        table = self.tables.get(self.case.name)
        entry = None if table is None else table.get(family, addr)
        return None if entry is None else self._ban_of(entry, now, origin)

    def drop_until(self, family: int, addr: int, now: int) -> int | None:
        """The first tick at which R stops dropping ``addr`` (looked up as a packet's
        source: masked by the table), if R drops it at tick ``now``; else ``None``.

        The answer of :meth:`plan_address` before it becomes a kernel ban (which also
        needs a whole second left): ``recentd logs replay`` reports it as it is.
        """
        if family not in self.case.families:
            return None
        table = self.tables.get(self.case.name)
        entry = None if table is None else table.get(family, addr)
        expiry = None if entry is None else self.expiry_tick(entry)
        return expiry if expiry is not None and expiry > now else None

    def plan_restored(self, now: ClockReading) -> list[Ban]:
        """The bans that follow from the table as it is (after a restore or a reload)."""
        table = self.tables.get(self.case.name)
        out: list[Ban] = []
        for entry in table or ():
            if entry.family not in self.case.families:
                continue
            ban = self._ban_of(entry, now, "restore")
            if ban is not None:
                out.append(ban)
        return out

    def _ban_of(self, entry: EntryView, now: ClockReading, origin: str) -> Ban | None:
        expiry = self.expiry_tick(entry)
        if expiry is None or (expiry - now.tick) // self.hz < 1:
            return None
        addr = check_address(entry.family, entry.addr)
        timeout_s = (expiry - now.tick) // self.hz
        return Ban(entry.family, addr, expiry, wall_of_tick(now, expiry), timeout_s,
                   self.reason, origin)  # fmt: skip

    def expiry_tick(self, entry: EntryView) -> int | None:
        """First tick at which R stops matching this entry, if nothing stamps it."""
        stamps = sorted(entry.stamps)
        if len(stamps) < self.case.hitcount:
            return None
        s_h = stamps[-self.case.hitcount]
        return s_h + self.case.seconds * self.hz + 1

    def stale(self, bans: Iterable[Ban]) -> list[Ban]:
        """Bans whose entry was evicted, removed, or changed so that R's drops end at
        another tick than the ban does."""
        table = self.tables.get(self.case.name)
        out = []
        for ban in bans:
            entry = None if table is None else table.get(ban.family, int(ban.address))
            if entry is None or self.expiry_tick(entry) != ban.rule_expiry:
                out.append(ban)
        return out
