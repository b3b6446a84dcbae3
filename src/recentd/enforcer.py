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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from recentd.backends import BanBackend, KernelBan
from recentd.commands import Ban, Command, Unban
from recentd.errors import BackendError

log = logging.getLogger("recentd.enforcer")

#: Called with each command the backend carried out (logs, transcripts, metrics).
Listener = Callable[[Command], None]


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
        if not self._guard(lambda: self.backend.remove(command.family, command.address)):
            return False
        del self.active[key]
        self.unbans += 1
        log.info("ban withdrawn: %s (%s)", command.address, command.reason)
        self._tell(command)
        return True

    def carry_out_bans(self, bans: Iterable[Ban], now: int) -> list[Ban]:
        """Carry out many bans as one backend transaction (a restore re-asserts thousands).
        Returns those that changed the backend, in order."""
        self._expire(now)
        if now < self._retry_tick:
            return []
        fresh: dict[tuple[int, int], Ban] = {}
        for ban in bans:
            key = (ban.family, int(ban.address))
            held = self.active.get(key)
            if held is None or held.expiry_tick != ban.expiry_tick:
                fresh[key] = ban
        if not fresh:
            return []
        batch = [KernelBan(b.family, b.address, b.timeout_s, b.prefix) for b in fresh.values()]
        if not self._guard(lambda: self.backend.add_many(batch)):
            self._retry_tick = now + self.hz
            return []
        self.active.update(fresh)
        self.bans += len(fresh)
        soonest = min(ban.expiry_tick for ban in fresh.values())
        self._next_expiry = min(self._next_expiry, soonest) if self._next_expiry else soonest
        done = list(fresh.values())
        for ban in done:
            log.info("ban offloaded: %s for %d s (%s; %s)", ban.address, ban.timeout_s,
                     ban.reason, ban.origin)  # fmt: skip
            self._tell(ban)
        return done

    def expire(self, now: int) -> None:
        """Forget bans the backend has let lapse by itself (their timeout ran out)."""
        self._expire(now)

    def clear(self) -> bool:
        """Lift every ban (after a reload, the old ones no longer follow from the rules)."""
        if not self._guard(self.backend.flush):
            return False
        self.active.clear()
        self._next_expiry = 0
        return True

    def uninstall(self) -> bool:
        """Remove the backend's kernel objects (daemon stop)."""
        if not self._guard(self.backend.uninstall):
            return False
        self.active.clear()
        return True

    def _expire(self, now: int) -> None:
        if not self._next_expiry or now < self._next_expiry:
            return
        for key in [k for k, ban in self.active.items() if ban.expiry_tick <= now]:
            del self.active[key]
        self._next_expiry = min((ban.expiry_tick for ban in self.active.values()), default=0)

    def _guard(self, action: Callable[[], None]) -> bool:
        """The one place a backend's failure is caught (rule 3)."""
        try:
            action()
        except BackendError as exc:
            self.degraded = str(exc)
            log.warning("offload degraded: %s", exc)
            return False
        self.degraded = ""
        return True

    def _tell(self, command: Command) -> None:
        for listener in self.listeners:
            listener(command)


__all__ = ["Ban", "Enforcer", "Listener", "Unban"]
