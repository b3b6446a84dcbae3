"""The one guard around the ban backend, and the one holder of ban state.

Rules of this module:

1. Every :mod:`recentd.commands` command reaches the backend through
   :meth:`Enforcer.carry_out`, in the order it was decided, at the moment it is handed
   over. Nobody else calls a backend's ``add``/``remove``/``flush``.
2. :attr:`Enforcer.active` is the only record of which bans are in force (the pipeline
   reads it to drop a banned source's already-queued packets without asking the rules;
   the daemon reads it to withdraw bans whose entry changed). A ban enters it only when
   the backend accepted it, and leaves it when it expires, is withdrawn or flushed.
3. One guard (STYLE practice 7): a :class:`~recentd.errors.BackendError` marks the
   enforcer *degraded* (logged, shown by ``ctl status``); user space stays authoritative,
   so a failed ban costs only speed, never a decision. After a failed ban no new ban is
   tried for one second, so a broken backend is not retried per dropped packet.
4. Pure apart from the backend it is given: ``now`` (ticks) is an argument.
5. Every ban passes the :class:`Gate` first, when there is one (the policy's allow
   lists and escalation, :class:`recentd.policy.core.PolicyGate`): whatever decided it —
   a packet, a log line, a control write, a restore, a fleet peer — a ban the gate
   refuses never reaches the backend, and a ban in force that the gate now refuses
   (its address became allowed) is withdrawn. The gate may also lengthen a ban.
6. Whoever needs to know hears of each backend transaction once it is done: every
   :data:`Listener` each of its commands, every :data:`BatchListener` all of them in one
   call (the history and the metrics: a reply of 1,000 fleet bans is one call each, not
   1,000), and every new-ban listener the bans that were not in force before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from recentd.backends import BanBackend, KernelBan
from recentd.commands import Ban, Command, Unban
from recentd.errors import BackendError

log = logging.getLogger("recentd.enforcer")


def _untimed(operation: str, seconds: float, ok: bool) -> None:
    pass

#: Called with each command the backend carried out (logs, transcripts, metrics).
Listener = Callable[[Command], None]
#: Called once per backend transaction with the commands it carried out, in order: a
#: listener whose work per command is small beside its work per call (history, metrics)
#: takes a batch of 1,000 fleet bans in one call (bench/fleet.py).
BatchListener = Callable[[Sequence[Command]], None]


class Gate(Protocol):
    """What every ban passes before the backend sees it (rule 5)."""

    def review(self, ban: Ban, held: Ban | None, now: int) -> Ban | str:
        """The ban to carry out (``ban`` itself, or a longer one), or the reason it is
        refused. ``held`` is the ban in force on the address, if any."""
        ...


class Enforcer:
    """Carries out ban commands on ``backend``; remembers the bans in force.

    Args:
        backend: where bans go (installed by whoever built it).
        hz: ticks per second of ``now`` (for the retry pause after a failure).
    """

    def __init__(self, backend: BanBackend, hz: int) -> None:
        self.backend = backend
        self.hz = hz
        #: (family, int(address)) → the ban in force. See rule 2.
        self.active: dict[tuple[int, int], Ban] = {}
        self.degraded = ""
        self.bans = 0
        self.unbans = 0
        self.listeners: list[Listener] = []
        self.batch_listeners: list[BatchListener] = []
        #: Called after each backend call: (operation, seconds, succeeded).
        self.on_backend_call: Callable[[str, float, bool], None] = _untimed
        #: Called once per backend transaction with the bans that put an address into the
        #: backend afresh (not a re-timing), in order: escalation counts these.
        self.new_ban_listeners: list[Callable[[Sequence[Ban]], None]] = []
        #: The policy every ban passes (rule 5); None: every ban goes through.
        self.gate: Gate | None = None
        self.refused = 0
        self._next_expiry = 0
        self._retry_tick = 0

    def holding(self, family: int, addr: int, now: int) -> Ban | None:
        """The ban in force on ``addr`` at ``now``, if any."""
        ban = self.active.get((family, addr))
        return ban if ban is not None and ban.expiry_tick > now else None

    def carry_out(self, command: Command, now: int) -> bool:
        """Do ``command`` now. Returns whether the backend was changed.

        A ban already in force with the same expiry, or an unban of an address not
        banned, changes nothing; a ban with another expiry re-times the one in force.
        """
        if isinstance(command, Ban):
            return self.carry_out_bans([command], now) == [command]
        key = (command.family, int(command.address))
        if key not in self.active:
            return False
        if not self._guard(lambda: self.backend.remove(command.family, command.address),
                           "remove"):
            return False
        del self.active[key]
        self.unbans += 1
        log.info("ban withdrawn: %s (%s)", command.address, command.reason)
        self._tell([command])
        return True

    def carry_out_bans(self, bans: Iterable[Ban], now: int) -> list[Ban]:
        """Carry out many bans as one backend transaction (a restore re-asserts thousands).
        Returns those that changed the backend, in order."""
        self._expire(now)
        if now < self._retry_tick:
            return []
        fresh: dict[tuple[int, int], Ban] = {}
        withdraw: list[Unban] = []
        for planned in bans:
            key = (planned.family, int(planned.address))
            held = self.active.get(key)
            ban = planned if self.gate is None else self.gate.review(planned, held, now)
            if isinstance(ban, str):
                self.refused += 1
                if held is not None:
                    withdraw.append(Unban(held.family, held.address, ban, planned.origin))
                continue
            if held is None or held.rule_expiry != ban.rule_expiry:
                fresh[key] = ban
        for unban in withdraw:
            self.carry_out(unban, now)
        if not fresh:
            return []
        batch = [KernelBan(b.family, b.address, b.timeout_s, b.prefix)
                 for b in fresh.values()]
        if not self._guard(lambda: self.backend.add_many(batch), "add"):
            self._retry_tick = now + self.hz
            return []
        new = [ban for key, ban in fresh.items() if key not in self.active]
        self.active.update(fresh)
        self.bans += len(fresh)
        soonest = min(ban.expiry_tick for ban in fresh.values())
        self._next_expiry = min(self._next_expiry, soonest) if self._next_expiry else soonest
        done = list(fresh.values())
        if log.isEnabledFor(logging.INFO):  # asked once per batch, not once per ban
            for ban in done:
                log.info("ban offloaded: %s for %d s (%s; %s)", ban.address, ban.timeout_s,
                         ban.reason, ban.origin)  # fmt: skip
        self._tell(done)
        if new:
            for new_listener in self.new_ban_listeners:
                new_listener(new)
        return done

    def withdraw_refused(self, now: int) -> list[Unban]:
        """Withdraw every ban in force the gate now refuses (an address became allowed)."""
        if self.gate is None:
            return []
        done = []
        for ban in list(self.active.values()):
            verdict = self.gate.review(ban, ban, now)
            if isinstance(verdict, str):
                unban = Unban(ban.family, ban.address, verdict, "policy")
                if self.carry_out(unban, now):
                    done.append(unban)
        return done

    def expire(self, now: int) -> None:
        """Forget bans the backend has let lapse by itself (their timeout ran out)."""
        self._expire(now)

    def clear(self) -> bool:
        """Lift every ban (after a reload, the old ones no longer follow from the rules)."""
        if not self._guard(self.backend.flush, "flush"):
            return False
        self.active.clear()
        self._next_expiry = 0
        return True

    def uninstall(self) -> bool:
        """Remove the backend's kernel objects (daemon stop)."""
        if not self._guard(self.backend.uninstall, "uninstall"):
            return False
        self.active.clear()
        return True

    def _expire(self, now: int) -> None:
        if not self._next_expiry or now < self._next_expiry:
            return
        for key in [k for k, ban in self.active.items() if ban.expiry_tick <= now]:
            del self.active[key]
        self._next_expiry = min((ban.expiry_tick for ban in self.active.values()), default=0)

    def _guard(self, action: Callable[[], None], operation: str) -> bool:
        """The one place a backend's failure is caught (rule 3); each call is timed for
        :attr:`on_backend_call` (metrics), once per backend transaction."""
        started = time.perf_counter()
        try:
            action()
        except BackendError as exc:
            self.degraded = str(exc)
            log.warning("offload degraded: %s", exc)
            self.on_backend_call(operation, time.perf_counter() - started, False)
            return False
        self.on_backend_call(operation, time.perf_counter() - started, True)
        self.degraded = ""
        return True

    def _tell(self, commands: Sequence[Command]) -> None:
        """One backend transaction's commands: each to every listener, all at once to
        every batch listener."""
        for listener in self.listeners:
            for command in commands:
                listener(command)
        for batch_listener in self.batch_listeners:
            batch_listener(commands)


__all__ = ["Ban", "BatchListener", "Enforcer", "Gate", "Listener", "Unban"]
