"""Evidence in: what was seen, when, and where from — and how it reaches the tables.

Rules of this module:

1. Every producer of evidence other than a packet on its way through the rules — a log
   line, a journal entry, a PAM login, a control write, a fleet ban — hands recentd an
   :class:`Observation`: a value, never a callback.
2. An observation says *what* (:class:`Evidence`), *who* (an ``ipaddress`` address,
   validated by the producer; never taken from a field an attacker controls), *when*
   (``wall_ns``, the event's own time: a line read late still counts at its time) and
   *where from* (:class:`Origin`: enough to find the evidence again — ``ctl why``).
3. Observations do not decide anything. They write into named recent lists exactly as
   ``echo +ADDR > /proc/net/xt_recent/LIST`` would (pam_recent's idea), as the
   config's :class:`Route` s say; the iptables rules then decide, as they do for packets.
   A packet is evidence too, but it is judged by the rules directly
   (:meth:`recentd.rules.Engine.evaluate`); this module is the other half of the same
   model.
4. Pure: :func:`apply_observation` takes the tables, the routes, the observation and the
   tick it happened at, and returns what it wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from recentd.recent.registry import RecentTables

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Evidence(Enum):
    """What was seen. Values are the names used in config files and JSON output."""

    AUTH_FAILURE = "failure"  # one failed login attempt (a counted `Failed …`, a pre-auth close)
    AUTH_SUCCESS = "success"  # a successful login seen in a log (`Accepted …`)
    PROBE = "probe"  # a connection that never tried to log in (scanner, banner grab)
    LOGIN = "login"  # a session opened, told by the PAM hook
    CONTROL = "control"  # an explicit write through the control interface
    FLEET_BAN = "fleet_ban"  # another host of the fleet banned this address
    FLEET_UNBAN = "fleet_unban"  # another host of the fleet lifted its ban
    BAN = "ban"  # this host banned the address (kind: the list); escalation routes read it


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an observation came from, precisely enough to find it again.

    Attributes:
        source: the kind of producer: ``"file"``, ``"journal"``, ``"stdin"``, ``"pam"``,
            ``"control"``, ``"fleet"``, ``"capture"``, ``"nfqueue"``.
        name: which one: the file path, the journal, the PAM service, the peer host.
        position: where in it: ``"line 12"``, a journal cursor, a packet number, an
            event id ("" when it has none).
    """

    source: str
    name: str
    position: str = ""

    def __str__(self) -> str:
        where = f"{self.source} {self.name}" if self.name else self.source
        return f"{where} ({self.position})" if self.position else where


@dataclass(frozen=True, slots=True)
class Observation:
    """One piece of evidence about one address.

    Attributes:
        evidence: what was seen.
        address: whom it is about (validated; IPv4-mapped IPv6 already unmapped).
        wall_ns: when it happened, in wall-clock nanoseconds since the epoch.
        origin: where it came from.
        user: the user name the evidence names ("" when none); context only — it never
            selects the address.
        kind: the producer's finer classification (``"password"``, ``"invalid_user"``,
            ``"preauth_close"``, ``"penalty"`` …; "" when none).
        category: who was tried, for per-category lists: ``"root"``, ``"invalid"``,
            ``"valid"`` or ``"unknown"`` ("" when the evidence names no login).
        detail: free text for ``ctl why`` (the program that logged it, the reason of a
            fleet ban).
        until_ns: for a fleet ban, when it ends (wall ns; 0 otherwise): a fleet ban
            carries its own expiry rather than a rule's.
    """

    evidence: Evidence
    address: Address
    wall_ns: int
    origin: Origin
    user: str = ""
    kind: str = ""
    category: str = ""
    detail: str = ""
    until_ns: int = 0

    @property
    def family(self) -> int:
        return self.address.version


class Action(Enum):
    """What an observation does to a list: ``+ADDR`` or ``-ADDR`` in /proc terms."""

    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True)
class Route:
    """``evidence`` of this kind (optionally only of one ``kind``, or one user ``category``)
    does ``action`` on ``table``.

    A ``[[watch]]`` entry's ``failure = "SSH_AUTH"`` is
    ``Route(Evidence.AUTH_FAILURE, "SSH_AUTH", Action.ADD)``; its ``success = "SSH_AUTH"``
    is ``Route(Evidence.AUTH_SUCCESS, "SSH_AUTH", Action.REMOVE)``.
    """

    evidence: Evidence
    table: str
    action: Action
    kind: str = ""
    category: str = ""

    def applies_to(self, observation: Observation) -> bool:
        return (
            observation.evidence is self.evidence
            and (not self.kind or observation.kind == self.kind)
            and (not self.category or observation.category == self.category)
        )


@dataclass(frozen=True, slots=True)
class TableWrite:
    """What :func:`apply_observation` did: ``action`` on ``table`` for ``address``.

    ``changed`` is False for a removal of an address the table did not hold.
    """

    table: str
    action: Action
    address: Address
    changed: bool = True


def apply_observation(
    tables: RecentTables, routes: Sequence[Route], observation: Observation, tick: int
) -> list[TableWrite]:
    """Write ``observation`` into every table its routes name, at ``tick``.

    An addition stamps the entry exactly as ``+ADDR`` on ``/proc/net/xt_recent/LIST``
    does (created with TTL 0, or stamped with its TTL kept; masked with the table's
    mask); a removal deletes it. A route naming a table no rule holds writes nothing
    (the kernel has no such /proc file either).

    Returns:
        one :class:`TableWrite` per table written, in route order.
    """
    family, addr = observation.family, int(observation.address)
    writes: list[TableWrite] = []
    for route in routes:
        if not route.applies_to(observation):
            continue
        table = tables.get(route.table)
        if table is None:
            continue
        if route.action is Action.ADD:
            table.add(family, addr, tick)
            writes.append(TableWrite(route.table, route.action, observation.address))
        else:
            changed = table.remove(family, addr)
            writes.append(TableWrite(route.table, route.action, observation.address, changed))
    return writes
