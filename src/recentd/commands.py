"""Commands out: what the deciding side asks the enforcing side to do.

Rules of this module:

1. The pipeline (packets) and the daemon's observation path decide; they never call a
   backend. What they decide besides a verdict is a command: a small frozen value.
2. Commands are carried out in the order they were decided, by one guard
   (:class:`recentd.enforcer.Enforcer`), which is also the one holder of ban state.
3. A command says everything a user or a log needs without looking elsewhere: whom,
   until when (as a tick for the daemon, and as wall time for people), why, and what
   decided it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Ban:
    """Drop the ban class's packets from ``address`` until ``expiry_tick``.

    Attributes:
        family: 4 or 6.
        address: the banned address (validated; the table's full mask, so one host).
        expiry_tick: the first tick at which the rule would stop dropping.
        expiry_wall_ns: the same moment in wall time (epoch ns), for people and logs.
        timeout_s: whole seconds the kernel holds it, counted from the decision; rounded
            down, so the kernel drops a prefix of what user space would drop.
        reason: why, in words ("4 hits in 60 s in list SSH").
        origin: what decided it ("packet", "observation file /var/log/auth.log (line 3)",
            "restore").
        rule_expiry_tick: when the rule itself stops dropping, if the policy made the ban
            longer (escalation, :mod:`recentd.policy.escalation`); 0: ``expiry_tick``.
        prefix: for a masked list, the network's prefix length (``address`` is the
            network's; ``None``: the one address).
    """

    family: int
    address: Address
    expiry_tick: int
    expiry_wall_ns: int
    timeout_s: int
    reason: str
    origin: str
    rule_expiry_tick: int = 0
    prefix: int | None = None

    @property
    def rule_expiry(self) -> int:
        """The tick the rule's own drop ends (what a re-planned ban is compared by)."""
        return self.rule_expiry_tick or self.expiry_tick


@dataclass(frozen=True, slots=True)
class Unban:
    """Lift the ban on ``address`` now (its entry was evicted, removed or changed)."""

    family: int
    address: Address
    reason: str
    origin: str


Command = Ban | Unban
