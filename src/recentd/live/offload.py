"""Which `recent` drops the kernel may carry, found by what the rules mean (docs/offload.md).

Rules of this module:

1. Pure: a :class:`~recentd.rules.model.Ruleset` in, an :class:`OffloadAnalysis` out —
   one :class:`RuleOffload` (offloaded, or why not) per rule whose ``recent`` answer ends
   in a drop, and at most one :class:`~recentd.backends.BanClass` the kernel carries.
2. A drop rule R is offloaded only when every packet of the kernel's class from a source
   R matches (a) reaches R — nothing before it on the hook's path (raw, mangle, filter,
   through the chains) may decide it — and (b) changes nothing on its way — no table
   is written for it. Earlier rules that may do either for part of the traffic are
   *excluded* from the class (the kernel leaves that part to user space) when the kernel
   can test their conditions; otherwise R is refused, with that rule named.
3. R itself: ``--rcheck`` (never writes), on the source, the full mask, a window
   (``--seconds``), no ``--rttl``/``--reap``/``!``; its target drops (DROP, REJECT —
   which the queue answers as DROP — or a user chain whose first rule that may match
   drops and nothing before it decides or writes).
4. List-wide: no rule anywhere removes from R's list or reaps it (a write that could end
   R's match before the kernel ban lapses); rules that only add stamps may stay (they
   can only make R match longer: the kernel then drops a prefix and user space the rest).
5. One list and one class in the kernel: the first offloadable rule's, with every other
   hook and family whose offloadable rule has the same list, window, count and class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from recentd.backends import BanClass, Traffic
from recentd.packets.packet import Packet
from recentd.recent import Command, RecentMatch, Side
from recentd.rules.model import TRAVERSAL, Chain, CtState, Hook, Rule, Ruleset, Table

#: Targets that never decide a packet nor write a table: the walk goes on past them.
PASSING_TARGETS = frozenset({"", "LOG", "NFLOG", "ULOG", "MARK", "TRACE"})
#: Targets that drop (REJECT: the queue answers it as DROP, live/verdict.py).
DROPPING_TARGETS = frozenset({"DROP", "REJECT"})
#: The hooks offload follows, with the nft hook that carries each.
OFFLOAD_HOOKS = {Hook.INPUT: "input", Hook.FORWARD: "forward"}
#: At most this many destination ports in one condition (they become an nft set).
MAX_PORTS = 256
#: Jumps followed at most this deep (the loader refuses loops).
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class RuleOffload:
    """The answer for one drop rule: ``reason`` is empty when it is offloaded."""

    where: str
    chain: str
    family: int
    hook: str
    name: str
    reason: str = ""

    @property
    def offloaded(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        """One line for ``recentd run --dry-run``."""
        head = f"{self.where} (IPv{self.family} {self.hook} → {self.chain}, list {self.name!r})"
        return f"{head}: offloaded" if self.offloaded else f"{head}: not offloaded: {self.reason}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An offloadable drop: its rule, its `recent` match, the class the kernel drops."""

    rule: RuleOffload
    recent: RecentMatch
    ban_class: BanClass
    #: The `recent` matches a dropped packet of the class meets on its way, R's last when
    #: it writes (``--update``): replayed on each packet the kernel logs (stamping).
    recipe: tuple[RecentMatch, ...] = ()


@dataclass
class OffloadAnalysis:
    """Every drop rule's answer, and the candidates the kernel may carry."""

    rules: list[RuleOffload] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)


# ---- conditions as the kernel can test them ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Conds:
    """What a rule requires, as far as it is known; ``exact`` when that is all it does.

    ``dports``/``ctstates`` of ``None``: no requirement."""

    proto: int = 0
    dports: frozenset[int] | None = None
    ctstates: int | None = None
    iif: str = ""
    exact: bool = True
    why: str = ""

    def meet(self, other: Conds) -> Conds | None:
        """Both at once, or ``None`` when no packet satisfies both."""
        if self.proto and other.proto and self.proto != other.proto:
            return None
        if self.iif and other.iif and self.iif != other.iif:
            return None
        dports = _meet_opt(self.dports, other.dports)
        states = _meet_states(self.ctstates, other.ctstates)
        if dports == frozenset() or states == 0:
            return None
        return Conds(self.proto or other.proto, dports, states, self.iif or other.iif,
                     self.exact and other.exact, self.why or other.why)  # fmt: skip

    def implies(self, other: Conds) -> bool:
        """Whether every packet meeting ``self`` meets ``other`` (known parts only)."""
        return (
            (not other.proto or self.proto == other.proto)
            and (other.dports is None or (self.dports is not None and self.dports <= other.dports))
            and (other.ctstates is None
                 or (self.ctstates is not None and not self.ctstates & ~other.ctstates))
            and (not other.iif or self.iif == other.iif)
        )  # fmt: skip

    def traffic(self) -> Traffic:
        return Traffic(self.proto, tuple(sorted(self.dports or ())), self.ctstates or 0, self.iif)


def _meet_opt(a: frozenset[int] | None, b: frozenset[int] | None) -> frozenset[int] | None:
    return b if a is None else a if b is None else a & b


def _meet_states(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a & b


def conds_of(rule: Rule, *, skip: RecentMatch | None = None) -> Conds:
    """What ``rule`` requires of a packet (its ``skip`` match left out)."""
    ip = rule.ip
    why = []
    if ip.src is not None or ip.dst is not None:
        why.append("an address condition")
    if ip.oif or ip.fragment is not None or ip.inv_proto or ip.inv_iif:
        why.append("an interface, fragment or inverted condition")
    if ip.iif.endswith("+"):
        why.append(f"the interface wildcard {ip.iif!r}")
    conds = Conds(proto=ip.proto if not ip.inv_proto else 0,
                  iif=ip.iif if not (ip.inv_iif or ip.iif.endswith("+")) else "")  # fmt: skip
    for match in rule.matches:
        spec = match.spec
        recent = match.ext.recent(spec)
        if recent is not None:
            always = recent.command is Command.SET and not recent.invert  # --set matches
            if recent != skip and not always:
                why.append(f"the list {recent.name!r}")
            continue
        reads = match.ext.reads(spec)
        dports = match.ext.dports(spec)
        states = match.ext.ctstates(spec)
        ports = _ports(dports)
        if reads is None or not reads <= {"dport", "frag_offset"} or (
                dports is None and states is None) or (dports is not None and ports is None):
            why.append(f"-m {match.name}")
            continue
        step = Conds(dports=ports, ctstates=states)
        met = conds.meet(step)
        if met is None:  # a rule no packet can match
            return replace(conds, dports=frozenset(), exact=True)
        conds = met
    return replace(conds, exact=not why, why=", ".join(why))


def _ports(ranges: tuple[tuple[int, int], ...] | None) -> frozenset[int] | None:
    if ranges is None:
        return None
    if sum(high - low + 1 for low, high in ranges) > MAX_PORTS:
        return None
    return frozenset(port for low, high in ranges for port in range(low, high + 1))


# ---- the class along a path --------------------------------------------------------------


@dataclass
class _Class:
    """Traffic that reaches the walk's position and is still the kernel's to drop."""

    want: Conds
    exclude: list[Conds]
    blocked: str = ""
    recipe: list[RecentMatch] = field(default_factory=list)

    def may_meet(self, conds: Conds) -> bool:
        met = self.want.meet(conds)
        return met is not None and met.dports != frozenset() and not any(
            met.implies(ex) for ex in self.exclude)

    def leave(self, conds: Conds, because: str) -> None:
        """Leave ``conds``' traffic to user space, or block the walk if it cannot be."""
        if self.blocked:
            return
        if not conds.exact:
            self.blocked = f"{because}, on a condition the kernel set cannot test ({conds.why})"
        elif self.want.implies(conds):
            self.blocked = f"{because} for all of this traffic"
        else:
            self.exclude.append(conds)


def _where(rule: Rule) -> str:
    return f"{rule.source or '-'}:{rule.line}"


def _writes(rule: Rule) -> str:
    """The table writes of ``rule``, in words (empty: none)."""
    out = []
    for match in rule.matches:
        recent = match.ext.recent(match.spec)
        if recent is not None and (recent.command is not Command.CHECK or recent.reap):
            out.append(f"--{recent.command.name.lower()} {recent.name}")
    return ", ".join(out)


class _Walker:
    """Walks one hook's path of one family, recording each drop rule's answer."""

    def __init__(self, ruleset: Ruleset, family: int, hook: Hook, out: OffloadAnalysis,
                 *, stamping: bool, start: Conds | None = None, only: int = 0) -> None:
        self.ruleset = ruleset
        self.stamping = stamping
        self.family = family
        self.hook = hook
        self.out = out
        self.seen: set[int] = set()
        #: Where the walk starts: all traffic, or (second pass) only one drop rule's.
        self.start = start or Conds()
        self.only = only
        #: Refused drop rules whose traffic is narrower than the start: walked again.
        self.retry: dict[int, Conds] = {}

    def run(self) -> None:
        cls = _Class(self.start, [])
        for hook, table_name in TRAVERSAL[self.hook]:
            table = self.ruleset.table(self.family, table_name)
            chain = None if table is None else table.chain(hook.value)
            if table is None or chain is None:
                continue
            self._chain(table, chain, cls, 0)

    def _chain(self, table: Table, chain: Chain, cls: _Class, depth: int) -> None:
        for rule in chain.rules:
            self._rule(table, chain, rule, cls, depth)

    def _rule(self, table: Table, chain: Chain, rule: Rule, cls: _Class, depth: int) -> None:
        drop = self._drop_recent(table, rule)
        conds = conds_of(rule, skip=drop)
        if not cls.may_meet(conds):
            if drop is not None and table.name == "filter" and cls.want.meet(conds):
                self._candidate(chain, rule, drop, conds, _Class(cls.want, cls.exclude, (
                    "every packet it could drop is one an earlier rule decides or writes "
                    "a table for, left to user space")))  # fmt: skip
            return
        target = rule.target.name
        writes = _writes(rule)
        if drop is not None and table.name == "filter":
            self._candidate(chain, rule, drop, conds, cls)
            if writes:  # an --update drop stamps what it drops
                cls.leave(conds, f"{_where(rule)} writes {writes}")
            return  # an --rcheck drop writes nothing: it drops for every later drop too
        if target in PASSING_TARGETS and not writes:
            return
        if writes and target in PASSING_TARGETS and self.stamping:
            stamp = _stamp_of(rule, cls)
            if stamp is not None:  # every packet of the class writes it: replayed per log
                cls.recipe.append(stamp)
                return
        if writes:
            cls.leave(conds, f"{_where(rule)} writes {writes}")
            return
        sub = table.chain(target)
        if sub is not None and not sub.builtin and not rule.target.goto and depth < MAX_DEPTH:
            inner = _Class(cls.want.meet(conds) or conds, cls.exclude, cls.blocked,
                           list(cls.recipe))  # fmt: skip
            if not conds.exact:
                inner.blocked = inner.blocked or (
                    f"{_where(rule)} reaches chain {target} on a condition the kernel set "
                    f"cannot test ({conds.why})")
            self._chain(table, sub, inner, depth + 1)
            if (inner.blocked or inner.recipe != cls.recipe) and not cls.blocked:
                cls.leave(conds, f"{_where(rule)} jumps to {target}, which decides or writes")
            return
        cls.leave(conds, f"{_where(rule)} -j {target} decides")

    def _drop_recent(self, table: Table, rule: Rule) -> RecentMatch | None:
        """The `recent` match whose answer ``rule`` ends in a drop, if it is one."""
        recents = [r for m in rule.matches if (r := m.ext.recent(m.spec)) is not None]
        if len(recents) != 1 or not _drops(table, rule.target.name, rule.target.goto):
            return None
        return recents[0]

    def _candidate(self, chain: Chain, rule: Rule, recent: RecentMatch, conds: Conds,
                   cls: _Class) -> None:
        key = id(rule)
        if key in self.seen or (self.only and key != self.only):
            return
        self.seen.add(key)
        answer = RuleOffload(_where(rule), chain.name, self.family, self.hook.value,
                             recent.name)  # fmt: skip
        networks = prefix_of(self.family, recent.mask) is not None
        reason = (_refuse_recent(recent, self.stamping) or _refuse_mask(self.family, recent.mask)
                  or cls.blocked)  # fmt: skip
        want = cls.want.meet(conds)
        if not reason and (want is None or not conds.exact):
            reason = f"its own condition is one the kernel set cannot test ({conds.why})"
        ban_class = None
        if not reason and want is not None:
            ban_class, reason = _ban_class(want, cls.exclude, OFFLOAD_HOOKS[self.hook],
                                           networks)  # fmt: skip
        answer = replace(answer, reason=reason)
        self.out.rules.append(answer)
        if reason and want is not None and conds.exact and want != self.start:
            self.retry[key] = want
        if ban_class is not None and not reason:
            recipe = (*cls.recipe, *([recent] if recent.command is Command.UPDATE else []))
            self.out.candidates.append(Candidate(answer, recent, ban_class, recipe))


def _drops(table: Table, target: str, goto: bool, depth: int = 0) -> bool:
    """Whether jumping to ``target`` ends in a drop for every packet, writing nothing."""
    if target in DROPPING_TARGETS:
        return True
    chain = table.chain(target)
    if chain is None or chain.builtin or depth >= MAX_DEPTH:
        return False
    for rule in chain.rules:
        if _writes(rule):
            return False
        unconditional = rule.ip == type(rule.ip)() and not rule.matches
        if unconditional and _drops(table, rule.target.name, rule.target.goto, depth + 1):
            return True
        if rule.target.name not in PASSING_TARGETS:
            return False
    return False


#: What R's own `recent` match must not be, each with why (module rule 3).
_REFUSED_RECENT: tuple[tuple[Callable[[RecentMatch], bool], str], ...] = (
    (lambda r: r.command is Command.UPDATE,
     "--update stamps the entry of every packet it drops, which a kernel set does not "
     "(exact --update offload needs the NFLOG stamping of issue 17 part 2)"),
    (lambda r: r.command is not Command.CHECK,
     "--set/--remove write the list; only --rcheck drops offload"),
    (lambda r: r.invert, "an inverted (!) recent match drops the sources that are not listed"),
    (lambda r: r.side is not Side.SOURCE,
     "--rdest lists destinations; the kernel set bans sources"),
    (lambda r: r.rttl, "--rttl also compares the TTL, which the kernel set does not"),
    (lambda r: r.reap, "--reap drops stamps as it checks"),
    (lambda r: not r.seconds, "no --seconds: the match has no end time for a kernel timeout"),
)  # fmt: skip


def _refuse_recent(recent: RecentMatch, stamping: bool) -> str:
    """Why R's own `recent` match cannot become a kernel ban (empty: it can). With
    ``stamping``, an ``--update`` drop can: each dropped packet is logged and replayed."""
    refused = _REFUSED_RECENT[1:] if stamping else _REFUSED_RECENT
    if stamping and recent.command is Command.UPDATE:
        refused = _REFUSED_RECENT[2:]
    return next((why for test, why in refused if test(recent)), "")


def _stamp_of(rule: Rule, cls: _Class) -> RecentMatch | None:
    """The one `recent` write of a passing ``rule`` that every packet of the class meets."""
    recents = [r for m in rule.matches if (r := m.ext.recent(m.spec)) is not None]
    if len(recents) != 1 or recents[0].reap or recents[0].command is Command.REMOVE:
        return None
    others = conds_of(rule, skip=recents[0])
    return recents[0] if others.exact and cls.want.implies(others) else None


def _refuse_mask(family: int, mask: int) -> str:
    """Why a table's mask bans nothing a kernel set can hold in ``family`` (empty: it does)."""
    bits = 32 if family == 4 else 128
    part = mask >> 96 if family == 4 else mask
    if part == (1 << bits) - 1 or prefix_of(family, mask) is not None:
        return ""
    return "a mask that is not a prefix (leading ones) bans no network a kernel set holds"


def prefix_of(family: int, mask: int) -> int | None:
    """The prefix length a table's 128-bit ``mask`` keeps of a ``family`` address, or
    ``None`` for the whole address or a mask that is not leading ones."""
    bits = 32 if family == 4 else 128
    part = mask >> 96 if family == 4 else mask
    length = bin(part).count("1")
    full = (1 << bits) - 1
    if length == bits or part != full ^ ((1 << (bits - length)) - 1):
        return None
    return length


def _ban_class(want: Conds, exclude: list[Conds], hook: str,
               networks: bool) -> tuple[BanClass | None, str]:
    if want.iif:
        return None, f"only traffic on {want.iif!r} reaches it; the kernel class has no interface"
    if want.ctstates not in (None, int(CtState.NEW)):
        return None, "it sees a conntrack state set other than NEW; the kernel class has NEW or any"
    dports = tuple(sorted(want.dports or ()))
    traffic = tuple(dict.fromkeys(ex.traffic() for ex in exclude if want.meet(ex) is not None))
    return BanClass(want.proto, dports, want.ctstates == CtState.NEW, traffic, (hook,),
                    networks), ""  # fmt: skip


# ---- the whole rule set -------------------------------------------------------------------


def analyse(ruleset: Ruleset, *, stamping: bool = False) -> OffloadAnalysis:
    """Every drop rule's answer and the offloadable candidates (module rules 1–4).

    ``stamping``: the kernel logs each packet it drops and user space replays the
    candidate's recipe on it (:meth:`recentd.live.policy.BanPlanner.stamp`), so writes
    every packet of the class meets — an ``--update`` drop, a ``--set`` before the drop —
    no longer refuse it."""
    out = OffloadAnalysis()
    for family in ruleset.families():
        for hook in OFFLOAD_HOOKS:
            _walk(ruleset, family, hook, out, stamping)
    _unreached(ruleset, out)
    _list_wide(ruleset, out)
    out.rules.sort(key=_order)
    out.candidates.sort(key=lambda c: _order(c.rule))
    return out


def _order(answer: RuleOffload) -> tuple[str, int, int, str]:
    file, line = answer.where.rsplit(":", 1)
    return file, int(line), answer.family, answer.hook


def _walk(ruleset: Ruleset, family: int, hook: Hook, out: OffloadAnalysis,
          stamping: bool) -> None:
    """Walk the path for all traffic; then, for each refused drop, again for its traffic
    alone (the path's and its own conditions from the start): earlier rules are then
    judged against what reaches that drop — a ``--set`` on its port meets all of it."""
    first = _Walker(ruleset, family, hook, out, stamping=stamping)
    first.run()
    for key, want in first.retry.items():
        again = OffloadAnalysis()
        _Walker(ruleset, family, hook, again, stamping=stamping, start=want, only=key).run()
        better = [a for a in again.rules if a.offloaded]
        if better:
            out.rules = [better[0] if (a.where, a.family, a.hook) == (
                better[0].where, family, hook.value) else a for a in out.rules]  # fmt: skip
            out.candidates.extend(again.candidates)


def _unreached(ruleset: Ruleset, out: OffloadAnalysis) -> None:
    """Drop rules no offloadable path reaches (OUTPUT, raw/mangle, unreferenced chains)."""
    answered = {(a.where, a.family) for a in out.rules}
    for table, chain, rule in ruleset.rules():
        recents = [r for m in rule.matches if (r := m.ext.recent(m.spec)) is not None]
        if len(recents) != 1 or not _drops(table, rule.target.name, rule.target.goto):
            continue
        if (_where(rule), table.family) in answered:
            continue
        reason = ("the walk from INPUT and FORWARD never reaches it with traffic the kernel "
                  "could drop" if table.name == "filter" else
                  f"it is in the {table.name} table; offload follows filter's drops")  # fmt: skip
        out.rules.append(RuleOffload(_where(rule), chain.name, table.family, "-", recents[0].name,
                                     reason))  # fmt: skip


def _list_wide(ruleset: Ruleset, out: OffloadAnalysis) -> None:
    """Module rule 4: a list some rule removes from or reaps is never offloaded."""
    spoiled: dict[str, str] = {}
    masks: dict[str, int] = {}
    for _table, _chain, rule in ruleset.rules():
        for match in rule.matches:
            recent = match.ext.recent(match.spec)
            if recent is not None and masks.setdefault(recent.name, recent.mask) != recent.mask:
                spoiled.setdefault(recent.name, f"{_where(rule)} names the list with another "
                                   "mask (the table keeps its first rule's)")  # fmt: skip
            if (recent is not None and (recent.command is Command.REMOVE or recent.reap)
                    and not _remove_after_drop(ruleset, rule, recent, out)):
                spoiled.setdefault(recent.name, f"{_where(rule)} removes from the list "
                                   "(a kernel ban could outlast the entry)")  # fmt: skip
    if not spoiled:
        return
    out.rules = [replace(a, reason=spoiled[a.name]) if a.offloaded and a.name in spoiled else a
                 for a in out.rules]  # fmt: skip
    out.candidates = [c for c in out.candidates if c.recent.name not in spoiled]


def _remove_after_drop(ruleset: Ruleset, rule: Rule, recent: RecentMatch,
                       out: OffloadAnalysis) -> bool:
    """A ``--remove`` after an unconditional drop on the same list, window and count in
    the same chain: only sources that drop does not match (not banned) reach it."""
    if recent.reap or recent.command is not Command.REMOVE or recent.side is not Side.SOURCE:
        return False
    kernel = {c.recent for c in out.candidates if c.recent.name == recent.name}
    for table, chain, _rule in ruleset.rules():
        if _rule is not rule:
            continue
        for before in chain.rules[:chain.rules.index(rule)]:
            drop = [r for m in before.matches if (r := m.ext.recent(m.spec)) is not None]
            if (before.ip == type(before.ip)() and len(before.matches) == 1 and drop
                    and drop[0] in kernel and drop[0].mask == recent.mask
                    and _drops(table, before.target.name, before.target.goto)):
                return True
    return False


def choose(analysis: OffloadAnalysis) -> tuple[Candidate, tuple[int, ...], tuple[str, ...]] | None:
    """The candidate the kernel carries, with the families and hooks it carries it for
    (module rule 5), or ``None``."""
    if not analysis.candidates:
        return None
    first = analysis.candidates[0]
    same = [c for c in analysis.candidates if _key(c) == _key(first)]
    families = tuple(sorted({c.rule.family for c in same}))
    hooks = tuple(dict.fromkeys(h for c in same for h in c.ban_class.hooks))
    return first, families, hooks


def merged_class(analysis: OffloadAnalysis) -> BanClass | None:
    """The chosen class over all its hooks and families; the traffic any of them leaves
    to user space is left by all (a smaller kernel class is still exact)."""
    chosen = choose(analysis)
    if chosen is None:
        return None
    first, _families, hooks = chosen
    same = [c for c in analysis.candidates if _key(c) == _key(first)]
    exclude = tuple(dict.fromkeys(t for c in same for t in c.ban_class.exclude))
    return replace(first.ban_class, exclude=exclude, hooks=hooks)


def _key(cand: Candidate) -> tuple[object, ...]:
    cls = replace(cand.ban_class, exclude=(), hooks=())
    return cand.recent.name, cand.recent.seconds, max(cand.recent.hitcount, 1), cls, cand.recipe


def carried(analysis: OffloadAnalysis) -> Iterator[RuleOffload]:
    """Each drop rule's answer once the choice is made: offloadable rules the kernel does
    not carry (another list's) say so."""
    chosen = choose(analysis)
    keep = set() if chosen is None else {
        c.rule.where + str(c.rule.family) + c.rule.hook
        for c in analysis.candidates if _key(c) == _key(chosen[0])}  # fmt: skip
    for answer in analysis.rules:
        if answer.offloaded and answer.where + str(answer.family) + answer.hook not in keep:
            first = chosen[0].rule if chosen else answer
            yield replace(answer, reason=(
                f"offloadable, but the kernel carries one list and class: {first.where}'s"))
        else:
            yield answer


# ---- what the kernel does with a class --------------------------------------------------


def kernel_drops(ban_class: BanClass, packet: Packet, ctstate: int, hook: str) -> bool:
    """Whether recentd's nft chain on ``hook`` (``input``, ``forward``) drops ``packet``
    when its source is banned: the model the nftables backend renders (its excluded
    traffic returns first), for replays that compare offload with user space."""
    if hook not in ban_class.hooks:
        return False
    if any(_has(traffic, packet, ctstate) for traffic in ban_class.exclude):
        return False
    states = int(CtState.NEW) if ban_class.ct_new_only else 0
    return _has(Traffic(ban_class.proto, ban_class.dports, states), packet, ctstate)


def _has(traffic: Traffic, packet: Packet, ctstate: int) -> bool:
    return (
        (not traffic.iif or packet.iif == traffic.iif)
        and (not traffic.proto or packet.proto == traffic.proto)
        and (not traffic.dports or (packet.dport in traffic.dports and not packet.frag_offset))
        and (not traffic.ctstates or bool(ctstate & traffic.ctstates))
    )
