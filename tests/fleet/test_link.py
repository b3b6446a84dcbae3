"""Fleet members on a real store: two daemons in one process (fake ban backends), bans in
on one host, bans out in the other host's backend — through outages and restarts."""

from __future__ import annotations

import ipaddress
import re
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Ban
from recentd.daemon import Daemon, DaemonConfig
from recentd.errors import ConfigError
from recentd.fleet.link import FleetSource, join
from recentd.fleet.merge import Caps
from recentd.fleet.settings import DEFAULT_CAPS, FleetSettings
from recentd.policy.allow import Allowed
from recentd.policy.settings import PolicyConfig
from recentd.testing.store import Store
from tests.live.conftest import seed_text

LIST = "SSH"


class Member:
    """One host: a daemon (offload to a fake backend) with the fleet as its source."""

    def __init__(self, tmp_path: Path, store: Store, host: str, caps: Caps = DEFAULT_CAPS,
                 protect: tuple[str, ...] = (), allow: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.host = host
        self.state_dir = tmp_path / host
        self.state_dir.mkdir(exist_ok=True)
        rules = tmp_path / "seed.rules"
        rules.write_text(seed_text(60).replace("–", "--"))
        self.settings = FleetSettings(
            store.url, host, (LIST,), caps, store.password_file(host),
            protect=tuple(ipaddress.ip_network(p) for p in protect),
        )  # fmt: skip
        self.backend = MemoryBanBackend(time.monotonic)
        policy = PolicyConfig(tuple(Allowed("config", ipaddress.ip_network(a)) for a in allow))
        config = DaemonConfig([rules], state_dir=self.state_dir, policy=policy)
        self.daemon = Daemon(config, runner=lambda argv: (0, ""),
                             backend_factory=lambda case: self.backend)  # fmt: skip
        self.membership = join(self.daemon, self.settings)
        self.daemon._setup_offload()
        assert self.daemon.planner is not None and self.daemon.planner.case.name == LIST
        self.daemon.open_sources()

    @property
    def fleet(self) -> FleetSource | None:
        return self.membership.source

    @property
    def source(self) -> FleetSource:
        assert self.fleet is not None
        return self.fleet

    def ban(self, *addresses: str, seconds: int = 600, origin: str = "packet") -> None:
        """Bans decided locally (as the pipeline would hand them over)."""
        assert self.daemon.enforcer is not None
        now = self.daemon.clock.read()
        bans = [Ban(4, ipaddress.IPv4Address(a), now.tick + seconds * now.hz,
                    now.wall_ns + seconds * 10**9, seconds, "4 hits in 60 s", origin)
                for a in addresses]  # fmt: skip
        self.daemon.enforcer.carry_out_bans(bans, now.tick)

    def banned(self) -> set[str]:
        return {str(ban.addr) for ban in self.backend.snapshot()}

    def pump(self, until: Callable[[], bool], timeout: float = 10.0) -> None:
        """Run this host's side of the loop (read the fleet when it is readable) until
        ``until()`` holds; fail after ``timeout`` seconds with the link's status."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, self.status()
            select.select([self.source.fileno()], [], [], 0.05)
            for watched in self.daemon.sources:
                self.daemon.read_source(watched)

    def status(self) -> str:
        self.daemon.source_health()
        return self.daemon.health["source fleet"]

    def stop(self) -> None:
        self.daemon.close_sources()
        self.membership.source = None


def _published(member: Member, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while member.source.published < count:
        assert time.monotonic() < deadline, member.status()
        time.sleep(0.01)


def test_a_ban_on_host_a_reaches_host_b_with_its_origin(tmp_path: Path, store: Store) -> None:
    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    try:
        a.ban("192.0.2.7")
        b.pump(lambda: b.banned() == {"192.0.2.7"})
        assert b.daemon.enforcer is not None
        (held,) = b.daemon.enforcer.active.values()
        assert held.origin.startswith("fleet host-a (") and 590 <= held.timeout_s <= 600
        assert a.banned() == {"192.0.2.7"}  # A's own event is not adopted twice
        b.daemon.withdraw_stale()  # a remote ban has no table entry: the timer keeps it
        assert b.banned() == {"192.0.2.7"}
        b.pump(lambda: b.source.publisher.state == "ok")
        assert b.status() == "ok: reader ok; publisher ok; outbox 0; published 0; 1 adopt"
    finally:
        a.stop()
        b.stop()


def test_an_address_allowed_on_b_stays_unbanned_there_whatever_a_says(
    tmp_path: Path, store: Store
) -> None:
    a = Member(tmp_path, store, "host-a")
    b = Member(tmp_path, store, "host-b", allow=("192.0.2.0/28",))
    try:
        a.ban("192.0.2.7", "198.51.100.9")
        b.pump(lambda: b.banned() == {"198.51.100.9"})  # the other ban arrived…
        b.pump(lambda: b.source.publisher.state == "ok")
        assert b.banned() == {"198.51.100.9"}  # …and the allowed address never did
        assert a.banned() == {"192.0.2.7", "198.51.100.9"}  # A has no such allow entry
    finally:
        a.stop()
        b.stop()


def test_b_offline_while_a_bans_1000_catches_up_on_return(tmp_path: Path, store: Store) -> None:
    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    b.pump(lambda: b.source.reader.state == "ok")
    b.stop()  # B goes away; its checkpoint stays in its state directory
    addresses = [str(ipaddress.IPv4Address(0x0A010000 + i)) for i in range(1000)]
    try:
        a.ban(*addresses)
        _published(a, 1000)
        b = Member(tmp_path, store, "host-b")
        b.pump(lambda: len(b.banned()) == 1000)
        assert b.banned() == set(addresses)
    finally:
        a.stop()
        b.stop()


def _counted(calls: list[int], method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, counting its successful calls (the size of a batch argument, else 1)."""
    def call(*args: Any) -> Any:
        result = method(*args)
        calls.append(len(args[-1]) if args and isinstance(args[-1], list) else 1)
        return result
    return call


def test_a_burst_of_1000_bans_is_one_fsync_one_round_trip_one_backend_transaction(
    tmp_path: Path, store: Store
) -> None:
    """Grouped all the way: the events handed over meanwhile are written and fsynced
    together, the outbox is sent 1,000 events to a round trip, and a reader's reply is
    one transaction of the receiver's backend."""
    settings = FleetSettings(store.url, "host-a", (LIST,), DEFAULT_CAPS)
    alone = FleetSource(settings, tmp_path / "outbox.txt", LIST)  # not started: no threads
    fsyncs: list[int] = []
    alone.outbox.sync = _counted(fsyncs, alone.outbox.sync)  # type: ignore[method-assign]
    for n in range(1000):
        alone.publish(Ban(4, ipaddress.IPv4Address(0x0A030000 + n), 10**9, 2 * 10**18, 600,
                          "4 hits in 60 s", "packet"))  # fmt: skip
    alone._persist()
    assert (len(alone.outbox), fsyncs) == (1000, [1])
    alone.close()

    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    b.pump(lambda: b.source.reader.state == "ok")
    b.stop()
    store.stop()
    addresses = [str(ipaddress.IPv4Address(0x0A020000 + i)) for i in range(1000)]
    try:
        a.ban(*addresses)
        a.pump(lambda: len(a.source.outbox) == 1000)  # all on disk while the store is away
        sent: list[int] = []
        a.source._send_batch = _counted(sent, a.source._send_batch)  # type: ignore[method-assign]
        store.start()
        _published(a, 1000, 40)
        assert sent == [1000]
        b = Member(tmp_path, store, "host-b")
        added: list[int] = []
        b.backend.add_many = _counted(added, b.backend.add_many)  # type: ignore[method-assign]
        b.pump(lambda: len(b.banned()) == 1000)
        assert added == [1000]
    finally:
        a.stop()
        b.stop()


def test_a_cold_start_reads_the_snapshot(tmp_path: Path, store: Store) -> None:
    a = Member(tmp_path, store, "host-a")
    try:
        a.ban("198.51.100.1", "198.51.100.2")
        _published(a, 2)
        b = Member(tmp_path, store, "host-b")  # never saw the stream: no checkpoint
        b.pump(lambda: b.banned() == {"198.51.100.1", "198.51.100.2"})
        assert b.source.checkpoint()["last_id"]
    finally:
        a.stop()
        b.stop()


def test_the_outbox_survives_an_outage_and_a_restart_of_a(tmp_path: Path, store: Store) -> None:
    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    b.pump(lambda: b.source.reader.state == "ok")
    store.stop()
    try:
        a.ban("203.0.113.1", "203.0.113.2", "203.0.113.3")
        b.pump(lambda: b.source.reader.state.startswith("down:"))
        assert a.banned() == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}  # still enforced
        a.pump(lambda: len(a.source.outbox) == 3)  # on disk while the store is away
        a.stop()  # A restarts while the store is down
        a = Member(tmp_path, store, "host-a")
        assert len(a.source.outbox) == 3
        store.start()
        b.pump(lambda: b.banned() == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}, 20)
        _published(a, 3)
        assert len(a.source.outbox) == 0
    finally:
        a.stop()
        b.stop()


def test_the_store_restarted_mid_stream(tmp_path: Path, store: Store) -> None:
    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    first = [f"10.2.0.{i}" for i in range(1, 51)]
    second = [f"10.2.1.{i}" for i in range(1, 51)]
    try:
        a.ban(*first)
        b.pump(lambda: len(b.banned()) == 50)
        store.stop()
        store.start()
        a.ban(*second)
        b.pump(lambda: b.banned() == set(first + second), 20)
    finally:
        a.stop()
        b.stop()


def test_the_link_state_shows_in_the_metrics(tmp_path: Path, store: Store) -> None:
    """``recentd_source_state{source="fleet"}``: ok while the store answers, not ok while
    it is down, ok again once it is back (issue 14's fleet link state)."""
    from prometheus_client import generate_latest  # noqa: PLC0415 - the metrics extra

    from recentd.metrics.exporter import registry_for  # noqa: PLC0415

    def state(member: Member) -> str:
        member.daemon.source_health()
        text = generate_latest(registry_for(member.daemon)).decode()
        found = re.findall(r'recentd_source_state\{source="fleet",state="(\w+)"\} 1\.0', text)
        assert len(found) == 1, text
        return found[0]

    b = Member(tmp_path, store, "host-b")
    try:
        b.pump(lambda: state(b) == "ok")
        store.stop()
        b.pump(lambda: state(b) != "ok")
        store.start()
        b.pump(lambda: state(b) == "ok", 40)
    finally:
        b.stop()


def test_a_host_whose_acl_forbids_the_keys_is_refused_and_says_why(
    tmp_path: Path, store: Store
) -> None:
    intruder = Member(tmp_path, store, "intruder")
    try:
        intruder.pump(lambda: intruder.source.reader.state.startswith("refused"))
        status = intruder.status()
        assert status.startswith(
            "degraded: reader refused (user intruder on keys recentd:events, recentd:bans): "
            "this user has no permissions to access one of the keys used as arguments; "
            "retrying in "), status
    finally:
        intruder.stop()


def test_per_origin_rate_cap_and_a_protected_network(tmp_path: Path, store: Store) -> None:
    a = Member(tmp_path, store, "host-a")
    b = Member(tmp_path, store, "host-b", Caps(rate_per_min=3), protect=("10.9.9.0/24",))
    try:
        b.pump(lambda: b.source.reader.state == "ok")
        a.ban("10.9.9.9", *(f"10.3.0.{i}" for i in range(1, 6)))
        b.pump(lambda: sum(b.source.outcomes.values()) == 6)
        assert b.banned() == {"10.3.0.1", "10.3.0.2", "10.3.0.3"}
        assert b.source.outcomes == {"adopt": 3, "refused": 3}
    finally:
        a.stop()
        b.stop()


def test_quorum_two_adopts_a_ban_only_when_two_hosts_reported_it(
    tmp_path: Path, store: Store
) -> None:
    a, c = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-c")
    b = Member(tmp_path, store, "host-b", Caps(quorum=2))
    try:
        b.pump(lambda: b.source.reader.state == "ok")
        a.ban("10.4.0.1", "10.4.0.2")
        b.pump(lambda: b.source.outcomes["pending"] == 2)
        assert b.banned() == set()
        c.ban("10.4.0.2")
        b.pump(lambda: b.banned() == {"10.4.0.2"})
    finally:
        a.stop()
        b.stop()
        c.stop()


def test_joining_needs_a_state_directory_and_an_offloaded_list(tmp_path: Path) -> None:
    rules = tmp_path / "seed.rules"
    rules.write_text(seed_text(60).replace("–", "--"))
    settings = FleetSettings("unix:///nowhere", "host-a", (LIST,))
    daemon = Daemon(DaemonConfig([rules]), runner=lambda argv: (0, ""))
    with pytest.raises(ConfigError, match="needs a state directory"):
        join(daemon, settings)
    daemon = Daemon(DaemonConfig([rules], state_dir=tmp_path, offload=False),
                    runner=lambda argv: (0, ""))  # fmt: skip
    with pytest.raises(ConfigError, match=r"shares kernel bans, and these rules \(or --no-offload"):
        join(daemon, settings)


def test_a_publisher_sweeps_only_its_own_ended_events_from_the_snapshot(
    tmp_path: Path, store: Store
) -> None:
    a, b = Member(tmp_path, store, "host-a"), Member(tmp_path, store, "host-b")
    try:
        a.ban("10.5.0.1", "10.5.0.2", seconds=60)
        b.ban("10.5.0.3", seconds=3600)
        _published(a, 2)
        _published(b, 1)
        client = redis.Redis.from_url(store.url, username="host-a", password="pw-host-a",
                                      decode_responses=True)  # fmt: skip
        try:
            real = a.source.wall_ms
            a.source.wall_ms = lambda: real() + 120_000  # two minutes on: A's bans ended
            assert a.source.sweep(client) == 2
            assert list(client.hgetall("recentd:bans")) == ["SSH|10.5.0.3/32|host-b"]
        finally:
            client.close()
    finally:
        a.stop()
        b.stop()
