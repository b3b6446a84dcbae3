"""Which parts of a whole-host rule set recentd evaluates, and which stay in the kernel.

Rules (the choice is written down in ``docs/split.md``):

1. A chain is recentd's when recentd can evaluate every rule in it, every chain it
   jumps or goes to is recentd's too, and it holds a `recent` match (itself or through
   its jumps); otherwise the whole chain stays in the kernel's own rule set, untouched,
   and says why (the first rule that keeps it there, FILE:LINE, the chain it jumps to,
   or that it reads no list — the kernel runs it as it is).
1b. A list read in a chain the kernel keeps is xt_recent's everywhere: every chain that
   names it stays in the kernel too (one list, never two), to a fixed point.
2. A rule keeps its chain in the kernel when one of its matches or its target says
   so (``Extension.kernel_only``: NAT, ipsets, routing, payload, rewriting).
3. Tables the kernel alone traverses for recentd — ``nat`` and ``security`` (not in
   :data:`~recentd.rules.model.TRAVERSAL`) — stay in the kernel whole.
4. The kernel runs its part and asks recentd at each **site**: a jump from a kernel
   chain into a recentd chain (or a built-in chain that is recentd's whole). The jump
   becomes a jump to ``RECENTD-Q<k>``, which queues the packet to site ``k``'s queues;
   recentd evaluates the chain and answers ACCEPT or DROP as the chain did. When the
   chain returns, recentd answers ``NF_REPEAT`` with mark ``RESUME | k`` (bits
   :data:`MARK_MASK`): the kernel runs the table's hook again from its first rule,
   which sends that mark to ``RECENTD-R<k>`` — clear the mark, then the rest of every
   chain on the path after the jump (``RECENTD-T<m>``, copies of those rules), innermost
   first, as RETURN would have unwound them. Nothing before the jump runs twice.
5. A construct the sites cannot honour is refused with one line naming it
   (FILE:LINE:COL): a goto into a recentd chain or along a path to one, a kernel chain on
   the path reached from two places, a MARK/CONNMARK setting bits of :data:`MARK_MASK`.

Pure: a :class:`Ruleset` in, a :class:`Split` / :class:`SplitPlan` out; nothing is
installed here (``recentd.live.hooks`` restores the texts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from recentd.errors import RuleError
from recentd.rules.compile import kernel_only
from recentd.rules.model import TRAVERSAL, Chain, Hook, Rule, Ruleset, Table, Target
from recentd.rules.parser import parse_ruleset_text
from recentd.rules.render import save_rule

#: Tables recentd's evaluator walks (the others are the kernel's alone).
EVALUATED_TABLES = frozenset(table for steps in TRAVERSAL.values() for _, table in steps)
#: The packet-mark bits the split uses while a packet resumes (rule 4): the top bit says
#: "resume", the next seven the site (1–127). A rule set must leave them alone.
MARK_MASK = 0xFF000000
RESUME = 0x80000000
SITE_SHIFT = 24
MAX_SITES = 127
#: Conntrack states, one queue each per site (live/hooks.py STATE_QUEUES' order).
STATES = ("INVALID", "ESTABLISHED", "RELATED", "NEW", "UNTRACKED")
NO_LIST = "reads no list: the kernel runs it as it is"


@dataclass(frozen=True, slots=True)
class Part:
    """One chain of one table, and who evaluates it."""

    family: int
    table: str
    chain: str
    rules: int
    by_recentd: bool
    why: str = ""  # for the kernel's: what keeps it there

    def describe(self) -> str:
        program = "ip6tables" if self.family == 6 else "iptables"
        where = f"{program} -t {self.table} {self.chain} ({self.rules} rules)"
        return f"recentd: {where}" if self.by_recentd else f"kernel:  {where}: {self.why}"


@dataclass(frozen=True, slots=True)
class Split:
    parts: tuple[Part, ...]
    #: Lists xt_recent keeps (rule 1b): each with the first kernel rule that reads it.
    kernel_lists: tuple[tuple[str, str], ...] = ()

    @property
    def by_recentd(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.by_recentd)

    @property
    def by_kernel(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if not part.by_recentd)

    def describe(self) -> list[str]:
        return [part.describe() for part in self.parts]

    def owner(self, family: int, table: str, chain: str) -> Part | None:
        return next((p for p in self.parts
                     if (p.family, p.table, p.chain) == (family, table, chain)), None)


def split_ruleset(ruleset: Ruleset) -> Split:
    """Each chain of each table, recentd's or the kernel's (rules 1–3 above)."""
    kernel_lists: dict[str, str] = {}
    while True:  # a list the kernel reads anywhere is the kernel's everywhere: fixed point
        before = len(kernel_lists)
        for table in ruleset.tables:
            reasons = _evaluable(table, kernel_lists) if table.name in EVALUATED_TABLES else {}
            for chain in table.chains:
                if table.name in EVALUATED_TABLES and not reasons[chain.name]:
                    continue
                for rule in chain.rules:
                    for name in _recents(rule):
                        kernel_lists.setdefault(name, f"{rule.source}:{rule.line}")
        if len(kernel_lists) == before:
            break
    parts: list[Part] = []
    for table in ruleset.tables:
        parts.extend(_table_parts(table, kernel_lists))
    return Split(tuple(parts), tuple(kernel_lists.items()))


def _table_parts(table: Table, kernel_lists: dict[str, str]) -> list[Part]:
    if table.name not in EVALUATED_TABLES:
        return [Part(table.family, table.name, chain.name, len(chain.rules), False,
                     f"the {table.name} table is the kernel's") for chain in table.chains]
    reasons = _evaluable(table, kernel_lists)
    lists = _reaching_lists(table)
    return [Part(table.family, table.name, chain.name, len(chain.rules),
                 not reasons[chain.name] and chain.name in lists,
                 reasons[chain.name] or ("" if chain.name in lists else NO_LIST))
            for chain in table.chains]  # fmt: skip


def _evaluable(table: Table, kernel_lists: dict[str, str]) -> dict[str, str]:
    """Per chain, why recentd cannot evaluate it ("" when it can)."""
    reasons = {chain.name: _own_reason(chain, kernel_lists) for chain in table.chains}
    changed = True
    while changed:  # a chain jumping to a kernel chain is the kernel's: to a fixed point
        changed = False
        for chain in table.chains:
            if reasons[chain.name]:
                continue
            for rule in chain.rules:
                target = rule.target.name
                if reasons.get(target):
                    reasons[chain.name] = f"jumps to {target}, which stays in the kernel"
                    changed = True
                    break
    return reasons


def _reaching_lists(table: Table) -> set[str]:
    """The chains that hold a `recent` match, themselves or through their jumps."""
    names = {c.name for c in table.chains}
    found = {c.name for c in table.chains if any(_recents(r) for r in c.rules)}
    changed = True
    while changed:
        changed = False
        for chain in table.chains:
            if chain.name not in found and any(r.target.name in found and r.target.name in names
                                               for r in chain.rules):  # fmt: skip
                found.add(chain.name)
                changed = True
    return found


def _own_reason(chain: Chain, kernel_lists: dict[str, str]) -> str:
    for rule in chain.rules:
        reason = kernel_only(rule)
        if reason is not None:
            return f"{rule.source}:{rule.line}: {reason}"
        for name in _recents(rule):
            if name in kernel_lists:
                return (f"{rule.source}:{rule.line}: list {name!r} is xt_recent's (read at "
                        f"{kernel_lists[name]}, in a chain the kernel keeps)")
    return ""


def _recents(rule: Rule) -> list[str]:
    return [r.name for m in rule.matches if (r := m.ext.recent(m.spec)) is not None]


def needs_split(ruleset: Ruleset) -> bool:
    """Whether some rule is one only the kernel can run (recentd cannot evaluate the
    rule set whole)."""
    return any(table.name not in EVALUATED_TABLES or kernel_only(rule) is not None
               for table, _chain, rule in ruleset.rules())  # fmt: skip


# ---- the sites: where the kernel asks recentd ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    """One place the kernel queues to recentd (rule 4).

    Attributes:
        number: ``k``: queues ``base + 5k + i`` (state ``STATES[i]``), mark ``k + 1``.
        family, table: where.
        hook: the built-in chain the packet's path starts from.
        chain: recentd's chain evaluated there.
        stack: ``(chain, rule index)`` of each jump from the built-in chain to the site
            (empty when the built-in chain is recentd's whole: it cannot return).
        where: FILE:LINE of the jump (or of the chain's first rule).
        ruleset: what recentd evaluates for the site: the hook's built-in chain jumping
            to ``chain``, then marking ``RESUME | k`` (reached only when it returns),
            with every chain recentd evaluates in that table.
    """

    number: int
    family: int
    table: str
    hook: str
    chain: str
    stack: tuple[tuple[str, int], ...]
    where: str
    ruleset: Ruleset
    #: ``(reject type, mark)``: a REJECT of recentd's chain answered as NF_REPEAT with the
    #: mark, which the hook's first rules send to ``RECENTD-X<id>`` (the kernel's REJECT).
    rejects: tuple[tuple[str, int], ...] = ()

    @property
    def resume_mark(self) -> int:
        return RESUME | (self.number + 1) << SITE_SHIFT

    def describe(self) -> str:
        program = "ip6tables" if self.family == 6 else "iptables"
        via = " → ".join(f"{chain} rule {index + 1}" for chain, index in self.stack)
        how = (f"at {self.where} ({via}) → {self.chain}; a RETURN resumes after the jump "
               f"(mark {self.resume_mark:#x}/{MARK_MASK:#x}, NF_REPEAT)") if self.stack else (
               f"the whole built-in chain {self.chain}")  # fmt: skip
        return f"site {self.number}: {program} -t {self.table} {self.hook}: {how}"


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """The kernel's rule text per family, the sites, and what recentd's tables hold."""

    split: Split
    sites: tuple[Site, ...]
    kernel: dict[int, str]
    evaluated: Ruleset
    notes: tuple[str, ...] = ()


def plan_split(ruleset: Ruleset, *, queue_num: int, fail_open: bool) -> SplitPlan:
    """Rule 4's kernel texts and sites for ``ruleset``.

    Raises:
        RuleError: a construct the sites cannot honour (rule 5), naming its line.
    """
    split = split_ruleset(ruleset)
    sites: list[Site] = []
    texts: dict[int, str] = {}
    notes: list[str] = []
    rejects: dict[tuple[int, str, str], int] = {}
    for family in ruleset.families():
        out: list[str] = []
        for table in ruleset.of_family(family):
            out += _table_text(table, split, sites, queue_num=queue_num, fail_open=fail_open,
                               notes=notes, rejects=rejects)
        texts[family] = "".join(f"{line}\n" for line in out)
    if sites:
        _check_marks(ruleset)
    if len(sites) + len(rejects) > MAX_SITES:
        raise RuleError(f"{len(sites)} jumps into recentd's chains and {len(rejects)} REJECT "
                        f"types in them; at most {MAX_SITES} marks", source=sites[-1].where)
    return SplitPlan(split, tuple(sites), texts, _evaluated(ruleset, split), tuple(notes))


def _check_marks(ruleset: Ruleset) -> None:
    """Rule 5: a MARK or CONNMARK that sets bits of :data:`MARK_MASK` could send a packet
    down a resume path (the bits are recentd's while a packet resumes)."""
    for _table, _chain, rule in ruleset.rules():
        target = rule.target
        value = target.ext.mark_bits(target.spec) if target.ext is not None else 0
        if value & MARK_MASK:
            raise RuleError(f"{target.name} sets mark bits {value & MARK_MASK:#x}: the split "
                            f"uses bits {MARK_MASK:#x} to resume after recentd's chains",
                            source=rule.source, line=rule.line,
                            column=target.column)  # fmt: skip


def _evaluated(ruleset: Ruleset, split: Split) -> Ruleset:
    """recentd's chains (built-in chains of the kernel's left empty): the engine that
    holds the tables compiles this."""
    tables = []
    for table in ruleset.tables:
        if table.name not in EVALUATED_TABLES:
            continue
        chains = []
        for chain in table.chains:
            part = split.owner(table.family, table.name, chain.name)
            if part is not None and part.by_recentd:
                chains.append(chain)
            elif chain.builtin:
                chains.append(Chain(chain.name, (), chain.policy))
            elif _evaluable(table, dict(split.kernel_lists))[chain.name] == "":
                chains.append(chain)  # jumped to from recentd's (reads no list itself)
        tables.append(Table(table.family, table.name, tuple(chains), table.source))
    return Ruleset(tuple(tables))


class _TableSites:
    """Finds the sites of one table and renders its kernel text."""

    def __init__(self, table: Table, split: Split, first: int) -> None:
        self.table = table
        self.chains = {c.name: c for c in table.chains}
        self.ours = {c.name for c in table.chains
                     if (p := split.owner(table.family, table.name, c.name)) and p.by_recentd}
        self.first = first
        self.sites: list[tuple[tuple[tuple[str, int], ...], str, Rule | None]] = []
        self.at: dict[tuple[str, int], int] = {}  # the jump rule → its site number
        self.reached: dict[str, tuple[Rule, ...]] = {}
        leads = set(self.ours)
        changed = True
        while changed:
            changed = False
            for chain in table.chains:
                if chain.name not in leads and any(r.target.name in leads for r in chain.rules):
                    leads.add(chain.name)
                    changed = True
        self.leads = leads

    def find(self) -> None:
        for chain in self.table.chains:
            if not chain.builtin:
                continue
            if chain.name in self.ours:
                self._add((), chain.name, None)
            elif chain.name in self.leads:
                self._walk(chain, ())

    def _walk(self, chain: Chain, stack: tuple[tuple[str, int], ...]) -> None:
        for index, rule in enumerate(chain.rules):
            target = rule.target.name
            if target not in self.leads or target not in self.chains:
                continue
            if rule.target.goto:
                raise RuleError(f"-g {target}: a goto on the way to recentd's chain {target} "
                                "cannot be resumed after it; use -j", source=rule.source,
                                line=rule.line, column=rule.target.column)  # fmt: skip
            here = (*stack, (chain.name, index))
            if target in self.ours:
                self.at[(chain.name, index)] = self.first + len(self.sites)
                self._add(here, target, rule)
                continue
            before = self.reached.setdefault(target, (rule,))
            if before[0] is not rule:
                raise RuleError(f"-j {target}: chain {target} leads to recentd's chains and is "
                                f"also jumped to at {before[0].source}:{before[0].line}; a "
                                "RETURN could not tell where to resume. Give each path its own "
                                "chain", source=rule.source, line=rule.line,
                                column=rule.target.column)  # fmt: skip
            self._walk(self.chains[target], here)

    def _add(self, stack: tuple[tuple[str, int], ...], chain: str, rule: Rule | None) -> None:
        self.sites.append((stack, chain, rule))


def _table_text(table: Table, split: Split, sites: list[Site], *, queue_num: int,
                fail_open: bool, notes: list[str],
                rejects: dict[tuple[int, str, str], int]) -> list[str]:
    """The table as the kernel runs it (rule 4); its sites appended to ``sites``."""
    header = [f"*{table.name}"]
    if table.name not in EVALUATED_TABLES:
        return _plain(table)
    found = _TableSites(table, split, len(sites))
    found.find()
    if not found.sites:
        return _plain(table)
    family = table.family
    conts: dict[tuple[str, int], str] = {}
    extra: dict[str, list[str]] = {}
    resume: dict[str, list[str]] = {}
    for offset, (stack, target, rule) in enumerate(found.sites):
        number = found.first + offset
        hook = stack[0][0] if stack else target
        where = f"{rule.source}:{rule.line}" if rule is not None else _first_line(table, target)
        answers = _reject_answers(found, hook, rejects, extra, resume)
        site = Site(number, family, table.name, hook, target, stack, where,
                    _site_ruleset(table, split, hook, target, returns=bool(stack),
                                  number=number),
                    answers)
        sites.append(site)
        bypass = " --queue-bypass" if fail_open else ""
        extra[f"RECENTD-Q{number}"] = [
            f"-A RECENTD-Q{number} -m conntrack --ctstate {state} -j NFQUEUE --queue-num "
            f"{queue_num + 5 * number + i}{bypass}" for i, state in enumerate(STATES)]
        if not stack:
            continue
        steps = [f"-A RECENTD-R{number} -j MARK --set-xmark 0x0/{MARK_MASK:#x}"]
        for depth, (name, index) in enumerate(reversed(stack)):
            cont = conts.setdefault((name, index), f"RECENTD-T{len(conts)}")
            last = depth == len(stack) - 1
            steps.append(f"-A RECENTD-R{number} {'-g' if last else '-j'} {cont}")
        extra[f"RECENTD-R{number}"] = steps
        resume.setdefault(hook, []).append(
            f"-A {hook} -m mark --mark {site.resume_mark:#x}/{MARK_MASK:#x} -g RECENTD-R{number}")
    for (name, index), cont in conts.items():
        rules = found.chains[name].rules[index + 1:]
        extra[cont] = [_kernel_rule(cont, r, (name, index + 1 + i), found, family)
                       for i, r in enumerate(rules)]  # fmt: skip
        notes += [f"{r.source}:{r.line}: -m {m.name} after a jump into recentd's chain is "
                  f"copied into {cont} (a RETURN resumes there): its packets meet a "
                  f"{m.name} state of their own" for r in rules for m in r.matches
                  if m.name in ("limit", "statistic", "quota")]  # fmt: skip
    declared: list[str] = []
    body: list[str] = []
    for chain in table.chains:
        if chain.name in found.ours and not chain.builtin:
            continue
        declared.append(f":{chain.name} {chain.policy or '-'} [0:0]")
        body += resume.get(chain.name, [])
        if chain.name in found.ours:  # a built-in chain that is recentd's whole
            number = next(s.number for s in sites[found.first:] if s.chain == chain.name
                          and not s.stack)  # fmt: skip
            body.append(f"-A {chain.name} -j RECENTD-Q{number}")
            continue
        body += [_kernel_rule(chain.name, r, (chain.name, i), found, family)
                 for i, r in enumerate(chain.rules)]  # fmt: skip
    declared += [f":{name} - [0:0]" for name in extra]
    for lines in extra.values():
        body += lines
    return [*header, *declared, *body, "COMMIT"]


def _reject_answers(found: _TableSites, hook: str, rejects: dict[tuple[int, str, str], int],
                    extra: dict[str, list[str]],
                    resume: dict[str, list[str]]) -> tuple[tuple[str, int], ...]:  # fmt: skip
    """Each REJECT type of recentd's chains in this table: a mark (ids from 127 down, one
    per family, hook and type) and the kernel chain ``RECENTD-X<id>`` that rejects."""
    table = found.table
    answers = []
    for kind in sorted({r.target.spec for c in table.chains if c.name in found.ours
                        for r in c.rules if r.target.name == "REJECT"}):  # fmt: skip
        key = (table.family, hook, kind)
        if key not in rejects:
            ident = rejects[key] = MAX_SITES - len(rejects)
            mark = RESUME | ident << SITE_SHIFT
            proto = "-p tcp " if kind == "tcp-reset" else ""
            extra[f"RECENTD-X{ident}"] = [
                f"-A RECENTD-X{ident} -j MARK --set-xmark 0x0/{MARK_MASK:#x}",
                f"-A RECENTD-X{ident} {proto}-j REJECT --reject-with {kind}"]
            resume.setdefault(hook, []).append(
                f"-A {hook} -m mark --mark {mark:#x}/{MARK_MASK:#x} -g RECENTD-X{ident}")
        answers.append((kind, RESUME | rejects[key] << SITE_SHIFT))
    return tuple(answers)


def _plain(table: Table) -> list[str]:
    lines = [f"*{table.name}"]
    lines += [f":{c.name} {c.policy or '-'} [0:0]" for c in table.chains]
    lines += [save_rule(c.name, r, table.family) for c in table.chains for r in c.rules]
    return [*lines, "COMMIT"]


def _kernel_rule(into: str, rule: Rule, at: tuple[str, int], found: _TableSites,
                 family: int) -> str:
    number = found.at.get(at)
    if number is not None:
        rule = replace(rule, target=Target(f"RECENTD-Q{number}"))
    return save_rule(into, rule, family)


def _first_line(table: Table, chain: str) -> str:
    found = table.chain(chain)
    rules = found.rules if found is not None else ()
    return f"{rules[0].source}:{rules[0].line}" if rules else f"{table.source}: {chain}"


def _site_ruleset(table: Table, split: Split, hook: str, chain: str, *, returns: bool,
                  number: int) -> Ruleset:
    """What recentd evaluates at a site (see :attr:`Site.ruleset`)."""
    evaluable = _evaluable(table, dict(split.kernel_lists))
    users = tuple(c for c in table.chains if not c.builtin and not evaluable[c.name])
    others = tuple(Chain(c.name, (), "ACCEPT") for c in table.chains
                   if c.builtin and c.name != hook)  # the engine walks every built-in chain
    if not returns:
        builtin = table.chain(chain)
        assert builtin is not None
        return Ruleset((Table(table.family, table.name, (builtin, *others, *users),
                              table.source),))  # fmt: skip
    mark = RESUME | (number + 1) << SITE_SHIFT
    text = (f"*{table.name}\n:{hook} ACCEPT [0:0]\n:{chain} - [0:0]\n-A {hook} -j {chain}\n"
            f"-A {hook} -j MARK --set-xmark {mark:#x}/{MARK_MASK:#x}\nCOMMIT\n")
    entry = parse_ruleset_text(text, source="<site>", family=table.family).ruleset
    parsed = entry.table(table.family, table.name)
    assert parsed is not None
    head = parsed.chain(hook)
    assert head is not None
    return Ruleset((Table(table.family, table.name, (head, *others, *users), table.source),))


def hook_of(site: Site) -> Hook:
    return Hook(site.hook)
