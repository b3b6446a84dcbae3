"""The live daemon: one thread, one ``selectors`` loop.

What the loop watches:

- the NFQUEUE socket: drain a batch, decide, answer with one datagram; a ban the
  offload policy allows is a :class:`~recentd.commands.Ban` carried out by the
  :class:`~recentd.enforcer.Enforcer` the moment it is decided (before the rest of
  the batch), and the source's packets already queued are dropped without asking the
  rules (see :mod:`recentd.live.verdict`);
- evidence sources (:mod:`recentd.sources`): a readable source's observations are
  written into the tables as its :class:`~recentd.observation.Route` s say, at the
  tick their wall time maps to (:func:`recentd.clock.tick_of_wall`), and then the
  offload policy looks at each written address at once
  (:meth:`~recentd.live.policy.BanPlanner.plan_address`): a log line that puts an
  address over the limit bans it with no packet needed. Sources without a
  descriptor are polled every ~100 ms. Their checkpoints are saved in the state
  directory every second and at stop, and given back to them at start;
- a wakeup socket for signals: SIGTERM/SIGINT end the loop, SIGHUP reloads the
  rules (a bad file keeps the old rules and logs why);
- the control socket and any other *adapters*: objects with ``fileno()`` and
  ``on_ready()``;
- timers: every ~100 ms the tables' changes are appended to the journal and the
  polled sources are read; every second (or half the systemd watchdog interval, if
  shorter) bans whose table entry changed are withdrawn (an
  :class:`~recentd.commands.Unban` through the same enforcer), the journal is
  synced, source checkpoints are saved, systemd is pinged.

Every command, from a packet, an observation, a restore or the timer, goes through
the one enforcer, which is also the one holder of ban state.

Start order: rules (they create the tables), state restore, control socket and
mount, offload table (with the bans the restored tables already imply), queue
bound, then hooks — or, per the hook plan (:func:`recentd.live.hooks.plan_hooks`), the
kernel's part of the rule set restored (the split's queue rules in it), or no queue at
all when the ban set carries every decision — then ``READY=1``, so traffic is never
queued to nobody and nothing is decided against empty tables. Stop order is the
reverse, and runs on every way out of :meth:`Daemon.run`.

Time: the loop reads one :class:`~recentd.clock.Clock` (monotonic ticks, and
both clocks together when the wall time matters: journal records, observations,
a ban's expiry shown to people).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import selectors
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recentd import defaults
from recentd.backends import BanBackend
from recentd.clock import Clock, MonotonicClock, tick_of_wall
from recentd.commands import Ban, Command, Unban
from recentd.control import systemd
from recentd.enforcer import Enforcer, Listener
from recentd.errors import BackendError, ConfigError, RecentError, StateFileError
from recentd.live.hooks import (
    HOOKLESS,
    QUEUE,
    SPLIT,
    STATE_QUEUES,
    HookPlan,
    Hooks,
    KernelRules,
    QueueFilter,
    Runner,
    TextRunner,
    derive_filters,
    plan_hooks,
)
from recentd.live.policy import BanPlanner, Drops, OffloadCase, find_offload_case
from recentd.live.sites import SitePipeline
from recentd.live.verdict import Pipeline, engine_decider
from recentd.metrics.stats import daemon_stats
from recentd.metrics.tally import Tally
from recentd.observation import (
    Action,
    Address,
    Evidence,
    Observation,
    Route,
    TableWrite,
    apply_observation,
)
from recentd.pam.policy import Forget
from recentd.policy import purge as purging
from recentd.policy.allow import address_of
from recentd.policy.conntrack import cut_connections
from recentd.policy.core import RESTORE, Policy
from recentd.policy.escalation import ban_observation
from recentd.policy.history import Event as HistoryEvent
from recentd.policy.hostaddrs import read_host_addresses
from recentd.policy.settings import PolicyConfig
from recentd.policy.store import SavedGrant, load_history, save_history
from recentd.recent import ModuleParams, RecentTables
from recentd.recent.ticks import ClockReading, ns_to_ticks, wall_of_tick
from recentd.rules import Engine, Ruleset
from recentd.rules.parser import load_rule_files
from recentd.rules.rawmemo import RawMemo
from recentd.rules.render import render_save
from recentd.sources import Checkpoint, ObservationSource
from recentd.sources.queue import QueueSource
from recentd.state import StateStore
from recentd.state.checkpoints import load_checkpoints, save_checkpoints

log = logging.getLogger("recentd.daemon")

TIMER_S = 1.0
RECORD_S = 0.1
#: How often a source without a descriptor is read.
POLL_S = 0.1
#: How often the host's own addresses are read again (for the allow list).
HOST_READ_S = 60.0
#: The share of the daemon's time that rewriting the policy file may take (save_policy).
POLICY_SAVE_SHARE = 0.05
#: Evidence that carries its own ban (the fleet's), rather than writing a list.
FLEET_EVIDENCE = (Evidence.FLEET_BAN, Evidence.FLEET_UNBAN)


class StampReader(Protocol):
    """The kernel's log of the drops it made for recentd's bans (live/nflog.py)."""

    def fileno(self) -> int: ...

    #: Times log messages were lost (the socket's buffer overflowed).
    lost: int

    def read_drops(self, now: ClockReading) -> list[Drops]: ...

    def close(self) -> None: ...


class Adapter(Protocol):
    """Something the loop watches besides the queue (e.g. the control socket)."""

    def fileno(self) -> int: ...

    def on_ready(self) -> None: ...


#: Reads the rules files; raises :class:`~recentd.errors.RuleError` (file:line:col) or OSError.
RulesLoader = Callable[[Sequence[Path]], Ruleset]
#: Opens a source, resuming from its saved checkpoint (``None``: from where it starts).
SourceFactory = Callable[[Checkpoint | None], ObservationSource]


def load_rules(paths: Sequence[Path]) -> Ruleset:
    """Parse every file of ``paths`` into one rule set (a host keeps ``rules.v4`` and
    ``rules.v6``, each read as its own family); each notice (e.g. a typographic dash read
    as ``--``) is logged.

    Raises:
        RuleError: an invalid line (file:line:col), or one table of one family given in
            two files (iptables-restore of the second would replace the first).
        SourceError: a file cannot be read.
    """
    result = load_rule_files(paths)
    for notice in result.notices:
        log.warning("%s", notice)
    return result.ruleset


@dataclass(frozen=True)
class SourceSpec:
    """One evidence source the daemon watches.

    Attributes:
        key: names the source's checkpoint in the state directory (stable across runs:
            ``"file:/var/log/auth.log"``).
        open: opens the source, from a checkpoint or fresh.
        routes: which lists its observations write (:class:`~recentd.observation.Route`).
    """

    key: str
    open: SourceFactory
    routes: tuple[Route, ...]


@dataclass
class DaemonConfig:
    """What one daemon runs (built from :class:`recentd.config.Config` by ``recentd run``)."""

    rules: Sequence[Path]
    queue_num: int = defaults.QUEUE_NUM
    fail_open: bool = True
    offload: bool = True
    filters: list[QueueFilter] = field(default_factory=list)
    hz: int = defaults.HZ
    socket: Path | None = None
    state_dir: Path | None = None
    mount: Path | None = None
    params: ModuleParams | None = None
    sources: list[SourceSpec] = field(default_factory=list)
    #: Prometheus exposition over HTTP at ``ADDR:PORT`` (or a bare port: 127.0.0.1).
    metrics: str | None = None
    #: node_exporter textfile, rewritten every second (atomic rename).
    metrics_textfile: Path | None = None
    #: Allow lists, per-list settings (``[allow]``, ``[lists.NAME]``); None: the defaults.
    policy: PolicyConfig | None = None
    #: The iptables flavour the hooks go in (``legacy``, ``nft``; live/hooks.py).
    iptables: str = "legacy"
    #: ``auto`` (live/hooks.py plan_hooks) or ``split`` (queue at the jumps into recentd's
    #: chains even when recentd could evaluate the rule set whole).
    hooks: str = "auto"


@dataclass
class _Watched:
    """A source the loop has open, and the checkpoint last saved for it."""

    spec: SourceSpec
    source: ObservationSource
    saved: Checkpoint | None = None
    #: The descriptor registered with the loop's selector (None: polled).
    fd: int | None = None
    #: Observations read, and the delay of the last one from its own time (metrics).
    observations: int = 0
    lag_s: float = 0.0


class Daemon:
    """Owns the engine, hooks, queue, sources, enforcer, store, control socket and the loop.

    Args:
        config: what to run.
        loader: reads the rules files (the real parser by default).
        backend_factory: builds (and installs) the ban backend for an offload case
            (``None``: no offload).
        stamp_reader: opens the reader of the kernel's log of its drops for an NFLOG
            group (``None``: no stamping; drops whose packets write a table — an
            ``--update`` drop — then stay in user space). See :meth:`on_stamps`.
        clock: the time source.
        runner: runs iptables argv lists (a recorder in tests).
        text_runner: runs ``iptables-restore``/``-save`` with input (the kernel's part).

    Raises:
        RuleError: a rules file is invalid (nothing has been touched yet).
    """

    def __init__(
        self,
        config: DaemonConfig,
        loader: RulesLoader = load_rules,
        *,
        backend_factory: Callable[[OffloadCase], BanBackend] | None = None,
        stamp_reader: Callable[[int], StampReader] | None = None,
        clock: Clock | None = None,
        runner: Runner | None = None,
        text_runner: TextRunner | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.clock = clock or MonotonicClock(config.hz)
        self.tables = RecentTables(config.params, hz=config.hz)
        #: The whole rule set as loaded (the offload analysis reads all of it).
        self.loaded = loader(config.rules)
        #: What goes into the kernel: NFQUEUE hooks, none, or the split (live/hooks.py).
        self.plan = self._plan(self.loaded, config.offload and backend_factory is not None)
        self.engine = Engine(self.plan.evaluated, self.tables, hz=config.hz)
        self.adapters: list[Adapter] = []
        filters = config.filters or derive_filters(self.loaded)
        self.hooks = Hooks(filters, config.queue_num, fail_open=config.fail_open, runner=runner,
                           flavour=config.iptables)  # fmt: skip
        #: The kernel's part, restored by recentd (None: the queue mode restores nothing).
        self.kernel_rules: KernelRules | None = None
        #: Between :meth:`start`'s hooks and :meth:`stop` (a reload then rebuilds live state).
        self.started = False
        self._text_runner = text_runner
        #: The one holder of ban state and the one guard around the backend (or None).
        self.enforcer: Enforcer | None = None
        self.planner: BanPlanner | None = None
        self._backend_factory = backend_factory if config.offload else None
        self._stamp_factory = stamp_reader if config.offload else None
        #: The open reader of the kernel's logged drops (kept across reloads), or None.
        self.stamp_reader: StampReader | None = None
        self.stamps_read = 0
        self.pipeline = self._pipeline()
        self.queue: QueueSource | None = None
        self.store: StateStore | None = None
        self.sources: list[_Watched] = []
        self.control: Any = None
        self.mounted: Any = None
        self.health: dict[str, str] = {}
        #: Told every command carried out, by every enforcer this daemon builds (the fleet
        #: publishes local bans this way).
        self.command_listeners: list[Listener] = []
        self.reloads = 0
        self.observations = 0
        #: Counts that outlive a reload, and recent ban events (recentd.metrics).
        self.tally = Tally()
        self.exporter: Any = None
        #: Called once everything is up (``recentd run`` prints a line for scripts).
        self.on_ready: Callable[[], None] = lambda: None
        self._stop = False
        self._signals: list[int] = []
        self._systemd = True
        self._watchdog = systemd.watchdog_interval()
        #: Allow lists, escalation, history (:mod:`recentd.policy`); the enforcer's gate.
        self.policy = Policy(config.policy or PolicyConfig(), config.hz)
        #: Reads the host's addresses (start, then every HOST_READ_S); None: never.
        self.host_reader: Callable[[], list[Address]] | None = read_host_addresses
        #: Deletes a banned source's conntrack entries (``cut_connections = true``).
        self.cutter: Callable[[Address], int] = cut_connections
        self._policy_saved = 0
        self._policy_next_save_ns = 0  # the timer's next save of the policy (save_policy)
        self._next_host_read = 0
        self.configure_lists()

    def _plan(self, ruleset: Ruleset, offload: bool) -> HookPlan:
        config = self.config
        return plan_hooks(ruleset, offload=offload, queue_filters=bool(config.filters),
                          queue_num=config.queue_num, fail_open=config.fail_open,
                          split=config.hooks == "split")  # fmt: skip

    def _pipeline(self) -> Pipeline:
        """The queue's handler: the whole rule set's, or the split's sites'."""
        config = self.config
        if self.plan.mode == SPLIT:
            return SitePipeline.of(self.plan.sites, self.tables, config.hz, clock=self.clock,
                                   fail_open=config.fail_open, base_queue=config.queue_num)
        return Pipeline(
            engine_decider(self.engine), self.clock, fail_open=config.fail_open,
            base_queue=config.queue_num, raw_memo=RawMemo(self.engine),
        )  # fmt: skip

    @property
    def ruleset(self) -> Ruleset:
        """The whole rule set (the engine compiles :attr:`HookPlan.evaluated` of it)."""
        return self.loaded

    # ---- lifecycle -------------------------------------------------------------------------

    def describe(self) -> str:
        queues = f"{self.config.queue_num}-{self.config.queue_num + len(STATE_QUEUES) - 1}"
        mode = (
            "fail-open (--queue-bypass + NFQA_CFG_F_FAIL_OPEN)"
            if self.config.fail_open
            else "fail-closed"
        )
        case = self._offload_case()
        offload = f"offload {case.name} to nftables inet recentd" if case else "no offload"
        failed = self.health.get("offload", "")
        if case is not None and failed.startswith("degraded"):  # the backend refused at start
            case, offload = None, f"no offload ({failed})"
        if case is not None and case.recipe:
            offload += f", its drops logged to NFLOG group {case.ban_class.log_group} and replayed"
        if self.plan.mode == HOOKLESS:
            return f"no NFQUEUE hook, {offload}"
        if self.plan.mode == SPLIT and not self.plan.sites:
            return f"split: the kernel runs the whole rule set, nothing queued, {offload}"
        if self.plan.mode == SPLIT:
            queues = (f"{self.config.queue_num}-"
                      f"{self.config.queue_num + len(STATE_QUEUES) * len(self.plan.sites) - 1}")
            return f"split at {len(self.plan.sites)} site(s), queues {queues}, {mode}, {offload}"
        return f"queues {queues}, {mode}, {offload}"

    def start(self) -> None:
        """Bring everything up in the documented order; ``READY=1`` last."""
        self._open_store()
        self.open_policy()
        self._open_control()
        self._open_metrics()
        self._setup_offload()
        self.open_sources()
        self._install_hooks()
        self.started = True
        self._notify(systemd.notify_ready)
        self._notify(systemd.notify_status, self.status_line())
        log.info("ready: %s", self.describe())
        self.on_ready()

    def _install_hooks(self) -> None:
        """The plan's hooks (:func:`~recentd.live.hooks.plan_hooks`): none when the ban set
        carries every decision — unless its backend failed to start: then the queue hooks,
        which need no backend (logged)."""
        if self.plan.mode == HOOKLESS and self.enforcer is None:
            log.warning("the ban set is not in the kernel (%s): falling back to the NFQUEUE "
                        "hooks", self.health.get("offload", "no offload"))  # fmt: skip
            self.plan = self._plan(self.loaded, False)
            self.engine.replace(self.plan.evaluated)
            self.pipeline = self._pipeline()
        if self.plan.mode != QUEUE:  # a crashed queue-mode run's hooks would pass traffic by
            self.hooks.remove_stale()
        if self.plan.mode == QUEUE or self.plan.sites:  # bound before any rule queues to it
            queues = len(STATE_QUEUES) * max(1, len(self.plan.sites))
            self.queue = QueueSource.of(self.config.queue_num, count=queues,
                                        fail_open=self.config.fail_open)  # fmt: skip
            self.queue.bound()  # a queue the kernel refused to bind: no start (BackendError)
        self._install_kernel_rules()
        log.info("%s", self.plan.why)
        for note in self.plan.notes:
            log.warning("%s", note)
        if self.queue is None:
            self.health.update(queue="none", hooks=f"none: {self.plan.why}")
            return
        if self.plan.mode == QUEUE:
            self.hooks.install()
        self.health.update(queue="ok", hooks="ok")

    def _install_kernel_rules(self, saved: dict[int, str] | None = None) -> None:
        """Restore the plan's kernel part, if it has one; ``saved``: the tables found at
        the first start (a reload keeps putting those back at stop)."""
        if self.plan.kernel is None:
            return
        original = {family: render_save(self.loaded, family)
                    for family in self.loaded.families()}  # fmt: skip
        self.kernel_rules = KernelRules(self.plan.kernel, runner=self._text_runner,
                                        flavour=self.config.iptables, original=original)
        self.kernel_rules.install()
        if saved is not None:
            self.kernel_rules.saved = saved
        if self.kernel_rules.found_stale:
            log.warning("the kernel held a stopped run's split (RECENTD-Q chains): at stop "
                        "the rule file is restored as it is, in place of those tables")

    def _remove_kernel_rules(self) -> None:
        kernel, self.kernel_rules = self.kernel_rules, None
        if kernel is not None:
            kernel.remove()

    def stop(self) -> None:
        """Remove hooks, unbind, drop the offload table, save state; safe to call twice."""
        errors: list[RecentError] = []
        self.started = False
        self._notify(systemd.notify_stopping)
        steps = (self.hooks.remove, self._remove_kernel_rules, self._close_queue,
                 self._teardown_offload, self._close_stamps, self.close_sources, self._close_mount,
                 self._close_control, self._close_metrics, self.save_policy,
                 self._close_store)  # fmt: skip
        for step in steps:
            try:
                step()
            except RecentError as exc:
                errors.append(exc)
        for error in errors:
            log.error("cleanup: %s", error)

    def _close_queue(self) -> None:
        if self.queue is not None:
            self.queue.close()
            self.queue = None

    # ---- state, control, mount -------------------------------------------------------------

    def _open_store(self) -> None:
        if self.config.state_dir is None:
            return
        self.store = StateStore(self.config.state_dir)
        now = self.clock.read()
        report = self.store.restore(self.tables, now.tick, now.wall_ns)
        log.info("state restored from %s: %d entries", self.config.state_dir, report.loaded)
        for name in sorted(report.skipped_tables):
            log.warning("saved table %s dropped: no rule names it any more", name)

    def record(self) -> None:
        """Append the tables' changes to the journal (not synced)."""
        if self.store is not None:
            now = self.clock.read()
            self.store.record(self.tables, now.wall_ns, now.tick)

    def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            now = self.clock.read()
            store.record(self.tables, now.wall_ns, now.tick)
            store.close()

    def _open_control(self) -> None:
        if self.config.socket is None:
            return
        from recentd.control.server import selector_adapter  # noqa: PLC0415

        self.control = selector_adapter(
            self.config.socket, self.tables, clock=self.clock, store=self.store
        )
        self.control.service.adapters = self.health
        self.control.service.stats = functools.partial(daemon_stats, self)
        from recentd.policy.control import ControlHooks  # noqa: PLC0415

        self.control.service.policy = ControlHooks(self)
        self.control.service.observe = self.observe_one
        self.adapters.append(self.control)
        if self.config.mount is not None:
            from recentd.control.mount import mount  # noqa: PLC0415

            self.mounted = mount(self.config.mount, self.config.socket)
            self.health["mount"] = "ok"

    def _open_metrics(self) -> None:
        """The Prometheus exposition (``--metrics``, ``--metrics-textfile``), if asked.

        Raises:
            ConfigError: the address is not ADDR:PORT, or cannot be bound.
        """
        if self.config.metrics is None and self.config.metrics_textfile is None:
            return
        from recentd.metrics.exporter import Exporter  # noqa: PLC0415 - the metrics extra

        exporter = Exporter(self, self.config.metrics, self.config.metrics_textfile)
        try:
            exporter.start()
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics: {exc.strerror}", key="metrics",
                              value=self.config.metrics or "") from exc  # fmt: skip
        self.exporter = exporter
        if exporter.listen is not None:
            log.info("metrics on http://%s:%d/metrics", exporter.listen[0], exporter.port)

    def _close_metrics(self) -> None:
        exporter, self.exporter = self.exporter, None
        if exporter is not None:
            exporter.close()

    def _close_mount(self) -> None:
        mounted, self.mounted = self.mounted, None
        if mounted is not None:
            mounted.close()

    def _close_control(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            control.close()
            self.adapters.remove(control)

    # ---- evidence sources ----------------------------------------------------------------

    def open_sources(self) -> None:
        """Open every configured source from its saved checkpoint (state dir), if any.

        Raises:
            StateFileError: the saved checkpoints are damaged (never guessed at).
        """
        saved = load_checkpoints(self.config.state_dir) if self.config.state_dir else {}
        for spec in self.config.sources:
            checkpoint = saved.get(spec.key)
            self.sources.append(_Watched(spec, spec.open(checkpoint), checkpoint))
            log.info("watching %s%s", spec.key, " (resumed)" if checkpoint else "")

    def read_source(self, watched: _Watched) -> int:
        """Apply what ``watched`` has ready now. Returns how many observations."""
        observations = watched.source.read()
        if observations:
            self.observe(observations, watched.spec.routes)
            watched.observations += len(observations)
            watched.lag_s = max(0.0, (self.clock.read().wall_ns - observations[-1].wall_ns) / 1e9)
        return len(observations)

    def observe(self, observations: Sequence[Observation], routes: Sequence[Route]) -> None:
        """Write ``observations`` into the tables as ``routes`` say, each at the tick its
        wall time maps to; then let the offload policy see each address written."""
        now = self.clock.read()
        fleet: list[Observation] = []
        for observation in observations:
            if observation.evidence in FLEET_EVIDENCE:
                fleet.append(observation)
                continue
            tick = tick_of_wall(now, observation.wall_ns)
            allowed_routes = self.policy.screen(observation, routes, tick)
            writes = apply_observation(self.tables, allowed_routes, observation, tick)
            self.policy.record_writes(observation, writes)
            self.observations += 1
            if writes and self.planner is not None and self.enforcer is not None:
                self._plan_writes(self.planner, self.enforcer, writes, observation, now)
            self._after_policy_observation(observation, writes, now)
        if fleet:
            self._carry_out_fleet(fleet, now)

    def _carry_out_fleet(self, observations: Sequence[Observation], now: ClockReading) -> None:
        """Bans and unbans the fleet's rules adopted go through the enforcer like local ones
        (so its allow veto applies), each with its own expiry and its origin for ``ctl
        why``; a run of bans is one backend transaction."""
        self.observations += len(observations)
        enforcer = self.enforcer
        if enforcer is None:
            return
        bans: list[Ban] = []
        wall_ns, tick, hz = now.wall_ns, now.tick, now.hz
        for observation in observations:
            address, origin = observation.address, str(observation.origin)
            if observation.evidence is Evidence.FLEET_BAN:
                left_ns = observation.until_ns - wall_ns
                if left_ns >= 1_000_000_000:  # the kernel counts whole seconds
                    bans.append(Ban(address.version, address, tick + ns_to_ticks(left_ns, hz),
                                    observation.until_ns, left_ns // 1_000_000_000,
                                    observation.detail, origin))  # fmt: skip
                continue
            if bans:
                enforcer.carry_out_bans(bans, now.tick)
                bans = []
            enforcer.carry_out(Unban(address.version, address, observation.detail, origin),
                               now.tick)  # fmt: skip
        if bans:
            enforcer.carry_out_bans(bans, now.tick)

    def _plan_writes(
        self, planner: BanPlanner, enforcer: Enforcer, writes: Sequence[TableWrite],
        observation: Observation, now: ClockReading,
    ) -> None:  # fmt: skip
        """A written address is banned exactly when R would now drop its packets."""
        origin = f"observation {observation.origin}"
        for write in writes:
            if write.table != planner.case.name or not write.changed:
                continue
            family, addr = write.address.version, int(write.address)
            command: Command | None = planner.plan_address(family, addr, now, origin)
            if command is None and enforcer.holding(family, addr, now.tick) is not None:
                command = Unban(family, write.address, "the rule no longer drops it", origin)
            if command is not None:
                enforcer.carry_out(command, now.tick)

    def save_checkpoints(self) -> None:
        """Save the sources' checkpoints (state dir) when any moved.

        A failure to write is logged and shown by ``ctl status``, and retried on the
        next timer: losing a checkpoint costs re-reading some lines after a restart,
        never the protection.
        """
        if self.config.state_dir is None or not self.sources:
            return
        current = {w.spec.key: w.source.checkpoint() for w in self.sources}
        if all(w.saved == current[w.spec.key] for w in self.sources):
            return
        try:
            save_checkpoints(self.config.state_dir, current)
        except StateFileError as exc:
            log.error("%s", exc)
            self.health["checkpoints"] = f"degraded: {exc}"
            return
        self.health.pop("checkpoints", None)
        for watched in self.sources:
            watched.saved = current[watched.spec.key]

    def source_health(self) -> None:
        """Each source's status, for ``ctl status`` (``ok``, ``waiting: why``…)."""
        for watched in self.sources:
            status = watched.source.status()
            text = status.state.value + (f": {status.detail}" if status.detail else "")
            if status.skipped:
                text += f" ({status.skipped} skipped)"
            self.health[f"source {watched.spec.key}"] = text

    def close_sources(self) -> None:
        """Save the checkpoints, close every source."""
        try:
            self.save_checkpoints()
        finally:
            sources, self.sources = self.sources, []
            for watched in sources:
                watched.source.close()

    # ---- offload ---------------------------------------------------------------------------

    def _offload_case(self) -> OffloadCase | None:
        if self._backend_factory is None:
            return None
        return find_offload_case(self.ruleset, stamping=self._stamp_factory is not None)

    def _open_stamps(self, case: OffloadCase) -> OffloadCase | None:
        """The case, with its log's reader open; without stamping if it cannot be."""
        group = case.ban_class.log_group
        if group is None or self._stamp_factory is None or self.stamp_reader is not None:
            return case
        try:
            self.stamp_reader = self._stamp_factory(group)
        except BackendError as exc:  # slower, never wrong: offload what needs no log
            log.warning("stamping unavailable: %s", exc)
            return find_offload_case(self.ruleset)
        return case

    def on_stamps(self) -> int:
        """Replay the writes of every drop the kernel logged, then re-time those sources'
        bans in one backend transaction. Runs before each queue batch, so user space never
        decides a packet on a table that misses a logged drop. Returns the drops read."""
        reader, planner, enforcer = self.stamp_reader, self.planner, self.enforcer
        if reader is None:
            return 0
        now = self.clock.read()
        runs = reader.read_drops(now)
        if planner is None or enforcer is None or not planner.case.recipe:
            return 0
        bans = []
        for family, addr in planner.stamp_runs(runs):
            ban = planner.plan_address(family, addr, now, "kernel log")
            if ban is not None and planner.retime(enforcer.active.get((family, addr)), ban,
                                                  now.tick):  # fmt: skip
                bans.append(ban)
        enforcer.carry_out_bans(bans, now.tick)
        if reader.lost:  # docs/offload.md: what lost log messages do to exactness
            self.health["stamping"] = (f"degraded: the kernel's log of its drops overflowed "
                                       f"{reader.lost} time(s); those drops' stamps are missing")
        drops = sum(run.count for run in runs)
        self.stamps_read += drops
        return drops

    def _close_stamps(self) -> None:
        reader, self.stamp_reader = self.stamp_reader, None
        if reader is not None:
            reader.close()

    def _setup_offload(self) -> None:
        case = self._offload_case()
        if case is not None:
            case = self._open_stamps(case)
        if case is None or self._backend_factory is None:
            self._detach()
            self.health.pop("offload", None)
            return
        try:
            backend = self._backend_factory(case)
        except BackendError as exc:  # user space stays authoritative: slower, never wrong
            log.warning("offload unavailable: %s", exc)
            self.health["offload"] = f"degraded: {exc}"
            self._detach()
            return
        self.planner = BanPlanner(case, self.tables, self.config.hz)
        self.enforcer = Enforcer(backend, self.config.hz)
        self.enforcer.on_backend_call = self.tally.backend_call
        self.enforcer.batch_listeners.append(  # one call, one clock read per transaction
            lambda commands: self.tally.commands_carried_out(commands, case.name,
                                                             self.clock.read().wall_ns))
        self._attach_policy(self.enforcer, case.name)
        self.enforcer.listeners.extend(self.command_listeners)
        self.pipeline.planner, self.pipeline.enforcer = self.planner, self.enforcer
        now = self.clock.read()
        bans = self.enforcer.carry_out_bans(self.planner.plan_restored(now), now.tick)
        self.health["offload"] = "ok"
        if bans:
            log.info("re-asserted %d ban(s) from the tables", len(bans))

    def _detach(self) -> None:
        self.planner = self.enforcer = None
        self.pipeline.planner, self.pipeline.enforcer = None, None

    def _teardown_offload(self) -> None:
        enforcer = self.enforcer
        self._detach()
        if enforcer is not None:
            enforcer.uninstall()

    def withdraw_stale(self) -> None:
        """Unban every ban whose entry was evicted, removed or changed (timer)."""
        if self.enforcer is None or self.planner is None:
            return
        now = self.clock.now_ticks()
        self.enforcer.expire(now)
        active = self.enforcer.active.values()
        local = [ban for ban in active if not ban.origin.startswith("fleet ")]  # own expiry
        for ban in self.planner.stale(local):
            unban = Unban(ban.family, ban.address, "entry changed", "timer")
            self.enforcer.carry_out(unban, now)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop (also on any error)."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old = self._install_signals(wake_w)
        try:
            self.start()
            self._serve(wake_r)
        finally:
            self.stop()
            self._restore_signals(old)
            wake_r.close()
            wake_w.close()

    def _timer_ns(self) -> int:
        period = TIMER_S if self._watchdog is None else min(TIMER_S, self._watchdog)
        return self.clock.now_ns() + int(period * 1e9)

    def _serve(self, wake: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        if self.queue is not None:  # none when no packet needs user space (HOOKLESS)
            sel.register(self.queue.bound().fileno(), selectors.EVENT_READ, "queue")
        sel.register(wake, selectors.EVENT_READ, "signal")
        if self.stamp_reader is not None:
            sel.register(self.stamp_reader.fileno(), selectors.EVENT_READ, "stamps")
        for adapter in self.adapters:
            sel.register(adapter.fileno(), selectors.EVENT_READ, adapter)
        self._watch_sources(sel)
        frequent = self.store is not None or bool(self.sources)
        next_timer, next_frequent = self._timer_ns(), self.clock.now_ns()
        while not self._stop:
            due = min(next_timer, next_frequent) if frequent else next_timer
            for key, _mask in sel.select(max(0.0, (due - self.clock.now_ns()) / 1e9)):
                self._dispatch(key.data, wake)
            now = self.clock.now_ns()
            if frequent and now >= next_frequent:
                self._watch_sources(sel)
                for watched in self.sources:
                    if watched.fd is None:
                        self.read_source(watched)
                self.record()
                next_frequent = now + int(min(RECORD_S, POLL_S) * 1e9)
            if now >= next_timer:
                self.on_timer()
                next_timer = self._timer_ns()
        sel.close()

    def _watch_sources(self, sel: selectors.BaseSelector) -> None:
        """Register each source's descriptor with the selector, again when it changed
        (a source may reopen its medium); a source without one is polled."""
        for watched in self.sources:
            fd = watched.source.fileno()
            if fd == watched.fd:
                continue
            if watched.fd is not None:
                sel.unregister(watched.fd)
            if fd is not None:
                sel.register(fd, selectors.EVENT_READ, watched)
            watched.fd = fd

    def _dispatch(self, what: object, wake: socket.socket) -> None:
        if what == "queue":
            self.on_queue()
        elif what == "stamps":
            self.on_stamps()
        elif what == "signal":
            with contextlib.suppress(BlockingIOError):
                wake.recv(64)
            self._handle_signals()
        elif isinstance(what, _Watched):
            self.read_source(what)
        else:
            what.on_ready()  # type: ignore[attr-defined]

    def on_queue(self) -> int:
        """One batch: receive, decide (bans carried out as decided), answer. Returns its size."""
        queue = self.queue
        assert queue is not None
        self.on_stamps()
        count = 0
        for batch in queue.read():
            queue.answer(batch, self.pipeline(batch))
            count += len(batch)
        if self.enforcer is not None:
            degraded = self.enforcer.degraded
            self.health["offload"] = f"degraded: {degraded}" if degraded else "ok"
        return count

    def queue_health(self) -> None:
        """The queue's status, for ``ctl status`` (a failing receive degrades it)."""
        if self.queue is not None:
            status = self.queue.status()
            self.health["queue"] = status.state.value + (
                f": {status.detail}" if status.detail else "")

    def on_timer(self) -> None:
        self.on_stamps()
        self.queue_health()
        self.withdraw_stale()
        self.policy_timer()
        if self.store is not None:
            self.record()
            self.store.sync()
        self.save_checkpoints()
        self.source_health()
        if self.exporter is not None:
            self.exporter.tick()
        if self._watchdog is not None:
            self._notify(systemd.notify_watchdog)
        self._notify(systemd.notify_status, self.status_line())

    def status_line(self) -> str:
        c = self.pipeline.counters
        bans = len(self.enforcer.active) if self.enforcer is not None else 0
        return (f"{c.accepted} accepted, {c.dropped} dropped, {bans} kernel bans, "
                f"{sum(len(t) for t in self.tables)} entries, {self.observations} observations, "
                f"{self.reloads} reloads")  # fmt: skip

    def _notify(self, call: Callable[..., bool], *args: str) -> None:
        """systemd's one guard: the first failure is logged and notifying stops."""
        if not self._systemd:
            return
        try:
            call(*args)
        except BackendError as exc:
            log.warning("%s; no further notifications", exc)
            self._systemd = False

    # ---- signals ------------------------------------------------------------------------------

    def _install_signals(self, wake_w: socket.socket) -> dict[int, Any]:
        old: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[signum] = signal.signal(signum, lambda s, _f: self._signals.append(s))
        old[-1] = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        return old

    def _restore_signals(self, old: dict[int, Any]) -> None:
        signal.set_wakeup_fd(old.pop(-1))
        for signum, handler in old.items():
            signal.signal(signum, handler)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                self.reload()
            else:
                log.info("signal %d: stopping", signum)
                self._stop = True

    def _replace_hooks(self, filters: list[QueueFilter]) -> None:
        try:
            if self.hooks.replace(filters):
                log.info("hooks replaced: the new rules need other traffic")
        except BackendError as exc:  # the new rules decide whatever still reaches them
            log.error("hooks not replaced: %s", exc)
            self.health["hooks"] = f"degraded: {exc}"
        else:
            self.health["hooks"] = "ok"

    def _replace_kernel_rules(self) -> None:
        """Restore the new kernel's part (the tables saved at start stay the ones put back)."""
        old, self.kernel_rules = self.kernel_rules, None
        if self.plan.kernel is None:  # the new rules leave nothing to the kernel
            if old is not None:
                old.remove()
            return
        try:
            self._install_kernel_rules(old.saved if old is not None else None)
        except BackendError as exc:
            log.error("kernel rules not replaced: %s", exc)
            self.health["hooks"] = f"degraded: {exc}"
            self.kernel_rules = old

    def _load_new_rules(self) -> Ruleset | None:
        """The new rule set, or ``None`` (logged) when it cannot be loaded.

        The reload guard: whatever goes wrong while loading, the old rules stay. Beside
        the project's typed errors (a bad line: FILE:LINE:COL) and OSError, it catches
        ValueError — which includes UnicodeError — on purpose: a parser bug on a strange
        byte must cost a refused reload, never the host's protection.
        """
        paths = ", ".join(str(path) for path in self.config.rules)
        try:
            ruleset = self.loader(self.config.rules)
            plan = self._plan(ruleset, self.plan.mode == HOOKLESS or (
                self.config.offload and self._backend_factory is not None))  # fmt: skip
            if plan.mode != self.plan.mode or len(plan.sites) != len(self.plan.sites):
                log.error("reload of %s refused, old rules kept: the new rules need other "
                          "hooks (%s; now: %s); restart recentd to change them", paths,
                          plan.why, self.plan.why)  # fmt: skip
                return None
            self.engine.replace(plan.evaluated)
        except (RecentError, OSError) as exc:
            log.error("reload of %s refused, old rules kept: %s", paths, exc)
            return None
        except ValueError as exc:  # UnicodeError too: see the docstring
            log.error("reload of %s refused, old rules kept: %s: %s (a parser bug; "
                      "please report it)", paths, type(exc).__name__, exc)  # fmt: skip
            return None
        self.loaded, self.plan = ruleset, plan
        return ruleset

    def reload(self) -> bool:
        """Re-read the rules files, keeping the tables; on any error keep the old rules.

        The hooks are re-derived and replaced when the new rules need other traffic,
        and the offload is rebuilt from the tables as they are. Returns success.
        """
        self._notify(systemd.notify_reloading)
        ruleset = self._load_new_rules()
        if ruleset is None:
            self._notify(systemd.notify_ready)
            return False
        self.reloads += 1
        self.configure_lists()
        running = self.started
        if isinstance(self.pipeline, SitePipeline):
            self.pipeline.replace(self.plan.sites, self.tables, self.config.hz)
        if self.plan.mode != QUEUE:
            if running:
                self._replace_kernel_rules()
        elif not self.config.filters:
            self._replace_hooks(derive_filters(ruleset))
        if self.enforcer is not None:
            self.enforcer.clear()
        self._teardown_offload()
        if running:  # the offload table is live state
            self._setup_offload()
        log.info("rules reloaded from %s", ", ".join(str(p) for p in self.config.rules))
        self._notify(systemd.notify_ready)
        return True

    # ---- policy: allow lists, escalation, purge, history (recentd.policy) ---------------------

    def configure_lists(self) -> None:
        """Give each ``[lists.NAME]`` its own module parameters (at start and reload)."""
        for settings in self.policy.config.lists:
            if not settings.params:
                continue
            if settings.name not in self.tables:
                log.warning("[lists.%s]: no rule names this list; its settings wait for one",
                            settings.name)  # fmt: skip
                continue
            self.tables.configure(settings.name, **settings.params)

    def open_policy(self) -> None:
        """Load the history (state dir) and read the host's addresses.

        Raises:
            StateFileError: the saved history is damaged (never guessed at).
        """
        if self.config.state_dir is not None:
            grants = load_history(self.config.state_dir, self.policy.history)
            if grants is not None:
                log.info("policy history restored: %d addresses", len(self.policy.history))
                self._restore_grants(grants)
            self._policy_saved = self.policy.history.version
        self.read_host_addresses()

    def read_host_addresses(self) -> None:
        """The host's own addresses into the allow list (a failure keeps the last ones)."""
        if self.host_reader is None:
            return
        self._next_host_read = self.clock.now_ns() + int(HOST_READ_S * 1e9)
        try:
            self.policy.allow.set_host(self.host_reader())
        except BackendError as exc:
            log.warning("host addresses not read: %s", exc)
            self.health["host addresses"] = f"degraded: {exc}"
        else:
            self.health.pop("host addresses", None)

    def protect_admin(self, address: Address) -> str:
        """Allow ``address`` (the admin's, from ``SSH_CONNECTION``) as a login session;
        returns what protects it, for ``recentd run`` to print."""
        now = self.clock.now_ticks()
        before = self.policy.allows(address, now)
        if before is not None:
            return f"{address} is protected: {before}"
        ticks = self.policy.config.log_session_s * self.config.hz
        entry = self.policy.allow.add_session(address, now + ticks, "the admin's session "
                                              "that started recentd (SSH_CONNECTION)")
        return f"{address} is now protected: {entry}"

    def observe_one(self, observation: Observation) -> None:
        """Evidence a control request brings (a PAM login: the config's login routes)."""
        login = observation.evidence is Evidence.LOGIN
        routes = self.policy.config.login_routes() if login else ()
        self.observe([observation], routes)

    def _after_policy_observation(self, observation: Observation, writes: Sequence[TableWrite],
                                  now: ClockReading) -> None:  # fmt: skip
        """Log each forget of a login; withdraw a ban on an address that became allowed."""
        if observation.evidence is Evidence.LOGIN:
            for write in writes:
                if write.action is Action.REMOVE and write.changed:
                    log.warning("%s", Forget(write.table, write.address, observation.user,
                                             observation.origin, observation.wall_ns))
        enforcer = self.enforcer
        key = (observation.family, int(observation.address))
        if enforcer is not None and key in enforcer.active:
            allowed = self.policy.allows(observation.address, now.tick)
            if allowed is not None:
                unban = Unban(observation.family, observation.address, f"allowed: {allowed}",
                              f"observation {observation.origin}")  # fmt: skip
                enforcer.carry_out(unban, now.tick)

    def _attach_policy(self, enforcer: Enforcer, ban_list: str) -> None:
        self.policy.ban_list = ban_list
        enforcer.gate = self.policy
        enforcer.new_ban_listeners.append(self._on_new_bans)
        enforcer.batch_listeners.append(self._on_commands)

    def _on_commands(self, commands: Sequence[Command]) -> None:
        unbans = [command for command in commands if isinstance(command, Unban)]
        if unbans:
            wall_ns = self.clock.read().wall_ns
            for unban in unbans:
                self.policy.record_unban(unban, wall_ns)

    def _on_new_bans(self, bans: Sequence[Ban]) -> None:
        """Bans are evidence (escalation routes); they may also cut open connections.
        One backend transaction's new bans at once: one clock read, one history batch."""
        now = self.clock.read()
        self.policy.record_bans(bans, now.wall_ns)
        ban_list = self.policy.ban_list or ""
        routes = self.policy.config.ban_routes()
        if routes:
            evidence = [ban_observation(ban, ban_list, now.wall_ns) for ban in bans
                        if ban.origin != RESTORE]  # fmt: skip
            if evidence:
                self.observe(evidence, routes)
        settings = self.policy.ban_settings()
        if settings is not None and settings.cut_connections:
            for ban in bans:
                self._cut(ban)

    def _cut(self, ban: Ban) -> None:
        try:
            cut = self.cutter(ban.address)
        except BackendError as exc:  # the ban holds; only open sessions go on
            log.warning("connections of %s not cut: %s", ban.address, exc)
            self.health["conntrack"] = f"degraded: {exc}"
        else:
            self.health.pop("conntrack", None)
            log.info("cut %d connection(s) of banned %s", cut, ban.address)

    def policy_timer(self) -> None:
        """Purge idle entries, expire allow entries, re-read the host's addresses, save."""
        now = self.clock.read()
        limits = self.policy.purge_limits()
        if limits:
            for done in purging.carry_out(self.tables, purging.plan_purge(self.tables, limits,
                                                                          now.tick)):
                self.policy.history.record(address_of(done.family, done.addr), HistoryEvent(
                    now.wall_ns, "purge", done.table, "-", "timer",
                    f"idle {done.idle_ticks // self.config.hz} s"))  # fmt: skip
        self.policy.expire(now.tick)
        if self.host_reader is not None and self.clock.now_ns() >= self._next_host_read:
            self.read_host_addresses()
        if self.enforcer is not None:
            self.enforcer.withdraw_refused(now.tick)
        self.save_policy(when_due=True)

    def _restore_grants(self, grants: list[SavedGrant]) -> None:
        now = self.clock.read()
        for grant in grants:
            if grant.until_wall_ns > now.wall_ns:
                until = now.tick + ns_to_ticks(grant.until_wall_ns - now.wall_ns, now.hz)
                self.policy.allow.grant(ipaddress.ip_network(grant.network), until, grant.detail)

    def _saved_grants(self) -> list[SavedGrant]:
        """The timed grants, their ends as wall time (untimed ones end with the daemon)."""
        now = self.clock.read()
        return [SavedGrant(str(g.network), wall_of_tick(now, g.until_tick), g.detail)
                for g in self.policy.allow.grants if g.until_tick]  # fmt: skip

    def save_policy(self, *, when_due: bool = False) -> None:
        """Save the history and grants when they changed (a failure is logged and retried).

        On the timer (``when_due``) a save waits until :data:`POLICY_SAVE_SHARE` of the
        time since the last one covers what that one cost: the file is rewritten whole, and
        under a flood of bans a 10,000-address history costs ~0.3 s a save — saved every
        second, that was a third of a core. A small history still saves on the next tick;
        at stop it always saves."""
        history = self.policy.history
        if self.config.state_dir is None or history.version == self._policy_saved:
            return
        started = self.clock.now_ns()
        if when_due and started < self._policy_next_save_ns:
            return
        try:
            save_history(self.config.state_dir, history, self._saved_grants())
        except StateFileError as exc:
            log.error("%s", exc)
            self.health["policy"] = f"degraded: {exc}"
            return
        finished = self.clock.now_ns()
        self._policy_next_save_ns = finished + int((finished - started) / POLICY_SAVE_SHARE)
        self.health.pop("policy", None)
        self._policy_saved = history.version

