"""A minimal daemon for the crash test: control server + state store + one loop.

    python killable_daemon.py STATE_DIR SOCKET

Wired exactly as ``recentd run`` wires them (``selector_adapter`` with a store),
over in-memory tables; prints ``ready`` once it answers, then serves until killed.
A tiny ``compact_bytes`` makes compactions happen mid-stream too.
"""

from __future__ import annotations

import selectors
import sys
import time
from pathlib import Path

from recentd.control.server import selector_adapter
from recentd.recent import Command, ModuleParams, RecentMatch, RecentTables, ns_to_ticks
from recentd.state import StateStore


def main(state_dir: str, socket_path: str) -> None:
    tables = RecentTables(ModuleParams(ip_list_tot=1_000_000), hz=250)
    tables.acquire(RecentMatch(Command.SET, name="SSH"))
    store = StateStore(Path(state_dir), compact_bytes=4096)
    store.restore(tables, ns_to_ticks(time.monotonic_ns()), time.time_ns())
    server = selector_adapter(Path(socket_path), tables, store=store)
    selector = selectors.DefaultSelector()
    server.register(selector)
    print("ready", flush=True)
    while True:
        for key, mask in selector.select():
            key.data(mask)


if __name__ == "__main__":
    main(*sys.argv[1:3])
