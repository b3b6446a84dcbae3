"""Per-address evidence history, for ``recentd ctl why``: bounded, and kept with the state.

Rules of this module:

1. An :class:`Event` says what happened to an address, when (wall ns), to which list,
   and where the evidence came from (``file /var/log/auth.log (line 12)``, a journal
   cursor, ``pam sshd``, ``control``, ``packet``) — what ``why`` prints.
2. Bounded: at most ``per_address`` events per address (the oldest go first) and
   ``addresses`` addresses (the least recently touched go first). With the defaults
   (32 × 10,000) the history holds at most 320,000 events, ~60 MB at worst.
3. A count of bans per address is kept apart from the events, so escalation does not
   forget a ban because failures pushed it out of the event ring.
4. A batch (the bans of one backend transaction: up to 1,000 from the fleet at once) is
   recorded as one item, in O(1) (:meth:`History.record_many`), and becomes per-address
   events only when the history is next read or written otherwise — ``ctl why``, the
   escalation's count, the store's save — in the order it happened. When the batches
   waiting hold more than ``addresses`` distinct addresses, only the newest
   ``addresses`` of them are ever made into events: the rest would be forgotten at once
   (rule 2). Batches nobody reads are made into events once they hold twice
   ``addresses`` items, so the memory stays bounded.
5. A run of events alike but for their time and origin (a flood of failures from one
   address, each from its own log line) is kept as one event with a count, so a flood
   does not push the events that matter out of the ring.
6. Pure; :meth:`History.to_json` / :meth:`History.from_json` give the persisted form
   (:mod:`recentd.policy.store` writes it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from recentd.errors import StateFileError
from recentd.observation import Address


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to an address.

    Attributes:
        wall_ns: when (the evidence's own time, epoch ns).
        what: ``failure``, ``success``, ``login``, ``control``, ``ban``, ``unban``,
            ``allow``, ``purge``, ``ignored`` … (an :class:`~recentd.observation.Evidence`
            value, or a policy action).
        table: the list written (``""``: none).
        action: ``"+"``, ``"-"`` or ``""``.
        origin: where the evidence came from.
        detail: more words (a ban's reason and timeout, a user name).
        count: how many such events in a row this one stands for (rule 5); the
            latest's time and origin are kept, and the first's time in ``since_ns``.
    """

    wall_ns: int
    what: str
    table: str = ""
    action: str = ""
    origin: str = ""
    detail: str = ""
    count: int = 1
    since_ns: int = 0

    def same_kind(self, other: Event) -> bool:
        return (self.what, self.table, self.action, self.detail) == (
            other.what, other.table, other.action, other.detail)  # fmt: skip


#: An event's fields, as its saved form names them (``asdict`` without its deep copy:
#: the fields are numbers and strings, and a save writes up to 320,000 events).
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(Event))


@dataclass
class _Record:
    events: deque[Event]
    bans: int = 0


class Addressed(Protocol):
    """What a batch is made of: anything about one address (a ban)."""

    @property
    def address(self) -> Address: ...


_Item = TypeVar("_Item", bound=Addressed)
#: A batch waiting to become events: its items, and how one becomes (event, counts as a ban).
_Batch = tuple[Sequence[Any], Callable[[Any], tuple[Event, bool]]]
#: One item of a batch, with its batch's ``event_of``.
_BatchItem = tuple[Any, Callable[[Any], tuple[Event, bool]]]


@dataclass
class History:
    """The bounded history (see the module rules)."""

    per_address: int = 32
    addresses: int = 10_000
    _records: OrderedDict[Address, _Record] = field(default_factory=OrderedDict)
    #: Bumped at every change, so the store writes only when something changed.
    version: int = 0
    #: Batches recorded and not yet made into events, oldest first (rule 4).
    _batches: list[_Batch] = field(default_factory=list)
    #: How many items they hold.
    _waiting: int = 0

    def record_many(self, items: Sequence[_Item],
                    event_of: Callable[[_Item], tuple[Event, bool]]) -> None:  # fmt: skip
        """Record one event per item of ``items``, in order: ``event_of(item)`` is its
        event and whether it counts as a ban. O(1) now; the events are made when the
        history is next read (rule 4)."""
        if items:
            self._batches.append((items, event_of))
            self._waiting += len(items)
            self.version += 1
            if self._waiting > 2 * self.addresses:  # unread for long: at most half is kept
                self._settle()

    def _settle(self) -> None:
        """Make the waiting batches into events (rule 4)."""
        batches, self._batches = self._batches, []
        waiting, self._waiting = self._waiting, 0
        if not batches:
            return
        if waiting <= self.addresses:  # the usual case
            kept = [(item, event_of) for items, event_of in batches for item in items]
        else:
            kept = self._newest(batches)
        version = self.version
        for item, event_of in kept:
            event, ban = event_of(item)
            self.record(item.address, event, ban=ban)
        self.version = version

    def _newest(self, batches: list[_Batch]) -> list[_BatchItem]:
        """The items of ``batches`` that outlive them, oldest first: those of the newest
        ``addresses`` distinct addresses. Every other address is then older than all of
        them, so its record is forgotten here (rule 2)."""
        kept: list[_BatchItem] = []
        seen: set[Address] = set()
        full = False
        for items, event_of in reversed(batches):  # newest first
            for item in reversed(items):
                address = item.address
                if not full:
                    seen.add(address)
                    kept.append((item, event_of))
                    full = len(seen) >= self.addresses
                elif address in seen:  # an older event of an address still remembered
                    kept.append((item, event_of))
        if full:
            self._records = OrderedDict(
                (address, rec) for address, rec in self._records.items() if address in seen)
        kept.reverse()
        return kept

    def record(self, address: Address, event: Event, *, ban: bool = False) -> None:
        """Add ``event`` to ``address``'s history (``ban``: also count one ban)."""
        if self._batches:
            self._settle()
        rec = self._records.get(address)
        if rec is None:
            rec = self._records[address] = _Record(deque(maxlen=self.per_address))
            while len(self._records) > self.addresses:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(address)
        last = rec.events[-1] if rec.events else None
        if last is not None and last.same_kind(event):
            rec.events[-1] = dataclasses.replace(
                event, count=last.count + 1, since_ns=last.since_ns or last.wall_ns)
        else:
            rec.events.append(event)
        rec.bans += ban
        self.version += 1

    def events(self, address: Address) -> list[Event]:
        if self._batches:
            self._settle()
        rec = self._records.get(address)
        return [] if rec is None else list(rec.events)

    def bans(self, address: Address) -> int:
        """How many bans ``address`` has had (as far as the history remembers it)."""
        if self._batches:
            self._settle()
        rec = self._records.get(address)
        return 0 if rec is None else rec.bans

    def __len__(self) -> int:
        if self._batches:
            self._settle()
        return len(self._records)

    def to_json(self) -> dict[str, Any]:
        if self._batches:
            self._settle()
        return {
            "per_address": self.per_address,
            "addresses": [
                {"addr": str(addr), "bans": rec.bans,
                 "events": [{name: getattr(event, name) for name in _EVENT_FIELDS}
                            for event in rec.events]}
                for addr, rec in self._records.items()
            ],
        }  # fmt: skip

    def load_json(self, data: object, source: str) -> None:
        """Replace the history by the persisted form ``data`` (from ``source``).

        Raises:
            StateFileError: ``data`` is not that form.
        """
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            records: OrderedDict[Address, _Record] = OrderedDict()
            for item in data["addresses"]:
                addr = ipaddress.ip_address(item["addr"])
                events = deque((Event(**event) for event in item["events"]),
                               maxlen=self.per_address)  # fmt: skip
                if not isinstance(item["bans"], int):
                    raise TypeError("bans: expected an integer")
                records[addr] = _Record(events, item["bans"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(f"not a recentd policy history ({exc!r})", path=source) from None
        while len(records) > self.addresses:
            records.popitem(last=False)
        self._records = records
        self._batches, self._waiting = [], 0
        self.version += 1
