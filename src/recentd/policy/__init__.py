"""Policy: who is never banned, what a ban leads to, what is forgotten, and why.

Rules of this package:

1. Everything here but the adapters (:mod:`.hostaddrs`, :mod:`.conntrack`, :mod:`.store`)
   is pure: values in (tables, observations, ``now`` as a tick), values out.
2. An allowed address (:mod:`.allow`) is never held by a ban backend. The veto lives
   in the one place every ban passes, :class:`recentd.enforcer.Enforcer`, through its
   gate (:class:`.gate.PolicyGate`): packets, log lines, control writes and a future
   fleet source all reach the kernel through it.
3. A ban is evidence too (:data:`recentd.observation.Evidence.BAN`): routes can feed it
   into another list, so escalation is written as recent rules (:mod:`.escalation`).
4. Every event that moved an address (an observation, a ban, an unban, an allow) is kept
   in a bounded per-address history (:mod:`.history`) for ``recentd ctl why``.
"""

from recentd.policy.allow import Allowed, AllowList
from recentd.policy.durations import format_duration, parse_duration
from recentd.policy.settings import ListPolicy, PolicyConfig

__all__ = [
    "AllowList",
    "Allowed",
    "ListPolicy",
    "PolicyConfig",
    "format_duration",
    "parse_duration",
]
