"""The fleet's rules: which remote ban or unban a host adopts, and until when.

Rules of this module (docs/fleet.md says why):

1. The latest expiry wins: a ban already held is only ever lengthened by a remote ban.
2. An unban removes every ban of that list and network decided before it; a ban decided
   before an unban already seen is ignored (events from different origins interleave).
3. A host never adopts its own events (its bans are already local), nor events of a list
   it does not share, nor a ban on a protected network (the host's own addresses and
   the networks configured as such; the enforcer's allow list is checked again later).
4. Each origin is capped: at most ``rate_per_min`` bans a minute, none longer than
   ``max_duration_s`` (a longer one is cut to it), at most ``max_count`` bans in force.
   A ban over a cap is refused and says which cap.
5. Quorum: with ``quorum = K`` a ban is adopted only once K distinct origins reported a
   ban in force on the same list and network; it then lasts to the latest of their
   expiries.
6. Pure: every call takes ``now_ms`` (wall ms); nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from recentd.fleet.events import FleetEvent, Network, Op

MINUTE_MS = 60_000
#: What the merge keeps per (list, network): see :attr:`FleetEvent.key`.
Key = tuple[str, int, int, int]


@dataclass(frozen=True, slots=True)
class Caps:
    """Per-origin limits (rule 4) and the quorum (rule 5)."""

    rate_per_min: int = 6000
    max_duration_s: int = 7 * 86400
    max_count: int = 100_000
    quorum: int = 1


class Outcome(Enum):
    ADOPT = "adopt"  # ban (or lengthen the ban on) the network until ``until_ms``
    LIFT = "lift"  # lift the ban this host adopted
    IGNORED = "ignored"  # nothing to do (own event, older than what is held, expired…)
    REFUSED = "refused"  # over a cap, or a protected network
    PENDING = "pending"  # waiting for the quorum


class Decision(NamedTuple):
    """What a host does with one event (a named tuple, as :class:`FleetEvent` is: one per
    ban of the fleet)."""

    outcome: Outcome
    event: FleetEvent
    until_ms: int = 0
    why: str = ""


class Merge:
    """One host's view of the fleet's bans.

    Args:
        host: this host's name (its own events are ignored).
        lists: the shared lists.
        caps: per-origin caps and quorum.
        protected: networks never banned from the fleet.
    """

    def __init__(
        self, host: str, lists: Sequence[str], caps: Caps, protected: Sequence[Network] = ()
    ) -> None:
        self.host = host
        self.lists = frozenset(lists)
        self.caps = caps
        self.protected = tuple(protected)
        #: Each protected network as (version, first, last) addresses, as integers.
        self._protected = tuple((net.version, int(net.network_address),
                                 int(net.broadcast_address)) for net in self.protected)  # fmt: skip
        # What the fleet says about each (list, network), in dicts of numbers and strings,
        # which the garbage collector does not track (an object per network would be one
        # more for it to visit per ban of the fleet: bench/fleet.py):
        #: origin → the expiry it reported (ms).
        self.held: dict[Key, dict[str, int]] = {}
        #: the latest decision time among the reports (rule 2).
        self._decided: dict[Key, int] = {}
        #: the expiry adopted locally (none while not adopted).
        self._adopted: dict[Key, int] = {}
        self.lifted: dict[Key, int] = {}
        self._recent: dict[str, deque[int]] = {}
        self._by_origin: dict[str, set[Key]] = {}

    def receive(self, event: FleetEvent, now_ms: int) -> Decision:
        """What this host does with ``event`` at ``now_ms``."""
        if event.host == self.host:
            return Decision(Outcome.IGNORED, event, why="own event")
        if event.list_name not in self.lists:
            return Decision(Outcome.IGNORED, event, why=f"list {event.list_name} not shared")
        if event.op is Op.UNBAN:
            return self._unban(event)
        if self._protected:
            protected = self._protecting(event)
            if protected is not None:
                return Decision(Outcome.REFUSED, event, why=f"protected network {protected}")
        return self._ban(event, now_ms)

    def receive_many(self, events: Sequence[FleetEvent], now_ms: int) -> list[Decision]:
        """:meth:`receive` for each of ``events``, in order (one reply of the stream: up
        to 1,000). The usual event — a ban from another host, of a shared list, on a
        network nothing is held for, not lifted since, quorum 1 and no protected network — is
        decided here, as :meth:`_ban` and :meth:`_first_report` (its twins) decide it,
        without their calls; any other by :meth:`receive`."""
        if self.caps.quorum != 1 or self._protected:
            return [self.receive(event, now_ms) for event in events]
        held, lifted, lists, me = self.held, self.lifted, self.lists, self.host
        decided, adopted = self._decided, self._adopted
        longest, ban = now_ms + self.caps.max_duration_s * 1000, Op.BAN
        decisions = []
        for event in events:
            key = event.key
            if (event.op is not ban or event.host == me or event.list_name not in lists
                    or key in held or event.until_ms <= now_ms
                    or (lifted and lifted.get(key, 0) >= event.at_ms)):  # fmt: skip
                decisions.append(self.receive(event, now_ms))
                continue
            refused = self._over_cap(event, key, now_ms)
            if refused:
                decisions.append(Decision(Outcome.REFUSED, event, why=refused))
                continue
            until = min(event.until_ms, longest)
            held[key], decided[key], adopted[key] = {event.host: until}, event.at_ms, until
            self._by_origin[event.host].add(key)  # made by _over_cap
            decisions.append(Decision(Outcome.ADOPT, event, until, event.reason))
        return decisions

    def _protecting(self, event: FleetEvent) -> Network | None:
        """The protected network ``event``'s network overlaps, if any."""
        address = event.address
        first = int(address)
        last = first | ((1 << (address.max_prefixlen - event.prefixlen)) - 1)
        for network, (version, low, high) in zip(self.protected, self._protected, strict=True):
            if version == address.version and first <= high and low <= last:
                return network
        return None

    def _unban(self, event: FleetEvent) -> Decision:
        key = event.key
        self.lifted[key] = max(self.lifted.get(key, 0), event.at_ms)
        reports = self.held.get(key)
        if reports is None or self._decided[key] > event.at_ms:
            return Decision(Outcome.IGNORED, event, why="no older ban held")
        del self.held[key], self._decided[key]
        for origin in reports:
            self._by_origin.get(origin, set()).discard(key)
        if not self._adopted.pop(key, 0):
            return Decision(Outcome.IGNORED, event, why="the ban was not adopted")
        return Decision(Outcome.LIFT, event, why=f"unban by {event.host}")

    def _ban(self, event: FleetEvent, now_ms: int) -> Decision:
        key, caps, origin = event.key, self.caps, event.host
        until = min(event.until_ms, now_ms + caps.max_duration_s * 1000)
        reports = self.held.get(key)
        stale = self._nothing_new(event, key, reports, until, now_ms)
        if stale:
            return Decision(Outcome.IGNORED, event, why=stale)
        refused = self._over_cap(event, key, now_ms)
        if refused:
            return Decision(Outcome.REFUSED, event, why=refused)
        if reports is None:  # the usual case
            return self._first_report(event, key, until)
        reports[origin] = max(reports.get(origin, 0), until)
        self._decided[key] = max(self._decided[key], event.at_ms)
        self._by_origin[origin].add(key)  # made by _over_cap
        if caps.quorum == 1:  # the usual case, without a list of live reports
            live = [until] if len(reports) == 1 else [u for u in reports.values() if u > now_ms]
        else:
            live = [u for u in reports.values() if u > now_ms]
        if len(live) < caps.quorum:
            return Decision(Outcome.PENDING, event, why=f"{len(live)} of {caps.quorum} hosts")
        latest = max(live)
        if latest <= self._adopted.get(key, 0):
            return Decision(Outcome.IGNORED, event, why="already held to a later expiry")
        self._adopted[key] = latest
        return Decision(Outcome.ADOPT, event, until_ms=latest, why=event.reason)

    def _first_report(self, event: FleetEvent, key: Key, until: int) -> Decision:
        """The first report on ``key`` (rule 5 with one report, without its lists)."""
        self.held[key], self._decided[key] = {event.host: until}, event.at_ms
        self._by_origin[event.host].add(key)  # made by _over_cap
        if self.caps.quorum > 1:
            return Decision(Outcome.PENDING, event, why=f"1 of {self.caps.quorum} hosts")
        self._adopted[key] = until
        return Decision(Outcome.ADOPT, event, until, event.reason)

    def _nothing_new(self, event: FleetEvent, key: Key, known: dict[str, int] | None, until: int,
                     now_ms: int) -> str:  # fmt: skip
        """Why ``event`` changes nothing ("" when it may): ended, lifted, or a repeat."""
        if event.until_ms <= now_ms:
            return "expired"
        if self.lifted and self.lifted.get(key, 0) >= event.at_ms:
            return "lifted by a later unban"
        if known is not None and known.get(event.host, 0) >= until:
            # the snapshot and the stream overlap at a cold start; an outbox resends after
            # a crash: a repeat costs the origin nothing against its caps
            return "repeat"
        return ""

    def _over_cap(self, event: FleetEvent, key: Key, now_ms: int) -> str:
        caps, origin = self.caps, event.host
        recent = self._recent.get(origin)
        if recent is None:
            recent = self._recent[origin] = deque()
            self._by_origin.setdefault(origin, set())
        while recent and recent[0] <= now_ms - MINUTE_MS:
            recent.popleft()
        if len(recent) >= caps.rate_per_min:
            return f"rate cap: {origin} sent {caps.rate_per_min} bans in the last minute"
        keys = self._by_origin[origin]
        if len(keys) >= caps.max_count and key not in keys:
            self._forget_expired(origin, now_ms)
            if len(keys) >= caps.max_count:
                return f"count cap: {origin} holds {caps.max_count} bans in force"
        recent.append(now_ms)
        return ""

    def _forget_expired(self, origin: str, now_ms: int) -> None:
        keys = self._by_origin[origin]
        for key in list(keys):
            reports = self.held.get(key)
            if reports is None or reports.get(origin, 0) <= now_ms:
                keys.discard(key)

    def expire(self, now_ms: int) -> None:
        """Forget bans that ended, and unbans older than any ban still allowed."""
        for key in [k for k, reports in self.held.items() if max(reports.values()) <= now_ms]:
            for origin in self.held.pop(key):
                self._by_origin.get(origin, set()).discard(key)
            del self._decided[key]
            self._adopted.pop(key, None)
        horizon = now_ms - self.caps.max_duration_s * 1000
        for key in [k for k, at in self.lifted.items() if at < horizon]:
            del self.lifted[key]


def ended(event: FleetEvent, now_ms: int, caps: Caps) -> bool:
    """Whether ``event`` can no longer change any host's decision at ``now_ms``: a ban
    that ran out, or an unban older than any ban still allowed (rule 2 needs it no more).
    Such an event leaves the snapshot."""
    if event.op is Op.BAN:
        return event.until_ms <= now_ms
    return event.at_ms < now_ms - caps.max_duration_s * 1000
