"""The server as the daemon plugs it in: ``fileno()`` + ``on_ready()``, or
``selector_adapter(path, tables, store=…)`` as ``recentd run`` calls it."""

from __future__ import annotations

import selectors
import threading

from recentd.control import ControlClient
from recentd.control.protocol import ShowTable, Status, StatusReply, TableListing, WriteTable
from recentd.control.server import selector_adapter
from recentd.recent import Command, RecentMatch, RecentTables
from recentd.recent.ticks import ticks_to_ns
from recentd.state import StateStore
from recentd.testing.clock import FakeClock


def make_tables():
    tables = RecentTables(hz=250)
    tables.acquire(RecentMatch(Command.SET, name="SSH"))
    return tables


def serve(adapter, stop):
    """The daemon's loop, reduced to its adapter handling."""
    with selectors.DefaultSelector() as selector:
        selector.register(adapter.fileno(), selectors.EVENT_READ, adapter)
        while not stop.is_set():
            for key, _mask in selector.select(0.05):
                key.data.on_ready()


def test_daemon_adapter_with_a_store_makes_writes_durable(public_dir):
    tables, state_dir = make_tables(), public_dir / "state"
    store = StateStore(state_dir)
    clock = FakeClock(tables.hz, ticks_to_ns(5000, tables.hz))
    store.restore(tables, 1000, clock.wall_ns())
    server = selector_adapter(public_dir / "c.sock", tables, clock=clock, store=store)
    stop = threading.Event()
    loop = threading.Thread(target=serve, args=(server, stop))
    loop.start()
    try:
        with ControlClient(server.path, timeout=5) as client:
            client.call(WriteTable("SSH", b"+192.0.2.7"))
            status = client.call(Status())
            listing = client.call(ShowTable("SSH"))
    finally:
        stop.set()
        loop.join(5)
        server.close()
        store.close()
    assert isinstance(listing, TableListing) and listing.entries[0].stamps == [5000]
    assert isinstance(status, StatusReply)
    assert status.state["journal_records"] == 1

    # Restart: the write is in the journal.
    again = make_tables()
    StateStore(state_dir).restore(again, 5000, clock.wall_ns())
    assert [e.addr for e in again["SSH"]] == [0xC0000207]
