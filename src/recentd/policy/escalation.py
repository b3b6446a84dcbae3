"""Escalation: repeat offenders are banned for longer, the one-model way first.

1. **A ban is evidence.** Each ban offloaded from list S is an observation
   (:data:`~recentd.observation.Evidence.BAN`, ``kind`` = S, :func:`ban_observation`);
   ``[lists.RECIDIVE] on_ban_of = ["S"]`` routes it as ``+ADDR`` into RECIDIVE, and a
   rule does the rest (fail2ban's recidive jail)::

       -A SSH_CHECK -m recent --rcheck --seconds 86400 --hitcount 3 --name RECIDIVE -j DROP

   The tables persist, so the count survives restarts.
2. **Multiplier and cap**, only because rules cannot say it: an xt_recent window is a
   constant of its rule, so no rule can make the n-th ban of an address last
   ``m**(n-1)`` times the first (a ladder of lists can only give a fixed number of
   steps). ``ban_multiplier``/``ban_max`` stretch the *kernel* ban's timeout
   (:func:`escalate`); the address's packets that reach user space meanwhile are dropped
   by the enforcer's look-up, so user space and kernel agree.
"""

from __future__ import annotations

from recentd.commands import Ban
from recentd.observation import Evidence, Observation, Origin
from recentd.policy.settings import ListPolicy


def ban_observation(ban: Ban, table: str, wall_ns: int) -> Observation:
    """The evidence a ban from list ``table`` is (for ``on_ban_of`` routes)."""
    detail = f"{ban.reason}; {ban.timeout_s} s"
    return Observation(Evidence.BAN, ban.address, wall_ns, Origin("ban", table, ban.origin),
                       kind=table, detail=detail)  # fmt: skip


def escalate(ban: Ban, ordinal: int, policy: ListPolicy, hz: int) -> Ban:
    """``ban`` as the ``ordinal``-th ban (1: first) of its address under ``policy``.

    The timeout becomes ``timeout_s * ban_multiplier**(ordinal-1)``, at most
    ``ban_max_s`` (and never shorter than the rule's own); the expiry moves with it,
    and ``rule_expiry_tick`` keeps the rule's own end, so a re-planned ban with the same
    rule expiry is recognised as the same ban.
    """
    if policy.ban_multiplier == 1.0 or ordinal <= 1:
        return ban
    longer = int(ban.timeout_s * policy.ban_multiplier ** (ordinal - 1))
    if policy.ban_max_s:
        longer = min(longer, policy.ban_max_s)
    if longer <= ban.timeout_s:
        return ban
    extra = longer - ban.timeout_s
    return Ban(ban.family, ban.address, ban.expiry_tick + extra * hz,
               ban.expiry_wall_ns + extra * 1_000_000_000, longer,
               f"{ban.reason}; ban {ordinal}: x{policy.ban_multiplier:g}"
               + (f" (max {policy.ban_max_s} s)" if policy.ban_max_s else ""),
               ban.origin, ban.rule_expiry, ban.prefix)  # fmt: skip
