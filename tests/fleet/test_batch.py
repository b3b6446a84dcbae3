"""One reply of 1,000 remote bans, handled as a batch end to end: decode, merge, the
allow-list veto, the enforcer, the backend, the history and the metrics — each of the last
three called a bounded number of times for the whole reply (counted, not timed), with the
same outcome as ban by ban: ``ctl why`` names each address's fleet origin, the metrics
count every ban, an allowed address stays out, the caps and the quorum hold."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recentd.backends.memory import MemoryBanBackend
from recentd.daemon import Daemon, DaemonConfig
from recentd.fleet.events import FleetEvent, Op, encode
from recentd.fleet.link import FleetSource, join
from recentd.fleet.merge import Caps
from recentd.fleet.settings import FleetSettings
from recentd.policy.allow import Allowed
from recentd.policy.settings import PolicyConfig
from tests.live.conftest import seed_text

LIST = "SSH"
FIRST = 0x0A050000
#: Where the store would be; these members never connect (their threads are not started).
NOWHERE = "unix:///nonexistent/redis.sock"


class Calls:
    """How many times each wrapped method was called."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def wrap(self, owner: Any, name: str, label: str) -> None:
        method: Callable[..., Any] = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[label] = self.counts.get(label, 0) + 1
            return method(*args, **kwargs)

        setattr(owner, name, counted)


class Host:
    """A daemon (offload to the in-memory backend) whose fleet source is fed by hand, as
    the reader thread would feed it one XREAD reply."""

    def __init__(self, tmp_path: Path, caps: Caps, allow: tuple[str, ...] = ()) -> None:
        tmp_path.mkdir(exist_ok=True)
        rules = tmp_path / "seed.rules"
        rules.write_text(seed_text(60).replace("–", "--"))
        (tmp_path / "state").mkdir()
        self.backend = MemoryBanBackend(time.monotonic)
        policy = PolicyConfig(tuple(Allowed("config", ipaddress.ip_network(a)) for a in allow))
        config = DaemonConfig([rules], state_dir=tmp_path / "state", policy=policy)
        self.daemon = Daemon(config, runner=lambda argv: (0, ""),
                             backend_factory=lambda case: self.backend)  # fmt: skip
        settings = FleetSettings(NOWHERE, "host-a", (LIST,), caps)
        self.membership = join(self.daemon, settings)
        self.daemon._setup_offload()
        self.source = FleetSource(settings, tmp_path / "outbox.txt", LIST)  # not started
        self.membership.source = self.source

    def receive(self, entries: list[tuple[str, str]]) -> None:
        """One reply read from the stream, then the daemon's loop reading the source."""
        self.source._queue.put(("entries", entries))
        self.daemon.observe(self.source.read(), ())

    def banned(self) -> set[str]:
        return {str(ban.addr) for ban in self.backend.snapshot()}

    def close(self) -> None:
        self.source.close()


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    """The hosts a test makes, closed (their outbox files) even when it fails."""
    made: list[Host] = []
    yield made
    for host in made:
        host.close()


def _reply(count: int, origin: str = "host-b", first: int = FIRST) -> list[tuple[str, str]]:
    """A reply of ``count`` bans from ``origin`` (stream ids 1-0, 2-0, …)."""
    now_ms = time.time_ns() // 1_000_000
    return [(f"{n + 1}-0", encode(FleetEvent(
        Op.BAN, ipaddress.IPv4Address(first + n), 32, LIST, now_ms, now_ms + 600_000, origin,
        "4 hits in 60 s", f"{origin}:{now_ms}.{n}"))) for n in range(count)]  # fmt: skip


def test_a_reply_of_1000_remote_bans_is_one_call_into_history_metrics_and_backend(
    tmp_path: Path, hosts: list[Host]
) -> None:
    allowed = str(ipaddress.IPv4Address(FIRST + 7))
    host = Host(tmp_path, Caps(), allow=(allowed,))
    hosts.append(host)
    calls = Calls()
    history, tally = host.daemon.policy.history, host.daemon.tally
    for owner, name in ((history, "record"), (history, "record_many"), (tally, "command"),
                        (tally, "commands_carried_out"), (host.backend, "add_many"),
                        (host.daemon.clock, "read")):  # fmt: skip
        calls.wrap(owner, name, f"{type(owner).__name__}.{name}")

    host.receive(_reply(1000))

    assert calls.counts == {
        "History.record_many": 1, "Tally.commands_carried_out": 1,
        "MemoryBanBackend.add_many": 1, "MonotonicClock.read": 3,
        "History.record": 1,  # the one refused ban (the allowed address): said once
    }  # one history batch, one metrics batch, one backend transaction; no call per ban
    assert len(host.banned()) == 999 and allowed not in host.banned()  # the allow list vetoes
    assert tally.commands["ban", LIST, "fleet"] == 999  # the same count as ban by ban
    assert sum(tally.bans_per_minute.values()) == 999
    assert host.daemon.enforcer is not None and host.daemon.enforcer.refused == 1

    # `ctl why` (the history, read now) names each address's own fleet origin
    enforcer = host.daemon.enforcer
    assert enforcer is not None
    for n in (0, 500, 999):
        address = ipaddress.IPv4Address(FIRST + n)
        ban = enforcer.active[4, int(address)]
        (event,) = history.events(address)
        assert (event.what, event.table, event.origin, event.detail, event.count) == (
            "ban", LIST, ban.origin, f"4 hits in 60 s; {ban.timeout_s} s", 1)
        assert re.fullmatch(rf"fleet host-b \({n + 1}-0 host-b:[0-9]+\.{n}\)", ban.origin)
    assert history.bans(ipaddress.IPv4Address(FIRST)) == 1
    assert history.events(ipaddress.IPv4Address(allowed))[0].what == "refused ban"


def test_the_caps_and_the_quorum_hold_for_a_batch(tmp_path: Path, hosts: list[Host]) -> None:
    capped = Host(tmp_path / "capped", Caps(rate_per_min=600))
    hosts.append(capped)
    capped.receive(_reply(1000))
    assert len(capped.banned()) == 600  # the rate cap: 600 a minute from host-b
    assert capped.source.outcomes["refused"] == 400

    quorum = Host(tmp_path / "quorum", Caps(quorum=2))
    hosts.append(quorum)
    quorum.receive(_reply(1000))
    assert quorum.banned() == set() and quorum.source.outcomes["pending"] == 1000
    quorum.receive(_reply(1000, origin="host-c"))
    assert len(quorum.banned()) == 1000  # a second host reported each: adopted
