"""The BanBackend conformance suite (fake everywhere, nftables in a namespace), and the
offload-equivalence replay: the same traffic with and without offload gives the same decisions."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import sys

import pytest

from recentd.live.clock import FakeClock
from recentd.live.nfqnl import NF_DROP
from recentd.live.offload import Ban, BanClass, MemoryBanBackend, check_address
from recentd.live.offloader import Offloader
from recentd.live.policy import BanPlanner, find_offload_case
from recentd.live.verdict import engine_decider
from recentd.packets.packet import Packet
from recentd.recent import RecentTables
from recentd.rules import Engine
from recentd.rules.model import CtState
from recentd.rules.parser import load_ruleset
from tests.live.conftest import seed_text

A4, B4, A6 = (
    ipaddress.ip_address("10.0.0.1"),
    ipaddress.ip_address("10.0.0.2"),
    ipaddress.ip_address("fd00::1"),
)


def check_backend(backend) -> None:
    backend.flush()
    backend.add(4, A4, 30)
    backend.add(4, B4, 100)
    backend.add(6, A6, 50)
    backend.add(4, A4, 60)  # re-timing an existing ban
    snap = {(b.family, b.addr): b.timeout_s for b in backend.snapshot()}
    assert set(snap) == {(4, A4), (4, B4), (6, A6)}
    assert 58 <= snap[(4, A4)] <= 60
    backend.remove(4, B4)
    backend.remove(4, B4)  # absent: no error
    assert [(b.family, b.addr) for b in backend.snapshot()] == [(4, A4), (6, A6)]
    with pytest.raises(ValueError):
        backend.add(4, A6, 10)
    backend.flush()
    assert backend.snapshot() == []


def test_memory_backend_conformance():
    check_backend(MemoryBanBackend())


def test_addresses_are_validated():
    with pytest.raises(ValueError):
        check_address(4, "10.0.0.1; rm -rf /")
    assert check_address(6, "fd00::1") == A6


def test_nft_backend_conformance():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"lvt-nft-{random.randrange(1 << 24):06x}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        code = (
            "from recentd.live.offload import NftBanBackend, BanClass\n"
            "from tests.live.test_offload import check_backend\n"
            "b = NftBanBackend(BanClass(6, (22,), True)); b.install(); check_backend(b); b.uninstall()\n"
            "assert not b._table_exists()\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


class _Rules:
    """The real engine on fresh tables, as the daemon builds it."""

    def __init__(self, path) -> None:
        self.tables = RecentTables(hz=250)
        self.decide = engine_decider(Engine(load_ruleset(path), self.tables, hz=250))


def _traffic(seed: int) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    events, t = [], 0.0
    while t < 400:
        t += rng.choice([0.01, 0.01, 0.01, 0.3, 1, 2, 5, 10, 31])
        events.append((t, rng.choice([1, 1, 1, 2, 3])))  # source 1 is the attacker
    return events


@pytest.mark.parametrize("seed", range(8))
def test_offload_replay_gives_the_same_decisions(tmp_path, seed):
    path = tmp_path / "seed.rules"
    path.write_text(seed_text(seconds=30))
    events = _traffic(seed)
    plain = _Rules(path)
    clock = FakeClock()
    plain_decisions = []
    for t, src in events:
        clock.advance(t - clock.now_ns() / 1e9)
        plain_decisions.append(plain.decide(_syn(src), "INPUT", clock.now_ticks(), CtState.NEW))

    rules = _Rules(path)
    case = find_offload_case(load_ruleset(path))
    assert case is not None
    clock = FakeClock()
    kernel = MemoryBanBackend(lambda: clock.now_ns() / 1e9)
    offloader = Offloader(kernel, BanPlanner(case, rules.tables, 250))
    decisions, kernel_drops = [], 0
    for t, src in events:
        clock.advance(t - clock.now_ns() / 1e9)
        now = clock.now_ticks()
        if any(int(b.addr) == src for b in kernel.snapshot()):
            decisions.append(NF_DROP)
            kernel_drops += 1
            continue
        verdict = rules.decide(_syn(src), "INPUT", now, CtState.NEW)
        if verdict == NF_DROP:
            planned = offloader.planner.plan(_syn(src), CtState.NEW, now)
            offloader.push([planned] if planned else [], now)
        offloader.reconcile(now)
        decisions.append(verdict)
    assert decisions == plain_decisions
    assert kernel_drops > 0


def test_update_drop_is_not_offloaded(tmp_path):
    path = tmp_path / "r"
    path.write_text(seed_text().replace("–rcheck", "–update"))
    assert find_offload_case(load_ruleset(path)) is None


def _syn(src: int) -> Packet:
    return Packet(4, src, 0x0A000063, 64, 6, 60, 40000, 22, 0x02)


def test_ban_class_is_in_ban():
    assert Ban(4, A4, 3).timeout_s == 3
    assert BanClass().dports == ()
