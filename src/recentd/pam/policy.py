"""What a login does to the lists: pam_recent's ``+LIST`` and ``-LIST``, per list.

Rules of this module:

1. The config says, per list, what a successful login does: ``"+"`` adds the client's
   address (a list of known-good addresses), ``"-"`` removes it (the failures counted
   against it are forgotten). That is all pam_recent did, written as :class:`Route` s
   so a login reaches the tables as every other observation does
   (:func:`recentd.observation.apply_observation`).
2. Only a session *opening* acts on the lists (``Route.kind == "open"``); its closing is
   told too (``Observation.kind == "close"``), for the policy that keeps admin sessions
   allowed while they last, but it adds and removes nothing here.
3. Every forget is a value: :func:`apply_login` returns a :class:`Forget` for each
   ``-LIST`` that removed an entry, for the daemon to log. A guesser who got in clears
   his own record; the log line is what is left of it.
4. Pure: tables, routes, the observation and the tick in; what was done out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recentd.errors import ConfigError
from recentd.observation import (
    Action,
    Address,
    Evidence,
    Observation,
    Origin,
    Route,
    TableWrite,
    apply_observation,
)
from recentd.recent.registry import RecentTables

#: The config's words for what a login does to a list, as pam_recent wrote them.
LOGIN_ACTIONS: dict[str, Action] = {action.value: action for action in Action}
#: ``Observation.kind`` of a session opening; the routes act on these only.
OPENED = "open"


def login_routes(actions: Mapping[str, str], *, source: str = "") -> tuple[Route, ...]:
    """The routes of ``{list name: "+" | "-"}``, in the mapping's order.

    Args:
        actions: what a login does to each named list.
        source: the config file, for the error's message.

    Raises:
        ConfigError: a list name is empty, or an action is neither ``"+"`` nor ``"-"``.
    """
    routes = []
    for table, sign in actions.items():
        if not isinstance(table, str) or not table:
            raise ConfigError("a login's list needs a name", key="login", source=source)
        action = LOGIN_ACTIONS.get(sign) if isinstance(sign, str) else None
        if action is None:
            raise ConfigError(
                f"a login does '+' (add to {table}) or '-' (remove from {table}), not {sign!r}",
                key=f"login.{table}",
                value=sign,
                source=source,
            )
        routes.append(Route(Evidence.LOGIN, table, action, kind=OPENED))
    return tuple(routes)


@dataclass(frozen=True, slots=True)
class Forget:
    """A login removed ``address`` from ``table``: the evidence there is gone.

    ``str()`` is the line the daemon logs.
    """

    table: str
    address: Address
    user: str
    origin: Origin
    wall_ns: int

    def __str__(self) -> str:
        return (
            f"login of {self.user or '?'} from {self.address} ({self.origin}) "
            f"removed it from {self.table}: its record there is forgotten"
        )


@dataclass(frozen=True, slots=True)
class LoginEffect:
    """What one login did: every table write, and among them the forgets."""

    writes: tuple[TableWrite, ...]
    forgets: tuple[Forget, ...]


def apply_login(
    tables: RecentTables, routes: Sequence[Route], observation: Observation, tick: int
) -> LoginEffect:
    """Apply a login ``observation`` to ``tables`` at ``tick`` as ``routes`` say.

    Returns:
        the writes (as :func:`apply_observation` returns them) and one :class:`Forget`
        per removal that found an entry to remove.
    """
    writes = tuple(apply_observation(tables, routes, observation, tick))
    forgets = tuple(
        Forget(write.table, write.address, observation.user, observation.origin,
               observation.wall_ns)
        for write in writes
        if write.action is Action.REMOVE and write.changed
    )  # fmt: skip
    return LoginEffect(writes, forgets)
