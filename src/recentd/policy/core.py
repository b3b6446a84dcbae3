"""The policy the daemon applies: allow lists, escalation, history — one object, pure.

Rules of this module:

1. :class:`Policy` is the enforcer's gate (:class:`recentd.enforcer.Gate`): a ban of an
   allowed address is refused, with the allow entry as the reason, and logged once per
   address (until that address stops being allowed); any other ban is lengthened as its
   list's ``ban_multiplier``/``ban_max`` say (:func:`~recentd.policy.escalation.escalate`).
2. Evidence about an allowed address adds it to no list: :meth:`Policy.screen` drops the
   ``+ADDR`` routes of such an observation (a login's own ``+``/``-`` routes still act),
   and the history says it was ignored and why. Packets are judged by the admin's own
   rules as written; the kernel never holds an allowed address whatever they decide.
3. Everything that moves an address is recorded in the history (:mod:`.history`).
4. Pure: ticks and wall times are arguments; logging is the only side effect.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from recentd.commands import Ban, Unban
from recentd.observation import Action, Address, Evidence, Observation, Route, TableWrite
from recentd.policy.allow import Allowed, AllowList
from recentd.policy.escalation import escalate
from recentd.policy.history import Event, History
from recentd.policy.settings import ListPolicy, PolicyConfig

log = logging.getLogger("recentd.policy")

#: The origin a ban re-asserted from the saved tables carries (see live/policy.py).
RESTORE = "restore"


class Policy:
    """Allow lists, escalation and history for one daemon.

    Args:
        config: the ``[allow]`` and ``[lists.NAME]`` settings.
        hz: ticks per second of every ``now``.
        ban_list: the list whose drops become kernel bans (the offload case's), if any.
    """

    def __init__(self, config: PolicyConfig, hz: int, ban_list: str | None = None) -> None:
        self.config = config
        self.hz = hz
        self.ban_list = ban_list
        self.allow = AllowList(config.allow, log_session_ticks=config.log_session_s * hz)
        self.history = History(config.history_per_address, config.history_addresses)
        self._told: set[Address] = set()
        #: (config, ban list) → the ban list's settings: asked once per ban, changed only
        #: by a reload or ``ctl set`` (a new config object).
        self._ban_settings: tuple[PolicyConfig, str | None, ListPolicy | None] = (
            config, ban_list, config.of(ban_list) if ban_list else None)

    def ban_settings(self) -> ListPolicy | None:
        """The settings of the ban list, if the config has a table for it."""
        config, ban_list, settings = self._ban_settings
        if config is not self.config or ban_list != self.ban_list:
            settings = self.config.of(self.ban_list) if self.ban_list else None
            self._ban_settings = (self.config, self.ban_list, settings)
        return settings

    # ---- the gate --------------------------------------------------------------------------

    def allows(self, address: Address, now: int) -> Allowed | None:
        return self.allow.allows(address, now)

    def review(self, ban: Ban, held: Ban | None, now: int) -> Ban | str:
        """See rule 1."""
        allowed = self.allow.allows(ban.address, now)
        if allowed is not None:
            reason = f"allowed: {allowed}"
            if ban.address not in self._told:
                self._told.add(ban.address)
                log.warning("ban of %s refused (%s; %s): %s", ban.address, ban.reason,
                            ban.origin, reason)  # fmt: skip
                self.history.record(ban.address, Event(
                    ban.expiry_wall_ns - ban.timeout_s * 1_000_000_000, "refused ban",
                    self.ban_list or "", "", ban.origin, f"{ban.reason}; {reason}"))  # fmt: skip
            return reason
        if self._told:
            self._told.discard(ban.address)
        settings = self.ban_settings()
        if settings is None:
            return ban
        counted = self.history.bans(ban.address)
        fresh = held is None and ban.origin != RESTORE
        return escalate(ban, max(1, counted + fresh), settings, self.hz)

    # ---- evidence --------------------------------------------------------------------------

    def screen(self, observation: Observation, routes: Sequence[Route], tick: int
               ) -> tuple[Route, ...]:  # fmt: skip
        """Learn login sessions from ``observation``; the routes it may take (rule 2)."""
        self.allow.observe(observation, tick)
        allowed = self.allow.allows(observation.address, tick)
        if allowed is None or observation.evidence is Evidence.LOGIN:
            return tuple(routes)
        kept = tuple(r for r in routes if r.action is not Action.ADD)
        if any(r.action is Action.ADD and r.applies_to(observation) for r in routes):
            self.history.record(observation.address, Event(
                observation.wall_ns, "ignored", "", "", str(observation.origin),
                f"{observation.evidence.value}: allowed: {allowed}"))  # fmt: skip
        return kept

    def record_writes(self, observation: Observation, writes: Sequence[TableWrite]) -> None:
        """One history event per list write (an observation that wrote nothing is not
        kept, except a login, which the allow list acted on)."""
        kind = "" if observation.evidence is Evidence.BAN else observation.kind
        detail = " ".join(part for part in (
            f"user {observation.user}" if observation.user else "", kind,
            observation.category, observation.detail) if part)  # fmt: skip
        what = observation.evidence.value
        if observation.evidence is Evidence.LOGIN and not writes:
            self.history.record(observation.address, Event(
                observation.wall_ns, what, "", "", str(observation.origin), detail))
        for write in writes:
            if write.changed or write.action is Action.ADD:
                self.history.record(write.address, Event(
                    observation.wall_ns, what, write.table, write.action.value,
                    str(observation.origin), detail))  # fmt: skip

    def record_bans(self, bans: Sequence[Ban], wall_ns: int) -> None:
        """One backend transaction's bans that put their addresses into the backend afresh
        (counted for escalation), recorded as one batch
        (:meth:`~recentd.policy.history.History.record_many`)."""
        table = self.ban_list or ""

        def event_of(ban: Ban) -> tuple[Event, bool]:
            return Event(wall_ns, "ban", table, "", ban.origin,
                         f"{ban.reason}; {ban.timeout_s} s"), ban.origin != RESTORE  # fmt: skip

        self.history.record_many(bans, event_of)

    def record_unban(self, unban: Unban, wall_ns: int) -> None:
        self.history.record(unban.address, Event(
            wall_ns, "unban", self.ban_list or "", "", unban.origin, unban.reason))

    def purge_limits(self) -> dict[str, int]:
        """Per list, the idle ticks after which an entry is purged."""
        return {lp.name: lp.purge_after_s * self.hz
                for lp in self.config.lists if lp.purge_after_s}  # fmt: skip

    def expire(self, now: int) -> list[Allowed]:
        """Forget allow entries whose time is up (timer); each is logged."""
        gone = self.allow.expire(now)
        for entry in gone:
            log.info("no longer allowed: %s", entry)
        return gone
