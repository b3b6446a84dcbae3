"""Pushing planned bans to a :class:`BanBackend`, and taking back the stale ones.

One guard per adapter (STYLE practice 7): a :class:`BackendError` from the
backend marks offload *degraded* and is logged; user space stays authoritative,
so a failed push costs only speed, never a decision. After a failed push no new
ban is tried for one second (the pipeline pushes as soon as it decides, so a
broken backend must not be retried per dropped packet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from recentd.errors import BackendError
from recentd.live.offload import Ban, BanBackend
from recentd.live.policy import BanPlanner, PlannedBan

log = logging.getLogger("recentd.offload")


@dataclass
class Offloader:
    """The bans currently in the kernel, keyed by (family, address)."""

    backend: BanBackend
    planner: BanPlanner
    active: dict[tuple[int, int], PlannedBan] = field(default_factory=dict)
    degraded: str = ""
    pushed: int = 0
    _next_expiry: int = 0
    _retry_tick: int = 0

    def push(self, planned: list[PlannedBan], now: int) -> list[Ban]:
        """Add the new bans (one backend batch when it supports it). Returns them."""
        self._expire(now)
        if now < self._retry_tick:
            return []
        fresh: dict[tuple[int, int], PlannedBan] = {}
        for item in planned:
            key = (item.ban.family, int(item.ban.addr))
            if key not in self.active:
                fresh[key] = item
        if not fresh:
            return []
        bans = [item.ban for item in fresh.values()]
        if self._guard(lambda: _add_all(self.backend, bans)):
            self.active.update(fresh)
            self.pushed += len(bans)
            soonest = min(item.expiry_tick for item in fresh.values())
            self._next_expiry = min(self._next_expiry, soonest) if self._next_expiry else soonest
            return bans
        self._retry_tick = now + self.planner.hz
        return []

    def reconcile(self, now: int) -> list[Ban]:
        """Remove bans whose table entry was evicted, removed or changed."""
        self._expire(now)
        removed = []
        for item in self.planner.stale(list(self.active.values())):
            ban = item.ban
            if self._guard(lambda b=ban: self.backend.remove(b.family, b.addr)):
                del self.active[(ban.family, int(ban.addr))]
                removed.append(ban)
        return removed

    def clear(self) -> None:
        """Forget every ban (after a reload, the old ones no longer follow from the rules)."""
        if self._guard(self.backend.flush):
            self.active.clear()

    def _expire(self, now: int) -> None:
        if not self._next_expiry or now < self._next_expiry:
            return
        for key in [k for k, item in self.active.items() if item.expiry_tick <= now]:
            del self.active[key]
        self._next_expiry = min((item.expiry_tick for item in self.active.values()), default=0)

    def _guard(self, action: object) -> bool:
        try:
            action()  # type: ignore[operator]
        except BackendError as exc:
            self.degraded = str(exc)
            log.warning("offload degraded: %s", exc)
            return False
        self.degraded = ""
        return True


def _add_all(backend: BanBackend, bans: list[Ban]) -> None:
    add_many = getattr(backend, "add_many", None)
    if add_many is not None:
        add_many(bans)
        return
    for ban in bans:
        backend.add(ban.family, ban.addr, ban.timeout_s)
