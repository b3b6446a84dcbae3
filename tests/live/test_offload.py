"""The offload-equivalence replay: the same traffic with and without offload gives the
same decisions (the backend conformance suite is in tests/backends)."""

from __future__ import annotations

import random

import pytest

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Unban
from recentd.enforcer import Enforcer
from recentd.live.nfqnl import NF_DROP
from recentd.live.policy import BanPlanner, find_offload_case
from recentd.live.verdict import engine_decider
from recentd.packets.packet import Packet
from recentd.recent import RecentTables
from recentd.rules import Engine
from recentd.rules.model import CtState
from recentd.rules.parser import load_ruleset
from recentd.testing.clock import FakeClock
from tests.live.conftest import seed_text


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
    planner = BanPlanner(case, rules.tables, 250)
    enforcer = Enforcer(kernel, 250)
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
            ban = planner.plan(_syn(src), CtState.NEW, clock.read())
            if ban is not None:
                enforcer.carry_out(ban, now)
        for stale in planner.stale(list(enforcer.active.values())):
            enforcer.carry_out(Unban(stale.family, stale.address, "changed", "test"), now)
        decisions.append(verdict)
    assert decisions == plain_decisions
    assert kernel_drops > 0


def test_update_drop_is_not_offloaded(tmp_path):
    path = tmp_path / "r"
    path.write_text(seed_text().replace("–rcheck", "–update"))
    assert find_offload_case(load_ruleset(path)) is None


def _syn(src: int) -> Packet:
    return Packet(4, src, 0x0A000063, 64, 6, 60, 40000, 22, 0x02)
