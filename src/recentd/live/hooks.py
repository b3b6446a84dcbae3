"""recentd's own iptables hooks: which packets the kernel sends to the NFQUEUE.

Rules of the hooks:

1. recentd owns chains named ``RECENTD-IN``, ``RECENTD-FWD`` and ``RECENTD-OUT`` in
   the filter table, and one jump to each from INPUT/FORWARD/OUTPUT carrying the
   comment ``recentd-hook``. It never touches any other rule.
2. Only what the rules can decide on is queued (:func:`derive_filters`), so the
   rest of the traffic never leaves the kernel.
3. Fail-open: every NFQUEUE rule has ``--queue-bypass`` unless fail-closed was
   asked for, so a dead daemon (even SIGKILLed) lets traffic through.
4. Everything is run as argv lists of the host's own flavour of iptables — legacy
   (``iptables-legacy``) or nft (``iptables-nft``), chosen by :func:`choose_flavour`
   from where the host's rules are, so ``iptables -L`` shows recentd's chains beside
   the admin's; a failure raises :class:`BackendError` with argv, exit status and stderr.
5. :meth:`Hooks.remove` deletes exactly what :meth:`Hooks.install` added, and
   :meth:`Hooks.install` first removes what a crashed earlier run left.
6. Which hooks at all is :func:`plan_hooks`'s answer (docs/split.md): the NFQUEUE hooks
   above for a rule set recentd evaluates whole; **none** when every decision is carried
   by the kernel's ban set (the kernel then runs the rest of the rules itself,
   :class:`KernelRules`); queueing at the jumps into recentd's chains when the rule set
   holds rules only the kernel can run (:mod:`recentd.rules.split`).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from recentd.errors import BackendError, ConfigError
from recentd.live.offload import analyse, carried
from recentd.recent import Command, RecentMatch
from recentd.rules.compile import kernel_only
from recentd.rules.interest import interests
from recentd.rules.model import Chain, CtState, Rule, Ruleset, Table
from recentd.rules.render import render_save
from recentd.rules.split import Site, needs_split, plan_split

OWN_CHAINS = {"INPUT": "RECENTD-IN", "FORWARD": "RECENTD-FWD", "OUTPUT": "RECENTD-OUT"}
COMMENT = "recentd-hook"
#: The binaries of each flavour of iptables, per family.
FLAVOURS = {
    "legacy": {4: "iptables-legacy", 6: "ip6tables-legacy"},
    "nft": {4: "iptables-nft", 6: "ip6tables-nft"},
}
BINARIES = FLAVOURS["legacy"]
PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
#: Queue ``N + i`` receives the packets in state ``STATE_QUEUES[i]``: the queue a
#: packet arrives on carries the kernel's conntrack verdict to user space.
STATE_QUEUES = ("INVALID", "ESTABLISHED", "RELATED", "NEW", "UNTRACKED")

#: Runs one argv; returns (returncode, stderr). Replaced by a recorder in tests.
Runner = Callable[[Sequence[str]], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """One class of packets to queue.

    Attributes:
        family: 4 or 6.
        chain: INPUT, FORWARD or OUTPUT.
        proto: protocol number, 0 for any.
        dports: destination port ranges ``(low, high)``; empty for any.
        states: conntrack states (``CtState`` bits); 0 for any.
    """

    family: int
    chain: str
    proto: int = 0
    dports: tuple[tuple[int, int], ...] = ()
    states: int = 0


def parse_queue_filter(text: str) -> list[QueueFilter]:
    """``--queue-filter`` values: ``[4|6|46:]CHAIN[:PROTO[:PORT[-PORT],…]]``.

    Raises:
        ConfigError: an unknown chain, protocol or a bad port.
    """
    parts = text.split(":")
    families: tuple[int, ...] = (4, 6)
    if parts[0] in ("4", "6", "46"):
        families = tuple(int(c) for c in parts.pop(0))
    chain = parts[0].upper() if parts else ""
    if chain not in OWN_CHAINS:
        raise ConfigError(f"unknown chain {chain!r}", key="--queue-filter", value=text)
    proto = _proto(parts[1], text) if len(parts) > 1 else 0
    ports = tuple(_port_range(p, text) for p in parts[2].split(",")) if len(parts) > 2 else ()
    return [QueueFilter(f, chain, proto, ports) for f in families]


def _proto(name: str, text: str) -> int:
    if name.isdigit():
        return int(name)
    if name.lower() not in PROTO_NAMES:
        raise ConfigError(f"unknown protocol {name!r}", key="--queue-filter", value=text)
    return PROTO_NAMES[name.lower()]


def _port_range(item: str, text: str) -> tuple[int, int]:
    low, _, high = item.partition("-")
    try:
        pair = int(low), int(high or low)
    except ValueError:
        raise ConfigError(f"bad port {item!r}", key="--queue-filter", value=text) from None
    if not 0 <= pair[0] <= pair[1] <= 65535:
        raise ConfigError(f"bad port range {item!r}", key="--queue-filter", value=text)
    return pair


# ---- deriving the filters from the rules ------------------------------------------------------


def derive_filters(ruleset: Ruleset) -> list[QueueFilter]:
    """What must be queued for ``ruleset`` to decide every packet it can decide.

    Conservative: a built-in chain whose policy is not ACCEPT queues everything;
    otherwise a packet no rule of the chain can match meets the ACCEPT policy in
    user space too, so only the union of the rules' protocol/port/state classes is
    queued, and a rule that cannot be narrowed widens the chain to everything.
    """
    filters: list[QueueFilter] = []
    for table in ruleset.tables:
        if table.name != "filter":
            continue
        for chain in table.chains:
            if chain.name in OWN_CHAINS and (chain.rules or chain.policy not in (None, "ACCEPT")):
                filters.extend(_chain_filters(table.family, chain.name, chain.policy, chain.rules))
    if any(table.name != "filter" and _active(table.chains) for table in ruleset.tables):
        # raw/mangle rules see packets before filter: queue what the engine's own
        # interest analysis says any table of the path can act on (no state narrowing).
        filters += [f for f in _interest_filters(ruleset) if f not in filters]
    return filters


def _active(chains: Iterable[Chain]) -> bool:
    return any(chain.rules or chain.policy not in (None, "ACCEPT") for chain in chains)


def _interest_filters(ruleset: Ruleset) -> list[QueueFilter]:
    out: list[QueueFilter] = []
    for (family, path), interest in sorted(
        interests(ruleset).items(), key=lambda kv: (kv[0][0], kv[0][1].value)
    ):
        if interest.everything:
            out.append(QueueFilter(family, path.value))
            continue
        for proto, low, high in sorted(interest.selectors):
            ports = () if (low, high) == (0, 65535) else ((low, high),)
            out.append(QueueFilter(family, path.value, proto, ports))
    return out


def _chain_filters(
    family: int, name: str, policy: str | None, rules: Iterable[object]
) -> list[QueueFilter]:
    if policy not in (None, "ACCEPT"):
        return [QueueFilter(family, name)]
    out: list[QueueFilter] = []
    for rule in rules:
        narrowed = _rule_filter(family, name, rule)
        if narrowed is None:
            return [QueueFilter(family, name)]
        if narrowed not in out:
            out.append(narrowed)
    return out


def _rule_filter(family: int, chain: str, rule: object) -> QueueFilter | None:
    ip = rule.ip  # type: ignore[attr-defined]
    if ip.inv_proto:
        return None
    states, dports = 0, cast(tuple[tuple[int, int], ...], ())
    for match in rule.matches:  # type: ignore[attr-defined]
        required = match.ext.ctstates(match.spec)
        if required is not None:
            states = required
        ranges = match.ext.dports(match.spec)
        if ranges is not None:
            dports = ranges
    return QueueFilter(family, chain, ip.proto, dports, states)


# ---- the argv lists -------------------------------------------------------------------------


def _nfqueue_argv(flt: QueueFilter, queue_num: int, fail_open: bool) -> list[list[str]]:
    base = ["-w", "-t", "filter", "-A", OWN_CHAINS[flt.chain]]
    if flt.proto:
        base += ["-p", str(flt.proto)]
    proto_name = {6: "tcp", 17: "udp"}.get(flt.proto)
    ports = (
        [["-m", proto_name, "--dport", f"{lo}:{hi}"] for lo, hi in flt.dports] if proto_name else []
    )
    bypass = ["--queue-bypass"] if fail_open else []
    states = flt.states or sum(int(s) for s in CtState)
    out = []
    for offset, name in enumerate(STATE_QUEUES):
        if states & CtState[name]:
            tail = ["-m", "conntrack", "--ctstate", name,
                    "-j", "NFQUEUE", "--queue-num", str(queue_num + offset), *bypass]  # fmt: skip
            out += [base + port + tail for port in ports or [[]]]
    return out


def _jump(chain: str, action: str) -> list[str]:
    return ["-w", "-t", "filter", action, chain, *(["1"] if action == "-I" else []),
            "-m", "comment", "--comment", COMMENT, "-j", OWN_CHAINS[chain]]  # fmt: skip


class Hooks:
    """Install and remove recentd's hooks for a set of filters.

    Args:
        filters: what to queue.
        queue_num: the NFQUEUE number.
        fail_open: add ``--queue-bypass``.
        runner: runs one argv (default: :func:`run_argv`).
        flavour: ``legacy`` or ``nft`` (:data:`FLAVOURS`, :func:`choose_flavour`).
    """

    def __init__(
        self,
        filters: Sequence[QueueFilter],
        queue_num: int,
        *,
        fail_open: bool = True,
        runner: Runner | None = None,
        flavour: str = "legacy",
    ) -> None:
        self.binaries = FLAVOURS[flavour]
        self.flavour = flavour
        self.filters = list(filters)
        self.queue_num = queue_num
        self.fail_open = fail_open
        self._run = runner or run_argv
        self.installed = False

    def install_plan(self) -> list[list[str]]:
        """The argv lists :meth:`install` runs after removing stale hooks."""
        plan: list[list[str]] = []
        for family in sorted({f.family for f in self.filters}):
            binary = self.binaries[family]
            chains = [
                c
                for c in OWN_CHAINS
                if any(f.family == family and f.chain == c for f in self.filters)
            ]
            for chain in chains:
                plan.append([binary, "-w", "-t", "filter", "-N", OWN_CHAINS[chain]])
                for flt in self.filters:
                    if flt.family == family and flt.chain == chain:
                        plan += [
                            [binary, *a] for a in _nfqueue_argv(flt, self.queue_num, self.fail_open)
                        ]
                plan.append([binary, *_jump(chain, "-I")])
        return plan

    def replace(self, filters: Sequence[QueueFilter]) -> bool:
        """Queue ``filters`` from now on; reinstall if installed. Returns whether they changed.

        The chains are rebuilt in place (remove, then install): for those few
        iptables calls nothing is queued, which is the fail-open direction.
        """
        if list(filters) == self.filters:
            return False
        self.filters = list(filters)
        if self.installed:
            self.install()
        return True

    def install(self) -> None:
        self.remove_stale()
        self.installed = True  # so a failure half-way still cleans up what was added
        for argv in self.install_plan():
            self._check(argv)

    def remove(self) -> None:
        """Remove every recentd hook (ours or a crashed run's); never raises for absent ones."""
        self.remove_stale()
        self.installed = False

    def remove_stale(self) -> int:
        """Delete recentd's jumps and chains in both families. Returns how many jumps."""
        removed = 0
        for binary in self.binaries.values():
            for chain, own in OWN_CHAINS.items():
                while self._run([binary, *_jump(chain, "-D")])[0] == 0:
                    removed += 1
                self._run([binary, "-w", "-t", "filter", "-F", own])
                self._run([binary, "-w", "-t", "filter", "-X", own])
        return removed

    def _check(self, argv: list[str]) -> None:
        code, stderr = self._run(argv)
        if code != 0:
            raise BackendError(
                f"{shlex.join(argv)} failed", backend="iptables",
                argv=tuple(argv), returncode=code, stderr=stderr,
            )  # fmt: skip


def count_rules(save_text: str | None) -> int:
    """The rules (``-A`` lines) an ``iptables-save`` output holds (``None``: no binary)."""
    return 0 if save_text is None else sum(
        line.startswith("-A ") for line in save_text.splitlines())


def choose_flavour(legacy_save: str | None, nft_save: str | None,
                   version: str) -> tuple[str, str]:
    """The flavour recentd's hooks go in, and why: where the host's rules are; when they
    are in both, what the host's ``iptables`` is (``iptables -V``); in neither, legacy
    (recentd's hooks are then the only rules, and its tests' namespaces stay as they
    were). Each ``*_save`` is that flavour's ``iptables-save`` output, ``None`` without
    the binary."""
    legacy, nft = count_rules(legacy_save), count_rules(nft_save)
    default = "nft" if "nf_tables" in version else "legacy"
    if nft_save is None or legacy_save is None:
        only = "legacy" if nft_save is None else "nft"
        return only, f"only iptables-{only} is installed"
    if nft and not legacy:
        return "nft", f"the host's rules are in iptables-nft ({nft} rules, none in legacy)"
    if legacy and not nft:
        return "legacy", f"the host's rules are in iptables-legacy ({legacy} rules, none in nft)"
    if not legacy:
        return "legacy", "no rules in either flavour: legacy, recentd's default"
    return default, (f"rules in both flavours ({legacy} legacy, {nft} nft); the host's "
                     f"iptables is {'iptables-nft' if default == 'nft' else 'iptables-legacy'} "
                     f"({version.strip() or 'unknown'})")  # fmt: skip


def detect_flavour() -> tuple[str, str]:
    """:func:`choose_flavour` for this host (runs the two ``iptables-save`` and
    ``iptables -V``; nothing is changed)."""
    return choose_flavour(_output(["iptables-legacy-save"]), _output(["iptables-nft-save"]),
                          _output(["iptables", "-V"]) or "")  # fmt: skip


def _output(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def run_argv(argv: Sequence[str]) -> tuple[int, str]:
    """Run one command (never through a shell)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendError(str(exc), backend="iptables", argv=tuple(argv)) from exc
    return done.returncode, done.stderr


# ---- which hooks at all: the plan ------------------------------------------------------------

#: :attr:`HookPlan.mode` values.
QUEUE, HOOKLESS, SPLIT = "queue", "hookless", "split"


@dataclass(frozen=True, slots=True)
class HookPlan:
    """What recentd puts into the kernel for a rule set (module rule 6).

    Attributes:
        mode: :data:`QUEUE` (recentd evaluates the whole rule set; NFQUEUE hooks),
            :data:`HOOKLESS` (no NFQUEUE hook: the kernel runs the rules, the ban set
            carries every decision) or :data:`SPLIT` (the kernel runs its part and
            queues at the jumps into recentd's chains).
        evaluated: the rules recentd's engine compiles (holds every `recent` list).
        kernel: per family, the ``iptables-restore`` text recentd restores into the
            kernel (``None``: none).
        why: one sentence for ``--dry-run`` and the log.
    """

    mode: str
    evaluated: Ruleset
    kernel: dict[int, str] | None = None
    why: str = ""
    #: SPLIT: where the kernel queues to recentd, and notes for ``--dry-run``.
    sites: tuple[Site, ...] = ()
    notes: tuple[str, ...] = ()


def _where(rule: Rule) -> str:
    return f"{rule.source}:{rule.line}"


def _recents(rule: Rule) -> list[RecentMatch]:
    return [r for m in rule.matches if (r := m.ext.recent(m.spec)) is not None]


def hookless_reason(ruleset: Ruleset) -> tuple[frozenset[str], str]:
    """Whether no packet ever needs user space: ``(carried rules, "")`` when every rule
    with a `recent` match only reads its list (``--rcheck``, no ``--reap``: no packet
    writes a list) and is a drop the kernel's ban set carries — the offload analysis's
    own answer (:func:`recentd.live.offload.carried`), on every path that reaches it; else
    ``(∅, why not)``, naming the first rule that needs user space."""
    answers: dict[tuple[str, int], list[bool]] = {}
    reasons: dict[tuple[str, int], str] = {}
    for answer in carried(analyse(ruleset)):
        key = (answer.where, answer.family)
        answers.setdefault(key, []).append(answer.offloaded)
        if not answer.offloaded:
            reasons.setdefault(key, answer.reason)
    carried_rules: set[str] = set()
    seen_recent = False
    for table, _chain, rule in ruleset.rules():
        recents = _recents(rule)
        if not recents:
            continue
        seen_recent = True
        where = _where(rule)
        for recent in recents:
            if recent.command is not Command.CHECK or recent.reap:
                return frozenset(), f"{where} writes list {recent.name!r} on packets"
        verdicts = answers.get((where, table.family))
        if not verdicts or not all(verdicts):
            why = reasons.get((where, table.family), "its answer is not a drop the kernel set "
                              "carries")  # fmt: skip
            return frozenset(), f"{where} needs user space: {why}"
        carried_rules.add(where)
    if not seen_recent:
        return frozenset(), "no rule reads a list"
    return frozenset(carried_rules), ""


def without_rules(ruleset: Ruleset, drop: Callable[[Rule], bool]) -> Ruleset:
    """``ruleset`` with every rule ``drop`` says yes to left out (chains and policies kept)."""
    return Ruleset(tuple(
        Table(table.family, table.name, tuple(
            Chain(chain.name, tuple(r for r in chain.rules if not drop(r)), chain.policy)
            for chain in table.chains), table.source)
        for table in ruleset.tables))  # fmt: skip


def without_empty(ruleset: Ruleset) -> Ruleset | None:
    """``ruleset`` without the tables that hold no rule and only ACCEPT policies (restoring
    one would only flush the host's own rules of that table); ``None`` when none is left."""
    tables = tuple(table for table in ruleset.tables
                   if any(chain.rules or chain.policy not in (None, "ACCEPT")
                          for chain in table.chains))  # fmt: skip
    return Ruleset(tables) if tables else None


def plan_hooks(ruleset: Ruleset, *, offload: bool, queue_filters: bool = False,
               queue_num: int = 0, fail_open: bool = True, split: bool = False) -> HookPlan:
    """The hooks for ``ruleset`` (module rule 6). ``offload``: a ban set may carry drops;
    ``queue_filters``: the admin gave ``--queue-filter`` (the queue is then kept);
    ``split``: queue at the jumps even when recentd could evaluate the rule set whole.

    Raises:
        RuleError: the split cannot honour a construct (``rules/split.py`` rule 5).
    """
    why_not = ""
    if offload and not queue_filters and not split:
        carried_rules, why_not = hookless_reason(ruleset)
        if carried_rules:
            kept = without_empty(without_rules(ruleset,
                                               lambda rule: _where(rule) in carried_rules))
            kernel = None if kept is None else {
                family: render_save(kept, family) for family in kept.families()}
            evaluated = without_rules(ruleset, lambda rule: kernel_only(rule) is not None)
            return HookPlan(HOOKLESS, evaluated, kernel, (
                "no NFQUEUE hook: every decision of the rule set is carried by the kernel "
                f"ban set (its lists are fed only by events and read only by the offloaded "
                f"--rcheck drops at {', '.join(sorted(carried_rules))}); the kernel runs the "
                "other rules itself"))  # fmt: skip
    if split or needs_split(ruleset):
        plan = plan_split(ruleset, queue_num=queue_num, fail_open=fail_open)
        why = (f"split: the kernel runs the rule set and queues at {len(plan.sites)} jump(s) "
               "into recentd's chains (queues "
               f"{queue_num}-{queue_num + len(STATE_QUEUES) * len(plan.sites) - 1})"
               if plan.sites else "split: no chain is recentd's (every list is read beside "
               "rules only the kernel can run): the kernel runs the whole rule set, "
               "xt_recent included, and nothing is queued")  # fmt: skip
        return HookPlan(SPLIT, plan.evaluated, plan.kernel, why, plan.sites, plan.notes)
    return HookPlan(QUEUE, ruleset, None,
                    "NFQUEUE hooks: recentd evaluates the rule set in user space"
                    + (f" (a hook is needed: {why_not})" if why_not else ""))


# ---- the kernel's part: the admin's rules, restored as they are ---------------------------

#: The restore/save programs of each flavour, per family.
RESTORE = {
    "legacy": {4: "iptables-legacy-restore", 6: "ip6tables-legacy-restore"},
    "nft": {4: "iptables-nft-restore", 6: "ip6tables-nft-restore"},
}
SAVE = {
    "legacy": {4: "iptables-legacy-save", 6: "ip6tables-legacy-save"},
    "nft": {4: "iptables-nft-save", 6: "ip6tables-nft-save"},
}

#: In a saved table, the sign of a crashed run's kernel part (rules/split.py's chains).
STALE_MARKER = ":RECENTD-Q"

#: Runs one argv with text on its standard input; returns (returncode, stdout, stderr).
TextRunner = Callable[[Sequence[str], str], tuple[int, str, str]]


class KernelRules:
    """The rules the kernel runs itself, restored with ``iptables-restore`` (every table
    the text names is replaced, as the admin's own ``iptables-restore`` would), and the
    tables as they were before, restored at :meth:`remove`.

    Args:
        kernel: per family, the ``iptables-restore`` text of the kernel's part.
        runner: runs one argv with standard input (default: :func:`run_text`).
        flavour: ``legacy`` or ``nft``.
        original: per family, the admin's rule file as it is: put back at stop in place
            of tables that were a crashed run's split when recentd started.
    """

    def __init__(self, kernel: dict[int, str], *, runner: TextRunner | None = None,
                 flavour: str = "legacy",
                 original: dict[int, str] | None = None) -> None:  # fmt: skip
        self.kernel = dict(kernel)
        self.flavour = flavour
        self._run = runner or run_text
        self.saved: dict[int, str] = {}
        #: What to put back when the tables found at start are a crashed run's (they hold
        #: recentd's chains): the admin's rule file as it is, per family.
        self.original = dict(original or {})
        #: Set when the tables found at start were a crashed run's (the caller logs it).
        self.found_stale = False

    def texts(self) -> dict[int, str]:
        """Per family, what is restored."""
        return self.kernel

    def install_plan(self) -> list[list[str]]:
        """The restore commands (``--dry-run`` prints them with their input)."""
        return [[RESTORE[self.flavour][family], "-w"] for family in self.texts()]

    def install(self) -> None:
        """Save the tables the rule set names, then restore the kernel's part.

        Raises:
            BackendError: a save or restore failed (argv, status, stderr).
        """
        for family, text in self.texts().items():
            names = [line[1:].strip() for line in text.splitlines() if line.startswith("*")]
            before = ""
            for name in names:
                code, out, err = self._run([SAVE[self.flavour][family], "-t", name], "")
                if code != 0:
                    argv = (SAVE[self.flavour][family], "-t", name)
                    raise BackendError(f"{shlex.join(argv)} failed", backend="iptables",
                                       argv=argv, returncode=code, stderr=err)  # fmt: skip
                before += out
            if STALE_MARKER in before and family in self.original:
                self.found_stale, before = True, self.original[family]
            self.saved[family] = before
            self._restore(family, text)

    def remove(self) -> None:
        """Put back the tables as they were before :meth:`install` (never raises for a
        table that cannot be restored: it is logged by the caller's cleanup)."""
        saved, self.saved = self.saved, {}
        for family, text in saved.items():
            self._restore(family, text)

    def _restore(self, family: int, text: str) -> None:
        argv = [RESTORE[self.flavour][family], "-w"]
        code, _out, err = self._run(argv, text)
        if code != 0:
            raise BackendError(f"{shlex.join(argv)} failed", backend="iptables",
                               argv=tuple(argv), returncode=code, stderr=err)  # fmt: skip


def run_text(argv: Sequence[str], text: str) -> tuple[int, str, str]:
    """Run one command with ``text`` on its standard input (never through a shell)."""
    try:
        done = subprocess.run(list(argv), input=text, capture_output=True, text=True,
                              check=False, timeout=60)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendError(str(exc), backend="iptables", argv=tuple(argv)) from exc
    return done.returncode, done.stdout, done.stderr
