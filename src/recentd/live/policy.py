"""When a user-space drop may be carried by the kernel alone, and for how long.

Which drops: :mod:`recentd.live.offload` analyses the rule set by meaning (docs/offload.md):
an ``--rcheck … -j DROP`` rule R that every packet of a class the kernel can test
reaches, with nothing before it deciding or writing a table for that traffic — through
the chains, after other rules, in INPUT and FORWARD, in both families.
:func:`find_offload_case` turns its choice into one :class:`OffloadCase`.

Why that is exact. ``--rcheck`` never mutates the table, and a packet R drops
never reaches another rule. So while a source is over the count, its class-C
packets change nothing: the entry stays frozen and R keeps matching until the
H-th most recent stamp ``s_H`` leaves the window, i.e. exactly while
``now <= s_H + S*HZ``. A kernel set element with a *fixed* (not refreshed)
timeout ending at that tick drops the same packets, and when it lapses the
user-space table is in the state it would have been in anyway. Writes by other
traffic can only add stamps (the analysis refuses a list anything removes from), so
they only move that tick later: the kernel then drops a prefix of what user space
would drop, and user space drops (and re-bans) the rest. The timeout is rounded
*down* to whole seconds (libnftables JSON speaks seconds), for the same reason.

What can still differ, and is repaired rather than prevented: the entry may be
evicted (LRU, ``ip_list_tot``), removed or flushed through the control plane,
or the rules reloaded; :meth:`BanPlanner.stale` finds bans whose entry is gone or
whose expiry moved, and the daemon withdraws them (an :class:`~recentd.commands.Unban`)
within one timer turn. A table written by an observation (a log line routed to N) is
planned at once (:meth:`BanPlanner.plan_address`): no packet is needed for the ban.

``--update … -j DROP`` (and a ``--set`` before the drop) stamps the entry of every
packet it drops, so no fixed timeout reproduces it alone: it is offloaded with
*stamping* — the kernel logs each drop, :meth:`BanPlanner.stamp_runs` replays the
logged drops' writes (:class:`Drops`, read by ``live/nflog.py``) and the ban is re-timed
from the stamps (docs/offload.md, "Stamping").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from recentd.backends import BanClass, check_address
from recentd.commands import Ban
from recentd.live.offload import analyse, carried, choose, kernel_drops, merged_class, prefix_of
from recentd.packets.packet import Packet
from recentd.recent import Command, RecentMatch, RecentTables, Side
from recentd.recent.table import EntryView, RecentTable
from recentd.recent.ticks import ClockReading, wall_of_tick
from recentd.rules.model import CtState, Ruleset


@dataclass(frozen=True, slots=True)
class OffloadCase:
    """One offloadable drop: packets of ``ban_class`` checked against table ``name``."""

    name: str
    seconds: int
    hitcount: int
    ban_class: BanClass
    families: tuple[int, ...]
    #: The `recent` matches a dropped packet meets, replayed on each logged drop
    #: (:meth:`BanPlanner.stamp`); empty: the kernel's drops write nothing.
    recipe: tuple[RecentMatch, ...] = ()

    def describe(self) -> str:
        """What the kernel will drop, in words (for ``recentd run --dry-run``)."""
        cls = self.ban_class
        what = {0: "packets", 6: "tcp", 17: "udp"}.get(cls.proto, f"protocol {cls.proto}")
        if cls.dports:
            what += " to port " + ",".join(str(port) for port in cls.dports)
        if cls.ct_new_only:
            what += ", new connections"
        if cls.exclude:
            what += f" except {len(cls.exclude)} kind(s) an earlier rule decides"
        families = " and ".join(f"IPv{family}" for family in self.families)
        hooks = " and ".join(cls.hooks)
        return (f"a source with {self.hitcount} hits in {self.seconds} s in list "
                f"{self.name!r} goes into an nftables set; the kernel then drops its "
                f"{what} ({families}, {hooks}) until the rule would stop matching")

    def covers(self, packet: Packet, ctstate: int, hook: str) -> bool:
        """Whether the kernel drops ``packet`` on ``hook`` (``INPUT``, ``FORWARD``) when its
        source is banned — so user space may drop it unasked (a queued packet in flight)."""
        return packet.family in self.families and kernel_drops(
            self.ban_class, packet, ctstate, hook.lower())

    def plans_on(self, packet: Packet, ctstate: int) -> bool:
        """Whether a drop of ``packet`` is worth asking R about its source: it is of the
        class's kind (a ban's truth does not depend on which drop asked)."""
        cls = self.ban_class
        return (
            packet.family in self.families
            and (not cls.proto or packet.proto == cls.proto)
            and (not cls.dports or (packet.dport in cls.dports and not packet.frag_offset))
            and (not cls.ct_new_only or ctstate == CtState.NEW)
        )


@dataclass(frozen=True, slots=True)
class Drops:
    """``count`` drops the kernel logged of packets whose header reads as ``packet``, at
    ``tick``: a run :meth:`BanPlanner.stamp_runs` replays (live/nflog.py reads them)."""

    packet: Packet
    count: int
    tick: int


# ---- the case the analysis chose ----------------------------------------------------------


#: The NFLOG group recentd's kernel drops are logged to when they must be replayed.
STAMP_LOG_GROUP = 4717


def find_offload_case(ruleset: Ruleset, *, stamping: bool = False) -> OffloadCase | None:
    """The drop the kernel carries for ``ruleset`` (:mod:`recentd.live.offload`), or ``None``.

    ``stamping``: the caller reads the kernel's log of its drops (group
    :data:`STAMP_LOG_GROUP`) and hands each to :meth:`BanPlanner.stamp`."""
    analysis = analyse(ruleset, stamping=stamping)
    chosen, ban_class = choose(analysis), merged_class(analysis)
    if chosen is None or ban_class is None:
        return None
    cand, families = chosen[0], chosen[1]
    if cand.recipe:
        ban_class = replace(ban_class, log_group=STAMP_LOG_GROUP)
    recent = cand.recent
    return OffloadCase(recent.name, recent.seconds, max(recent.hitcount, 1), ban_class, families,
                       cand.recipe)  # fmt: skip


def offload_report(ruleset: Ruleset, *, stamping: bool = False) -> list[str]:
    """Per drop rule, offloaded or why not (``recentd run --dry-run``)."""
    return [answer.describe() for answer in carried(analyse(ruleset, stamping=stamping))]


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
        if not self.case.plans_on(packet, ctstate):
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

    def stamp(self, packet: Packet, tick: int) -> None:
        """Write what ``packet``, dropped by the kernel at ``tick``, would have written on
        its way to R: the case's recipe, evaluated as the engine does (same tables)."""
        for match in self.case.recipe:
            table = self.tables.get(match.name)
            if table is not None:
                addr = packet.src if match.side is Side.SOURCE else packet.dst
                table.evaluate(match, packet.family, addr, packet.ttl, tick)

    def _ban_of(self, entry: EntryView, now: ClockReading, origin: str) -> Ban | None:
        expiry = self.expiry_tick(entry)
        if expiry is None or (expiry - now.tick) // self.hz < 1:
            return None
        addr = check_address(entry.family, entry.addr)
        timeout_s = (expiry - now.tick) // self.hz
        table = self.tables.get(self.case.name)
        prefix = None if table is None else prefix_of(entry.family, table.mask)
        return Ban(entry.family, addr, expiry, wall_of_tick(now, expiry), timeout_s,
                   self.reason, origin, prefix=prefix)  # fmt: skip

    def expiry_tick(self, entry: EntryView) -> int | None:
        """First tick at which R stops matching this entry, if nothing stamps it."""
        stamps = sorted(entry.stamps)
        if len(stamps) < self.case.hitcount:
            return None
        s_h = stamps[-self.case.hitcount]
        return s_h + self.case.seconds * self.hz + 1

    def stale(self, bans: Iterable[Ban]) -> list[Ban]:
        """Bans whose entry was evicted, removed, or changed so that R's drops end before
        the ban does. A ban ending earlier than R's drops is kept: the kernel drops a
        prefix, user space the rest (and bans again)."""
        table = self.tables.get(self.case.name)
        out = []
        for ban in bans:
            entry = None if table is None else table.get(ban.family, int(ban.address))
            expiry = None if entry is None else self.expiry_tick(entry)
            if expiry is None or expiry < ban.rule_expiry:
                out.append(ban)
        return out

    @staticmethod
    def retime(held: Ban | None, ban: Ban, now: int) -> bool:
        """Whether to hand ``ban`` over although ``held`` is in force: a ban ending early
        is exact (a prefix), so a flood's ban is re-timed only once less than half of
        what it could hold is left, not per logged drop."""
        return held is None or (held.expiry_tick - now) * 2 < ban.expiry_tick - now

    def stamp_runs(self, runs: Iterable[Drops]) -> list[tuple[int, int]]:
        """:meth:`stamp` for each of ``runs`` (``count`` drops of one header at one tick,
        in the order they were logged; :func:`recentd.live.nflog.logged_drops`), returning
        their sources in the order of their last run.

        When every drop writes alike on R's list (:meth:`_steady_ring`) and R matches the
        entry, a run of ``n`` drops that writes at least a ring's stamps is one write:
        every slot then holds its tick and only the slot written next (``oldest_pkt``)
        depends on ``n`` — the entry and ``/proc`` line that replaying all ``n`` leaves.
        Adjacent such runs on one entry (a one-source flood, tick after tick) are one
        write too: the last run's fill overwrites every slot the earlier ones wrote, and
        R keeps matching from run to run (each leaves a ring of fresh stamps; they are
        less than a window apart). Other drops are replayed one by one."""
        ring = self._steady_ring()
        table = self.tables.get(self.case.name)
        last: dict[tuple[int, int], None] = {}
        for span in self._spans(list(runs), ring, table):
            head, tail = span[0], span[-1]
            writes = sum(run.count for run in span) * len(self.case.recipe)
            if table is None or len(span) == 1 or not self._fill(
                    table, tail.packet, tail.tick, writes, since=head.tick):  # fmt: skip
                for run in span:
                    self._replay(run, ring, table)
            for run in span:
                key = (run.packet.family, run.packet.src)
                last.pop(key, None)
                last[key] = None
        return list(last)

    def _spans(self, runs: list[Drops], ring: int | None,
               table: RecentTable | None) -> Iterator[list[Drops]]:
        """``runs`` in order, adjacent runs on one entry that each write a ring (and lie
        less than a window apart) grouped; every other run alone."""
        per_drop, window = len(self.case.recipe), self.case.seconds * self.hz
        span: list[Drops] = []
        key = None
        for run in runs:
            whole = ring is not None and table is not None and run.count * per_drop >= ring
            run_key = table.key(run.packet.family, run.packet.src) if whole and table else None
            if span and (run_key is None or run_key != key or run.tick - span[0].tick > window):
                yield span
                span = []
            span.append(run)
            key = run_key
            if run_key is None:
                yield span
                span = []
        if span:
            yield span

    def _replay(self, run: Drops, ring: int | None, table: RecentTable | None) -> None:
        packet, left, per_drop = run.packet, run.count, len(self.case.recipe)
        while left:
            if (ring is not None and table is not None and left * per_drop >= ring
                    and self._fill(table, packet, run.tick, left * per_drop, since=run.tick)):
                return
            self.stamp(packet, run.tick)
            left -= 1

    def _fill(self, table: RecentTable, packet: Packet, tick: int, writes: int, *,
              since: int) -> bool:
        """``writes`` (at least a ring's) more stamps at ``tick`` on ``packet``'s entry, and
        its TTL, as one write, if R matches the entry at ``since`` (so each drop from then
        on writes every stamp of the recipe); ``False`` if it does not.

        The slot arithmetic is RecentTable._stamp's (its twin): each stamp writes slot
        ``index & (ring - 1)`` and sets ``index`` to that slot + 1; from a consistent entry
        (a full ring, or ``index`` = its length) ``k`` stamps leave ``index`` at
        ``((index + k - 1) & (ring - 1)) + 1``, and ``k >= ring`` overwrite every slot."""
        entry = table.get(packet.family, packet.src)
        expiry = None if entry is None else self.expiry_tick(entry)
        if entry is None or expiry is None or expiry <= since:
            return False
        ring = table.ring
        index = ((entry.index + writes - 1) & (ring - 1)) + 1
        table.load(EntryView(entry.family, entry.addr, packet.ttl, index, (tick,) * ring, tick))
        return True

    def _steady_ring(self) -> int | None:
        """The ring size when every drop writes alike on R's list only, else ``None``."""
        case, table = self.case, self.tables.get(self.case.name)
        alike = all(
            m.name == case.name and not m.rttl and not m.invert and (
                m.command is Command.SET or (m.command is Command.UPDATE
                                             and m.seconds == case.seconds
                                             and max(m.hitcount, 1) == case.hitcount))
            for m in case.recipe
        )  # fmt: skip
        return table.ring if alike and table is not None else None
