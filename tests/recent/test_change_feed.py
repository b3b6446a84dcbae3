"""The change feed: any number of consumers, none stealing another's changes, each
with bounded memory (a consumer that falls behind is told to resync)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.recent import Command, ModuleParams, RecentMatch, RecentTable, TableChanges

SET = RecentMatch(Command.SET, name="T")
REMOVE = RecentMatch(Command.REMOVE, name="T")


def _table(tot: int = 100) -> RecentTable:
    return RecentTable("T", params=ModuleParams(ip_list_tot=tot))


def _addrs(changes: TableChanges) -> tuple[list[int], list[int]]:
    return [view.addr for view in changes.updated], [addr for _family, addr in changes.deleted]


def test_two_consumers_each_see_every_change():
    table = _table()
    journal, metrics = table.subscribe(), table.subscribe()
    table.evaluate(SET, 4, 1, 64, 10)
    table.evaluate(SET, 4, 2, 64, 11)
    assert _addrs(journal.read()) == ([1, 2], [])  # the journal reads first…
    table.evaluate(REMOVE, 4, 1, 64, 12)
    table.add(4, 3, 13)
    assert _addrs(metrics.read()) == ([2, 3], [1])  # …metrics still sees all of it
    assert _addrs(journal.read()) == ([3], [1])
    assert _addrs(metrics.read()) == ([], []) and _addrs(journal.read()) == ([], [])


def test_a_flush_reaches_every_consumer_once():
    table = _table()
    first, second = table.subscribe(), table.subscribe()
    table.add(4, 1, 10)
    assert _addrs(first.read()) == ([1], [])
    table.flush()
    table.add(4, 2, 11)
    for consumer in (first, second):
        changes = consumer.read()
        assert changes.flushed and _addrs(changes) == ([2], [])
        assert not consumer.read().flushed


def test_a_consumer_that_falls_behind_is_told_to_resync():
    table = _table(tot=1000)
    slow, fast = table.subscribe(limit=10), table.subscribe()
    for addr in range(20):
        table.add(4, addr, 10)
        assert len(fast.read().updated) == 1  # the fast one keeps up
    changes = slow.read()
    assert changes.resync and changes.updated == [] and changes.deleted == []
    table.add(4, 99, 11)
    assert _addrs(slow.read()) == ([99], [])  # after the resync it follows again


def test_a_closed_subscription_stops_costing_anything():
    table = _table()
    consumer = table.subscribe()
    table.add(4, 1, 10)
    consumer.close()
    consumer.close()
    table.add(4, 2, 11)
    assert table._changed is None  # no subscriber: the hot path keeps no set


def _replay(replica: RecentTable, changes: TableChanges, source: RecentTable) -> None:
    if changes.resync:
        replica.flush()
        for view in source:
            replica.load(view)
        return
    if changes.flushed:
        replica.flush()
    for family, addr in changes.deleted:
        replica.remove(family, addr)
    for view in changes.updated:
        replica.load(view)


OPS = st.lists(
    st.tuples(st.sampled_from(["set", "remove", "add", "flush", "read_a", "read_b"]),
              st.integers(0, 12)),
    max_size=80,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(1, 8))
def test_every_consumer_reproduces_the_table_whatever_the_others_read(ops, limit):
    table = _table(tot=6)
    consumers = {"read_a": table.subscribe(limit=limit), "read_b": table.subscribe()}
    replicas = {name: _table(tot=6) for name in consumers}
    for now, (op, addr) in enumerate(ops, start=100):
        if op == "set":
            table.evaluate(SET, 4, addr, 64, now)
        elif op == "remove":
            table.evaluate(REMOVE, 4, addr, 64, now)
        elif op == "add":
            table.add(4, addr, now)
        elif op == "flush":
            table.flush()
        else:
            _replay(replicas[op], consumers[op].read(), table)
    for name, consumer in consumers.items():
        _replay(replicas[name], consumer.read(), table)
        assert list(replicas[name]) == list(table), name
