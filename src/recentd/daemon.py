"""The live daemon: one thread, one ``selectors`` loop.

What the loop watches:

- the NFQUEUE socket: drain a batch, decide, answer with one datagram; a ban the
  offload policy allows goes to nftables the moment it is decided (before the
  rest of the batch), and the source's packets already queued are dropped
  without asking the rules (see :mod:`recentd.live.verdict`);
- a wakeup socket for signals: SIGTERM/SIGINT end the loop, SIGHUP reloads the
  rules (a bad file keeps the old rules and logs why);
- the control socket and any other *adapters*: objects with ``fileno()`` and
  ``on_ready()``;
- two timers: every ~100 ms the tables' changes are appended to the journal;
  every second (or half the systemd watchdog interval, if shorter) bans whose
  table entry changed are withdrawn, the journal is synced, systemd is pinged.

Start order: rules (they create the tables), state restore, control socket and
mount, offload table (with the bans the restored tables already imply), queue
bound, then hooks, then ``READY=1`` — so traffic is never queued to nobody and
nothing is decided against empty tables. Stop order is the reverse, and runs on
every way out of :meth:`Daemon.run`.

Time: the loop reads one :class:`~recentd.live.clock.Clock` (monotonic ticks);
the wall clock is read only to stamp journal records, which is what lets a
restore after a reboot re-base the stamps.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recentd.control import systemd
from recentd.errors import BackendError, RecentError
from recentd.live.clock import Clock, MonotonicClock
from recentd.live.hooks import STATE_QUEUES, Hooks, QueueFilter, Runner, derive_filters
from recentd.live.nfqueue import RawQueue
from recentd.live.offload import BanBackend
from recentd.live.offloader import Offloader
from recentd.live.policy import BanPlanner, OffloadCase, find_offload_case
from recentd.live.verdict import Pipeline, engine_decider
from recentd.recent import ModuleParams, RecentTables
from recentd.rules import Engine, Ruleset
from recentd.rules import load_rules as parse_rules_file
from recentd.rules.rawmemo import RawMemo
from recentd.state import StateStore

log = logging.getLogger("recentd.daemon")

TIMER_S = 1.0
RECORD_S = 0.1


class Adapter(Protocol):
    """Something the loop watches besides the queue (e.g. the control socket)."""

    def fileno(self) -> int: ...

    def on_ready(self) -> None: ...


#: Reads a rules file; raises :class:`~recentd.errors.RuleError` (file:line:col) or OSError.
RulesLoader = Callable[[Path], Ruleset]


def load_rules(path: Path) -> Ruleset:
    """Parse ``path``; each notice (e.g. a typographic dash read as ``--``) is logged."""
    result = parse_rules_file(path)
    for notice in result.notices:
        log.warning("%s", notice)
    return result.ruleset


@dataclass
class DaemonConfig:
    """What one daemon runs (built from :class:`recentd.config.Config` by ``recentd run``)."""

    rules: Path
    queue_num: int = 0
    fail_open: bool = True
    offload: bool = True
    filters: list[QueueFilter] = field(default_factory=list)
    hz: int = 250
    socket: Path | None = None
    state_dir: Path | None = None
    mount: Path | None = None
    params: ModuleParams | None = None


class Daemon:
    """Owns the engine, hooks, queue, offload backend, store, control socket and the loop.

    Args:
        config: what to run.
        loader: reads a rules file (the real parser by default).
        backend_factory: builds the ban backend for an offload case (``None``: none).
        clock: the tick source.
        runner: runs iptables argv lists (a recorder in tests).

    Raises:
        RuleError: the rules file is invalid (nothing has been touched yet).
    """

    def __init__(
        self,
        config: DaemonConfig,
        loader: RulesLoader = load_rules,
        *,
        backend_factory: Callable[[OffloadCase], BanBackend] | None = None,
        clock: Clock | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.clock = clock or MonotonicClock(config.hz)
        self.tables = RecentTables(config.params, hz=config.hz)
        self.engine = Engine(loader(config.rules), self.tables, hz=config.hz)
        self.adapters: list[Adapter] = []
        filters = config.filters or derive_filters(self.ruleset)
        self.hooks = Hooks(filters, config.queue_num, fail_open=config.fail_open, runner=runner)
        self.offloader: Offloader | None = None
        self._backend_factory = backend_factory if config.offload else None
        self.pipeline = Pipeline(
            engine_decider(self.engine), self.clock, fail_open=config.fail_open,
            base_queue=config.queue_num, raw_memo=RawMemo(self.engine),
        )  # fmt: skip
        self.queue: RawQueue | None = None
        self.store: StateStore | None = None
        self.control: Any = None
        self.mounted: Any = None
        self.health: dict[str, str] = {}
        self.reloads = 0
        #: Called once everything is up (``recentd run`` prints a line for scripts).
        self.on_ready: Callable[[], None] = lambda: None
        self._stop = False
        self._signals: list[int] = []
        self._systemd = True
        self._watchdog = systemd.watchdog_interval()

    @property
    def ruleset(self) -> Ruleset:
        return self.engine.ruleset

    # ---- lifecycle -------------------------------------------------------------------------

    def describe(self) -> str:
        queues = f"{self.config.queue_num}-{self.config.queue_num + len(STATE_QUEUES) - 1}"
        mode = (
            "fail-open (--queue-bypass + NFQA_CFG_F_FAIL_OPEN)"
            if self.config.fail_open
            else "fail-closed"
        )
        case = find_offload_case(self.ruleset) if self._backend_factory else None
        offload = f"offload {case.name} to nftables inet recentd" if case else "no offload"
        return f"queues {queues}, {mode}, {offload}"

    def start(self) -> None:
        """Bring everything up in the documented order; ``READY=1`` last."""
        self._open_store()
        self._open_control()
        self._setup_offload()
        self.queue = RawQueue(
            self.config.queue_num, count=len(STATE_QUEUES), fail_open=self.config.fail_open
        )
        self.hooks.install()
        self.health.update(queue="ok", hooks="ok")
        self._notify(systemd.notify_ready)
        self._notify(systemd.notify_status, self.status_line())
        log.info("ready: %s", self.describe())
        self.on_ready()

    def stop(self) -> None:
        """Remove hooks, unbind, drop the offload table, save state; safe to call twice."""
        errors: list[RecentError] = []
        self._notify(systemd.notify_stopping)
        steps = (self.hooks.remove, self._close_queue, self._teardown_offload,
                 self._close_mount, self._close_control, self._close_store)  # fmt: skip
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
        report = self.store.restore(self.tables, self.clock.now_ticks(), time.time_ns())
        log.info("state restored from %s: %d entries", self.config.state_dir, report.loaded)
        for name in sorted(report.skipped_tables):
            log.warning("saved table %s dropped: no rule names it any more", name)

    def record(self) -> None:
        """Append the tables' changes to the journal (not synced)."""
        if self.store is not None:
            self.store.record(self.tables, time.time_ns(), self.clock.now_ticks())

    def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.record(self.tables, time.time_ns(), self.clock.now_ticks())
            store.close()

    def _open_control(self) -> None:
        if self.config.socket is None:
            return
        from recentd.control.server import selector_adapter  # noqa: PLC0415

        self.control = selector_adapter(
            self.config.socket, self.tables, clock=self.clock.now_ticks, store=self.store
        )
        self.control.service.adapters = self.health
        self.adapters.append(self.control)
        if self.config.mount is not None:
            from recentd.control.mount import mount  # noqa: PLC0415

            self.mounted = mount(self.config.mount, self.config.socket)
            self.health["mount"] = "ok"

    def _close_mount(self) -> None:
        mounted, self.mounted = self.mounted, None
        if mounted is not None:
            mounted.close()

    def _close_control(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            control.close()
            self.adapters.remove(control)

    # ---- offload ---------------------------------------------------------------------------

    def _setup_offload(self) -> None:
        case = find_offload_case(self.ruleset) if self._backend_factory else None
        if case is None or self._backend_factory is None:
            self.pipeline.planner = None
            self.health.pop("offload", None)
            return
        planner = BanPlanner(case, self.tables, self.config.hz)
        try:
            backend = self._backend_factory(case)
        except BackendError as exc:  # user space stays authoritative: slower, never wrong
            log.warning("offload unavailable: %s", exc)
            self.health["offload"] = f"degraded: {exc}"
            self.pipeline.planner = None
            return
        self.offloader = Offloader(backend, planner)
        self.pipeline.planner = planner
        self.pipeline.offloader = self.offloader
        bans = self.offloader.push(
            planner.plan_restored(self.clock.now_ticks()), self.clock.now_ticks()
        )
        self.health["offload"] = "ok"
        if bans:
            log.info("re-asserted %d ban(s) from the tables", len(bans))

    def _teardown_offload(self) -> None:
        offloader, self.offloader = self.offloader, None
        self.pipeline.offloader = None
        if offloader is not None:
            uninstall = getattr(offloader.backend, "uninstall", None)
            if uninstall is not None:
                uninstall()

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
        assert self.queue is not None
        sel = selectors.DefaultSelector()
        sel.register(self.queue.fileno(), selectors.EVENT_READ, "queue")
        sel.register(wake, selectors.EVENT_READ, "signal")
        for adapter in self.adapters:
            sel.register(adapter.fileno(), selectors.EVENT_READ, adapter)
        next_timer, next_record = self._timer_ns(), self.clock.now_ns()
        while not self._stop:
            due = min(next_timer, next_record) if self.store else next_timer
            for key, _mask in sel.select(max(0.0, (due - self.clock.now_ns()) / 1e9)):
                self._dispatch(key.data, wake)
            now = self.clock.now_ns()
            if self.store is not None and now >= next_record:
                self.record()
                next_record = now + int(RECORD_S * 1e9)
            if now >= next_timer:
                self.on_timer()
                next_timer = self._timer_ns()
        sel.close()

    def _dispatch(self, what: object, wake: socket.socket) -> None:
        if what == "queue":
            self.on_queue()
        elif what == "signal":
            with contextlib.suppress(BlockingIOError):
                wake.recv(64)
            self._handle_signals()
        else:
            what.on_ready()  # type: ignore[attr-defined]

    def on_queue(self) -> int:
        """One batch: receive, decide (bans pushed as decided), answer. Returns its size."""
        assert self.queue is not None
        count = self.queue.process(self.pipeline)
        pipeline = self.pipeline
        if self.offloader is not None and (pipeline.pushed or pipeline.pending_bans):
            if pipeline.pending_bans:  # planned while no offloader was attached
                pipeline.pushed += self.offloader.push(
                    pipeline.pending_bans, self.clock.now_ticks()
                )
                pipeline.pending_bans.clear()
            for ban in pipeline.pushed:
                log.info("ban offloaded: %s for %d s", ban.addr, ban.timeout_s)
            pipeline.pushed.clear()
        if self.offloader is not None:
            self.health["offload"] = (
                f"degraded: {self.offloader.degraded}" if self.offloader.degraded else "ok"
            )
        return count

    def on_timer(self) -> None:
        if self.offloader is not None:
            for ban in self.offloader.reconcile(self.clock.now_ticks()):
                log.info("ban withdrawn (entry changed): %s", ban.addr)
        if self.store is not None:
            self.record()
            self.store.sync()
        if self._watchdog is not None:
            self._notify(systemd.notify_watchdog)
        self._notify(systemd.notify_status, self.status_line())

    def status_line(self) -> str:
        c = self.pipeline.counters
        bans = len(self.offloader.active) if self.offloader is not None else 0
        return (f"{c.accepted} accepted, {c.dropped} dropped, {bans} kernel bans, "
                f"{sum(len(t) for t in self.tables)} entries, {self.reloads} reloads")  # fmt: skip

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

    def reload(self) -> bool:
        """Re-read the rules file, keeping the tables; on any error keep the old rules.

        The hooks are re-derived and replaced when the new rules need other traffic,
        and the offload is rebuilt from the tables as they are. Returns success.
        """
        self._notify(systemd.notify_reloading)
        try:
            ruleset = self.loader(self.config.rules)
            self.engine.replace(ruleset)
        except (RecentError, OSError) as exc:
            log.error("reload of %s refused, old rules kept: %s", self.config.rules, exc)
            self._notify(systemd.notify_ready)
            return False
        self.reloads += 1
        if not self.config.filters:
            self._replace_hooks(derive_filters(ruleset))
        if self.offloader is not None:
            self.offloader.clear()
        self._teardown_offload()
        if self.queue is not None:  # running: the offload table is live state
            self._setup_offload()
        log.info("rules reloaded from %s", self.config.rules)
        self._notify(systemd.notify_ready)
        return True
