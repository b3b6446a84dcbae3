"""The live daemon: one thread, one ``selectors`` loop.

What the loop watches:

- the NFQUEUE socket: drain a batch, decide, answer with one datagram, then push
  the bans the offload policy allows (verdicts never wait for nftables);
- a wakeup socket for signals: SIGTERM/SIGINT end the loop, SIGHUP reloads the
  rules (a bad file keeps the old rules and logs why);
- any number of *adapters* (the control socket, …): objects with ``fileno()``
  and ``on_ready()``, registered by whoever builds the daemon;
- one timer: every second, bans whose table entry changed are withdrawn.

Start order: offload table, queue bound, then hooks (so traffic is never queued
to nobody); stop order is the reverse, and runs on every way out of :meth:`run`.
"""

from __future__ import annotations

import logging
import selectors
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recentd.errors import RecentError
from recentd.live.clock import Clock, MonotonicClock
from recentd.live.hooks import STATE_QUEUES, Hooks, QueueFilter, derive_filters
from recentd.live.nfqueue import RawQueue
from recentd.live.offload import BanBackend
from recentd.live.offloader import Offloader
from recentd.live.policy import BanPlanner, OffloadCase, find_offload_case
from recentd.live.verdict import Decider, Pipeline
from recentd.recent import RecentTables

log = logging.getLogger("recentd.daemon")

TIMER_S = 1.0


class Adapter(Protocol):
    """Something the loop watches besides the queue (e.g. the control socket)."""

    def fileno(self) -> int: ...

    def on_ready(self) -> None: ...


@dataclass
class Rules:
    """A loaded rule set as the daemon uses it.

    Attributes:
        ruleset: the parsed rules (for hooks and the offload policy); ``None`` when
            the loader cannot provide it (then ``filters`` must be given).
        decide: the per-packet decision.
        tables: the engine's recent tables.
        replace: swaps in a newly loaded rule set, keeping the tables.
    """

    ruleset: Any
    decide: Decider
    tables: RecentTables
    replace: Callable[[Rules], None] = lambda _new: None


RulesLoader = Callable[[Path], Rules]


def load_rules(path: Path, hz: int) -> Rules:
    """Load ``path`` with the rule engine (:mod:`recentd.rules`)."""
    from recentd.live.verdict import engine_decider  # noqa: PLC0415
    from recentd.rules import Engine, load_ruleset  # noqa: PLC0415

    ruleset = load_ruleset(path)
    tables = RecentTables(hz=hz)
    engine = Engine(ruleset, tables, hz=hz)
    return Rules(ruleset, engine_decider(engine), tables, lambda new: engine.replace(new.ruleset))


@dataclass
class DaemonConfig:
    rules: Path
    queue_num: int = 0
    fail_open: bool = True
    offload: bool = True
    filters: list[QueueFilter] = field(default_factory=list)
    hz: int = 250


class Daemon:
    """Owns the hooks, the queue, the offload backend and the loop.

    Args:
        config: what to run.
        loader: reads a rules file (the real engine by default).
        backend_factory: builds the ban backend for an offload case (``None``: none).
        clock: the tick source.
    """

    def __init__(
        self,
        config: DaemonConfig,
        loader: RulesLoader,
        *,
        backend_factory: Callable[[OffloadCase], BanBackend] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.clock = clock or MonotonicClock(config.hz)
        self.adapters: list[Adapter] = []
        self.rules = loader(config.rules)
        self.filters = config.filters or derive_filters(self.rules.ruleset)
        self.hooks = Hooks(self.filters, config.queue_num, fail_open=config.fail_open)
        self.offloader: Offloader | None = None
        self._backend_factory = backend_factory if config.offload else None
        self.pipeline = Pipeline(
            self.rules.decide, self.clock, fail_open=config.fail_open, base_queue=config.queue_num
        )
        self.queue: RawQueue | None = None
        self._stop = False
        self._signals: list[int] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def describe(self) -> str:
        queues = f"{self.config.queue_num}-{self.config.queue_num + len(STATE_QUEUES) - 1}"
        mode = "fail-open (--queue-bypass + NFQA_CFG_F_FAIL_OPEN)" if self.config.fail_open else "fail-closed"
        case = find_offload_case(self.rules.ruleset) if self._backend_factory else None
        offload = f"offload {case.name} to nftables inet recentd" if case else "no offload"
        return f"queues {queues}, {mode}, {offload}"

    def start(self) -> None:
        self._setup_offload()
        self.queue = RawQueue(
            self.config.queue_num, count=len(STATE_QUEUES), fail_open=self.config.fail_open
        )
        self.hooks.install()

    def stop(self) -> None:
        """Remove hooks, unbind, drop the offload table; safe to call twice."""
        errors: list[RecentError] = []
        for step in (self.hooks.remove, self._close_queue, self._teardown_offload):
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

    def _setup_offload(self) -> None:
        case = find_offload_case(self.rules.ruleset) if self._backend_factory else None
        if case is None or self._backend_factory is None:
            self.pipeline.planner = None
            return
        planner = BanPlanner(case, self.rules.tables, self.config.hz)
        self.offloader = Offloader(self._backend_factory(case), planner)
        self.pipeline.planner = planner

    def _teardown_offload(self) -> None:
        if self.offloader is not None:
            uninstall = getattr(self.offloader.backend, "uninstall", None)
            if uninstall is not None:
                uninstall()
            self.offloader = None

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

    def _serve(self, wake: socket.socket) -> None:
        assert self.queue is not None
        sel = selectors.DefaultSelector()
        sel.register(self.queue.fileno(), selectors.EVENT_READ, "queue")
        sel.register(wake, selectors.EVENT_READ, "signal")
        for adapter in self.adapters:
            sel.register(adapter.fileno(), selectors.EVENT_READ, adapter)
        next_timer = self.clock.now_ns() + int(TIMER_S * 1e9)
        while not self._stop:
            timeout = max(0.0, (next_timer - self.clock.now_ns()) / 1e9)
            for key, _mask in sel.select(timeout):
                self._dispatch(key.data, wake)
            if self.clock.now_ns() >= next_timer:
                self.on_timer()
                next_timer = self.clock.now_ns() + int(TIMER_S * 1e9)
        sel.close()

    def _dispatch(self, what: object, wake: socket.socket) -> None:
        if what == "queue":
            self.on_queue()
        elif what == "signal":
            try:
                wake.recv(64)
            except BlockingIOError:
                pass
            self._handle_signals()
        else:
            what.on_ready()  # type: ignore[attr-defined]

    def on_queue(self) -> None:
        assert self.queue is not None
        self.queue.process(self.pipeline)
        if self.offloader is not None and self.pipeline.pending_bans:
            bans = self.offloader.push(self.pipeline.pending_bans, self.clock.now_ticks())
            self.pipeline.pending_bans.clear()
            for ban in bans:
                log.info("ban offloaded: %s for %d s", ban.addr, ban.timeout_s)

    def on_timer(self) -> None:
        if self.offloader is not None:
            for ban in self.offloader.reconcile(self.clock.now_ticks()):
                log.info("ban withdrawn (entry changed): %s", ban.addr)

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

    def reload(self) -> bool:
        """Re-read the rules file; on any rule error keep the old rules. Returns success."""
        try:
            new = self.loader(self.config.rules)
        except (RecentError, OSError) as exc:
            log.error("reload of %s refused, old rules kept: %s", self.config.rules, exc)
            return False
        self.rules.replace(new)
        self.rules.ruleset = new.ruleset
        if self.offloader is not None:
            self.offloader.clear()
        self._teardown_offload()
        self._setup_offload()
        log.info("rules reloaded from %s", self.config.rules)
        return True
