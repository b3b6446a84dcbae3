"""The history's batches (rule 4 of recentd.policy.history): recorded in one call, read
back as the same events in the same order as one record per item, within the bounds."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from recentd.observation import Address
from recentd.policy.history import Event, History


@dataclass(frozen=True)
class Item:
    address: Address
    origin: str


def _event_of(item: Item) -> tuple[Event, bool]:
    return Event(1, "ban", "SSH", "", item.origin, "4 hits in 60 s; 600 s"), True


def _items(first: int, count: int, origin: str) -> list[Item]:
    return [Item(ipaddress.IPv4Address(first + n), f"{origin} {n}") for n in range(count)]


def _one_by_one(history: History, batches: list[list[Item]]) -> None:
    for batch in batches:
        for item in batch:
            event, ban = _event_of(item)
            history.record(item.address, event, ban=ban)


def _same(a: History, b: History) -> None:
    assert a.to_json() == b.to_json()
    assert len(a) == len(b)


def test_a_batch_reads_back_as_one_record_per_item_interleaved_in_order() -> None:
    batches = [_items(0x0A000000, 50, "fleet host-b"), _items(0x0A000020, 50, "fleet host-c")]
    lazy, eager = History(per_address=4, addresses=100), History(per_address=4, addresses=100)
    failure = Event(0, "failure", "SSH", "+", "file auth.log (line 1)")
    for history in (lazy, eager):
        history.record(ipaddress.IPv4Address(0x0A000021), failure)
    lazy.record_many(batches[0], _event_of)
    lazy.record(ipaddress.IPv4Address(0x0A000030), failure)  # between the batches
    lazy.record_many(batches[1], _event_of)
    _one_by_one(eager, [batches[0]])
    eager.record(ipaddress.IPv4Address(0x0A000030), failure)
    _one_by_one(eager, [batches[1]])
    _same(lazy, eager)
    # two bans alike but for their origin: one event counted twice, the latest origin kept
    assert [(e.origin, e.count) for e in lazy.events(ipaddress.IPv4Address(0x0A000021))] == [
        ("file auth.log (line 1)", 1), ("fleet host-c 1", 2)]
    assert lazy.bans(ipaddress.IPv4Address(0x0A000021)) == 2


def test_batches_past_the_bound_keep_only_the_newest_addresses() -> None:
    batches = [_items(0x0A000000 + 40 * n, 60, f"fleet host-{n}") for n in range(5)]
    lazy, eager = History(per_address=3, addresses=100), History(per_address=3, addresses=100)
    for history in (lazy, eager):
        history.record(ipaddress.IPv4Address(0x0A0000F0), Event(0, "failure"))  # in batch 4
        history.record(ipaddress.IPv4Address(0x0B000000), Event(0, "failure"))  # in none
    for batch in batches:
        lazy.record_many(batch, _event_of)
    _one_by_one(eager, batches)
    _same(lazy, eager)
    assert len(lazy) == 100
    assert lazy.events(ipaddress.IPv4Address(0x0B000000)) == []


def test_unread_batches_are_settled_so_memory_stays_bounded() -> None:
    history = History(per_address=2, addresses=10)
    for n in range(30):
        history.record_many(_items(0x0A000000 + n, 1, "fleet host-b"), _event_of)
    assert len(history._batches) <= 2 * history.addresses
    assert len(history) == 10
