"""The fleet's stream as a source passes the conformance suite, on a real ``redis-server``
started by the test (private Unix socket, ACLs on): another host's bans, written to the
stream and the snapshot as its publisher writes them, come out as fleet-ban observations, once, in order,
across a restart from the checkpoint; a malformed entry is skipped and counted."""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from recentd.fleet.events import FIELD, FleetEvent, Op, encode, snapshot_field
from recentd.fleet.link import FleetSource
from recentd.fleet.settings import FleetSettings
from recentd.observation import Evidence
from recentd.sources import Checkpoint, Source
from recentd.testing.sources import Expected, check_source
from recentd.testing.store import Store

LIST = "SSH"
#: The fleet's clock in this test: after every ban the suite asks for, before their ends.
NOW_MS = 1_700_000_200_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    program = shutil.which("redis-server")
    if program is None:
        reason = "redis-server is not installed (scripts/setup.sh installs it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    store = Store(program, tmp_path / "store", {"host-a": "recentd", "host-b": "recentd"})
    store.directory.mkdir()
    store.start()
    try:
        yield store
    finally:
        store.stop()


@dataclass
class FleetHarness:
    """host-a reads the fleet; host-b's bans are the evidence written."""

    store: Store
    directory: Path
    sequence: int = 0

    def open(self, checkpoint: Checkpoint | None) -> Source[object]:
        settings = FleetSettings(self.store.url, "host-a", (LIST,),
                                 password_file=self.store.password_file("host-a"))  # fmt: skip
        source = FleetSource(settings, self.directory / "outbox.jsonl", LIST,
                             wall_ms=lambda: NOW_MS)  # fmt: skip
        return source.start(checkpoint)

    def _publisher(self) -> redis.Redis:
        return redis.Redis.from_url(self.store.url, username="host-b", password="pw-host-b",
                                    decode_responses=True)  # fmt: skip

    def emit(self, batch: Sequence[Expected]) -> None:
        with self._publisher() as client:
            for item in batch:
                self.sequence += 1
                at_ms = item.wall_ns // 1_000_000
                event = FleetEvent.of(ipaddress.ip_network(item.address), op=Op.BAN,
                                      list_name=LIST, at_ms=at_ms, until_ms=at_ms + 3_600_000,
                                      host="host-b", reason="4 hits in 60 s",
                                      eid=f"host-b:{self.sequence}")  # fmt: skip
                text = encode(event)
                # as a publisher writes an event (fleet/link.py _send_batch): the stream
                # entry and the snapshot's field in one transaction (a cold start reads the
                # snapshot, then the stream)
                pipe = client.pipeline(transaction=True)
                pipe.xadd("recentd:events", {FIELD: text})
                pipe.hset("recentd:bans", snapshot_field(text), text)
                pipe.execute()

    def emit_garbage(self) -> None:
        with self._publisher() as client:
            client.xadd("recentd:events", {"op": "ban", "net": "not an address"})


def test_the_fleet_stream_conforms(store: Store, tmp_path: Path) -> None:
    check_source(FleetHarness(store, tmp_path), evidence=Evidence.FLEET_BAN, timeout_s=10)
