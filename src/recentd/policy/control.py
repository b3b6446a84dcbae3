"""The daemon's answers to ``ctl unban``/``why``/``allow`` and the write veto
(:class:`recentd.control.dispatch.PolicyHooks`), over the daemon's own objects.

Runs in the daemon's thread (the control server's dispatch). Every kernel change goes
through the enforcer; the fleet is a seam: :attr:`ControlHooks.elsewhere` (empty
until a fleet source exists) — each callable takes the address out of one more place
and returns its name, or ``""`` when the address was not there.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Callable
from typing import TYPE_CHECKING

from recentd.commands import Unban
from recentd.control.protocol import AllowResult, ListPolicyResult, WhyEvent, WhyResult
from recentd.observation import Address
from recentd.policy.allow import Network, address_of
from recentd.policy.history import Event
from recentd.recent.procfs import ProcAction, parse_proc_write
from recentd.recent.ticks import wall_of_tick

if TYPE_CHECKING:
    from recentd.daemon import Daemon

log = logging.getLogger("recentd.policy")


def _toml_value(text: str) -> object:
    """``text`` as the config file would read it after ``key =``; bare words stay text
    (``7d``, ``+``), so ``ctl set SSH purge_after=7d`` needs no quotes."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class ControlHooks:
    """See the module docstring. ``daemon`` is the running daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        #: The fleet seam: more places an unban reaches (see the module docstring).
        self.elsewhere: list[Callable[[Address], str]] = []

    def allowed(self, address: Address) -> str:
        entry = self.daemon.policy.allows(address, self.daemon.clock.now_ticks())
        return "" if entry is None else str(entry)

    def written(self, table: str, data: bytes, forced: bool) -> None:
        command = parse_proc_write(data)
        if command.action is ProcAction.FLUSH:
            return
        address = address_of(command.family, command.addr)
        detail = "forced: the address is allowed" if forced and self.allowed(address) else ""
        self.daemon.policy.history.record(address, Event(
            self.daemon.clock.read().wall_ns, "control", table, command.action.value,
            "control write", detail))  # fmt: skip

    def unban(self, address: Address, removed_from: list[str]) -> list[str]:
        daemon, places = self.daemon, []
        now = daemon.clock.read()
        enforcer = daemon.enforcer
        if enforcer is not None and (address.version, int(address)) in enforcer.active:
            unban = Unban(address.version, address, "recentd ctl unban", "control")
            if enforcer.carry_out(unban, now.tick):
                places.append("kernel set (nftables inet recentd)")
        for remove in self.elsewhere:
            place = remove(address)
            if place:
                places.append(place)
        if removed_from and not places:
            daemon.policy.history.record(address, Event(
                now.wall_ns, "unban", ", ".join(removed_from), "-", "control",
                "recentd ctl unban"))  # fmt: skip
        return places

    def why(self, address: Address, result: WhyResult) -> WhyResult:
        daemon = self.daemon
        now = daemon.clock.read()
        events = [WhyEvent(e.wall_ns, e.what, e.table, e.action, e.origin, e.detail,
                           e.count, e.since_ns)
                  for e in daemon.policy.history.events(address)]  # fmt: skip
        allowed = daemon.policy.allows(address, now.tick)
        history = daemon.policy.history
        changes: dict[str, object] = {
            "events": events, "allowed": "" if allowed is None else str(allowed),
            "history_bound": f"last {history.per_address} events per address, "
                             f"{history.addresses} addresses",
        }  # fmt: skip
        ban = None if daemon.enforcer is None else daemon.enforcer.holding(
            address.version, int(address), now.tick)  # fmt: skip
        if ban is not None and daemon.planner is not None:
            changes.update(banned_until_wall_ns=ban.expiry_wall_ns, ban_reason=ban.reason,
                           ban_origin=ban.origin, rule=daemon.planner.case.describe())
        return dataclasses.replace(result, **changes)  # type: ignore[arg-type]

    def set_list(self, name: str, changes: dict[str, str]) -> ListPolicyResult:
        """Merge ``changes`` (config-file syntax) into list ``name``'s settings; module
        parameters go to the table itself (as ``SetParams`` does)."""
        from recentd.config import list_policy  # noqa: PLC0415 - the config's own checks

        policy = self.daemon.policy
        current = policy.config.of(name)
        table = {} if current is None else current.as_table()
        for key, text in changes.items():
            table[key] = _toml_value(text)
        settings = list_policy(name, table, "recentd ctl set")
        if settings.params and name in self.daemon.tables:
            self.daemon.tables.configure(name, **settings.params)
        policy.config = policy.config.with_list(settings)
        log.info("[lists.%s] changed at run time: %s", name,
                 ", ".join(f"{k} = {v}" for k, v in sorted(changes.items())))  # fmt: skip
        return ListPolicyResult(name, settings.as_table())

    def allow(self, network: Network, seconds: int) -> AllowResult:
        daemon = self.daemon
        now = daemon.clock.read()
        until = now.tick + seconds * daemon.config.hz if seconds else 0
        entry = daemon.policy.allow.grant(network, until, "recentd ctl allow")
        for address in (network.network_address,):
            daemon.policy.history.record(address, Event(now.wall_ns, "allow", "", "",
                                                        "control", str(entry)))  # fmt: skip
        withdrawn = []
        if daemon.enforcer is not None:
            withdrawn = [str(u.address) for u in daemon.enforcer.withdraw_refused(now.tick)]
        host = network.prefixlen == network.max_prefixlen
        shown = network.network_address if host else network
        return AllowResult(str(shown), wall_of_tick(now, until) if until else 0, withdrawn)
