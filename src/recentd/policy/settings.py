"""What the config says about policy: the allow list and each list's settings, as values.

Rules: built once by :mod:`recentd.config` (which checks every value and names the key
and ``FILE:LINE`` of a bad one); read by the daemon and :mod:`recentd.policy.core`.
Nothing here reads a file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from recentd.observation import Action, Evidence, Route
from recentd.pam.policy import login_routes
from recentd.policy.allow import Allowed

#: A session seen only in a log (``Accepted …``) keeps its address allowed this long.
LOG_SESSION_S = 86400
#: ``ctl why``'s memory: events kept per address, and addresses kept (least recently
#: touched forgotten first).
HISTORY_PER_ADDRESS = 32
HISTORY_ADDRESSES = 10_000
#: The module parameters a ``[lists.NAME]`` table may set for that list alone.
LIST_PARAMS = ("ip_list_tot", "ip_pkt_list_tot", "ip_list_perms", "ip_list_uid", "ip_list_gid")


@dataclass(frozen=True, slots=True)
class ListPolicy:
    """One ``[lists.NAME]`` table.

    Attributes:
        name: the list (a recent table named by the rules).
        params: module parameters for this list alone (:data:`LIST_PARAMS`).
        purge_after_s: entries idle longer than this are removed (0: never).
        on_ban_of: each ban offloaded from one of these lists does ``+ADDR`` here.
        ban_multiplier: the n-th ban of an address lasts ``multiplier**(n-1)`` times
            what the rule says (1: as the rule says).
        ban_max_s: no multiplied ban lasts longer (0: no cap).
        login: what a PAM login does to this list: ``"+"``, ``"-"`` or ``""`` (nothing).
        cut_connections: a ban from this list also deletes the source's conntrack
            entries, so its established sessions stop.
        origin: ``FILE:LINE`` of the table.
    """

    name: str
    params: Mapping[str, int] = field(default_factory=dict)
    purge_after_s: int = 0
    on_ban_of: tuple[str, ...] = ()
    ban_multiplier: float = 1.0
    ban_max_s: int = 0
    login: str = ""
    cut_connections: bool = False
    origin: str = ""

    def as_table(self) -> dict[str, object]:
        """The settings as a ``[lists.NAME]`` table would write them (durations in s)."""
        return {
            **self.params, "purge_after": self.purge_after_s, "on_ban_of": list(self.on_ban_of),
            "ban_multiplier": self.ban_multiplier, "ban_max": self.ban_max_s,
            "login": self.login, "cut_connections": self.cut_connections,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class AllowSettings:
    """The ``[allow]`` table: networks never banned, and how long a login seen only in
    a log keeps its address allowed."""

    entries: tuple[Allowed, ...] = ()
    log_session_s: int = LOG_SESSION_S


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The whole policy: ``[allow]`` and every ``[lists.NAME]``."""

    allow: tuple[Allowed, ...] = ()
    log_session_s: int = LOG_SESSION_S
    lists: tuple[ListPolicy, ...] = ()
    history_per_address: int = HISTORY_PER_ADDRESS
    history_addresses: int = HISTORY_ADDRESSES

    def with_list(self, settings: ListPolicy) -> PolicyConfig:
        """A copy with ``settings`` replacing (or added as) its list's table."""
        others = tuple(lp for lp in self.lists if lp.name != settings.name)
        return dataclasses.replace(self, lists=(*others, settings))

    def of(self, name: str) -> ListPolicy | None:
        """The settings of list ``name``, if the config has a table for it."""
        return next((lp for lp in self.lists if lp.name == name), None)

    def ban_routes(self) -> tuple[Route, ...]:
        """Escalation routes: a ban offloaded from list S does ``+ADDR`` on every list
        whose ``on_ban_of`` names S (the ban observation's ``kind`` is S)."""
        return tuple(
            Route(Evidence.BAN, lp.name, Action.ADD, kind=source)
            for lp in self.lists
            for source in lp.on_ban_of
        )

    def login_routes(self) -> tuple[Route, ...]:
        """pam_recent's ``+LIST``/``-LIST``, from each list's ``login`` key."""
        return login_routes({lp.name: lp.login for lp in self.lists if lp.login})
