"""Allow lists: addresses recentd never bans, and why each one is allowed.

Rules of this module:

1. Four kinds of entry, each saying why it is there (:class:`Allowed`): networks from
   the config (``[allow] addresses``), the host's own addresses (replaced wholesale by
   the adapter that reads them, :mod:`recentd.policy.hostaddrs`), the address of every
   live login session, and grants made at run time (``recentd ctl allow ADDR --for 1h``).
2. A login session is learned from the PAM hook (``Evidence.LOGIN``, ``open``/``close``:
   the address is allowed while at least one session from it is open) and from
   ``Accepted`` log lines (``Evidence.AUTH_SUCCESS``: a log says when a session starts,
   never when it ends, so such a session lasts ``log_session_ticks``, a day by default).
   When PAM closes the last session of an address, PAM knows better than the log: the
   address stops being allowed on that account.
3. Pure: time is a tick passed in; entries with an end carry it as a tick.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from recentd.observation import Address, Evidence, Observation
from recentd.pam.address import address_text

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The kinds of :class:`Allowed`, in the order ``ctl why`` and the logs name them.
CONFIG, HOST, SESSION, GRANT = "config", "host address", "login session", "allowed by ctl"


@dataclass(frozen=True, slots=True)
class Allowed:
    """One allow-list entry: ``network`` is allowed because of ``kind`` (``detail`` says
    more), until ``until_tick`` (0: no end)."""

    kind: str
    network: Network
    detail: str = ""
    until_tick: int = 0

    def covers(self, address: Address, now: int) -> bool:
        return address in self.network and (not self.until_tick or now < self.until_tick)

    def __str__(self) -> str:
        what = str(self.network.network_address) if _is_host(self.network) else str(self.network)
        return f"{what}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


def _is_host(network: Network) -> bool:
    return network.prefixlen == network.max_prefixlen


def address_of(family: int, addr: int) -> Address:
    """The ``ipaddress`` object of a table's ``(family, int)`` (``::1`` stays IPv6)."""
    return ipaddress.IPv4Address(addr) if family == 4 else ipaddress.IPv6Address(addr)


def host_network(address: Address) -> Network:
    """The one-address network of ``address``."""
    return ipaddress.ip_network(address)


@dataclass
class _Session:
    """Open PAM sessions from one address, and how long a log-seen login keeps it."""

    open: int = 0
    users: list[str] = field(default_factory=list)
    log_until: int = 0
    detail: str = ""


class AllowList:
    """The addresses never banned (see the module rules).

    Args:
        static: networks from the config, each with where it was given.
        log_session_ticks: how long a login seen only in a log keeps its address allowed.
    """

    def __init__(self, static: Iterable[Allowed] = (), *, log_session_ticks: int = 0) -> None:
        self.static = list(static)
        self.host: list[Allowed] = []
        self.grants: list[Allowed] = []
        self.log_session_ticks = log_session_ticks
        self._sessions: dict[Address, _Session] = {}
        #: The entries as (version, first, last address as integers, entry), and the
        #: lists they were made from (rebuilt when one is replaced or grows).
        self._ranges: tuple[tuple[int, int, int, Allowed], ...] = ()
        self._ranges_of: tuple[object, int, object, object] = (None, 0, None, None)

    def allows(self, address: Address, now: int) -> Allowed | None:
        """The first entry that allows ``address`` at ``now`` (None: not allowed).

        Every ban passes here (the enforcer's gate), 1,000 at a time from the fleet: the
        entries are compared as integer ranges, as :meth:`Allowed.covers` says."""
        ranges = self._entry_ranges()
        if ranges:
            version, number = address.version, int(address)
            for entry_version, first, last, entry in ranges:
                if (entry_version == version and first <= number <= last
                        and (not entry.until_tick or now < entry.until_tick)):  # fmt: skip
                    return entry
        session = self._sessions.get(address) if self._sessions else None
        if session is not None and (session.open or now < session.log_until):
            return self._session_entry(address, session)
        return None

    def _entry_ranges(self) -> tuple[tuple[int, int, int, Allowed], ...]:
        static, host, grants = self.static, self.host, self.grants
        made_of = self._ranges_of
        if (made_of[0] is not static or made_of[1] != len(static) or made_of[2] is not host
                or made_of[3] is not grants):  # fmt: skip
            self._ranges = tuple(
                (e.network.version, int(e.network.network_address),
                 int(e.network.broadcast_address), e) for e in (*static, *host, *grants))
            self._ranges_of = (static, len(static), host, grants)
        return self._ranges

    def _session_entry(self, address: Address, session: _Session) -> Allowed:
        if session.open:
            users = ", ".join(sorted(set(session.users)))
            detail = f"{session.open} open: {users} ({session.detail})"
            return Allowed(SESSION, host_network(address), detail)
        return Allowed(SESSION, host_network(address), session.detail, session.log_until)

    def set_host(self, addresses: Iterable[Address]) -> None:
        """The host's own addresses, as last read (replaces the previous set)."""
        self.host = [Allowed(HOST, host_network(a)) for a in sorted(set(addresses), key=_key)]

    def add_session(self, address: Address, until_tick: int, detail: str) -> Allowed:
        """A login session known some other way (the admin's, at start) until ``until_tick``."""
        session = self._sessions.setdefault(address, _Session())
        session.log_until = max(session.log_until, until_tick)
        session.detail = detail
        return self._session_entry(address, session)

    def grant(self, network: Network, until_tick: int, detail: str) -> Allowed:
        """Allow ``network`` until ``until_tick`` (0: until the daemon stops)."""
        entry = Allowed(GRANT, network, detail, until_tick)
        self.grants = [g for g in self.grants if g.network != network] + [entry]
        return entry

    def observe(self, observation: Observation, tick: int) -> Allowed | None:
        """Learn a login session from ``observation``; the entry it makes (None when
        the observation opens no session)."""
        address, who = observation.address, observation.user or "?"
        if observation.evidence is Evidence.LOGIN:
            session = self._sessions.setdefault(address, _Session())
            if observation.kind == "open":
                session.open += 1
                session.users.append(who)
                session.detail = str(observation.origin)
                return self._session_entry(address, session)
            if session.open:
                session.open -= 1
                if who in session.users:
                    session.users.remove(who)
            if not session.open:
                del self._sessions[address]  # PAM knows the session ended: rule 2
            return None
        if observation.evidence is Evidence.AUTH_SUCCESS and self.log_session_ticks:
            session = self._sessions.setdefault(address, _Session())
            if session.open:
                return self._session_entry(address, session)
            session.log_until = max(session.log_until, tick + self.log_session_ticks)
            session.detail = f"login of {who} seen in {observation.origin}"
            return self._session_entry(address, session)
        return None

    def expire(self, now: int) -> list[Allowed]:
        """Forget entries whose time is up; returns them."""
        gone = [g for g in self.grants if g.until_tick and now >= g.until_tick]
        self.grants = [g for g in self.grants if g not in gone]
        for address, session in list(self._sessions.items()):
            if not session.open and now >= session.log_until:
                gone.append(self._session_entry(address, session))
                del self._sessions[address]
        return gone

    def entries(self, now: int) -> list[Allowed]:
        """Every entry in force at ``now``."""
        sessions = [self._session_entry(a, s) for a, s in self._sessions.items()
                    if s.open or now < s.log_until]  # fmt: skip
        return [e for e in (*self.static, *self.host, *self.grants) if e.covers(
            e.network.network_address, now)] + sessions  # fmt: skip


def admin_address(environ: Mapping[str, str]) -> Address | None:
    """The address of the SSH client this process runs under (``SSH_CONNECTION``'s
    first field), or None (not started over SSH, or not an address)."""
    fields = environ.get("SSH_CONNECTION", "").split()
    text = address_text(fields[0]) if fields else None
    return None if text is None else ipaddress.ip_address(text)


def _key(address: Address) -> tuple[int, int]:
    return address.version, int(address)
