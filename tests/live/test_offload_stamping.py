"""Exact offload of `--update` (and of `--set` before the drop): the kernel drops and logs
each packet, user space replays the writes it would have made (BanPlanner.stamp) and
re-times the ban. Replayed against user space alone: same verdicts, /proc listings and
ban end times."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recentd.live.nfqnl import NF_DROP
from recentd.live.offload import kernel_drops
from recentd.live.policy import STAMP_LOG_GROUP, Drops, find_offload_case
from recentd.packets.packet import Packet
from recentd.recent.procfs import format_entry
from recentd.rules.model import Ruleset
from recentd.rules.parser import load_ruleset
from tests.live.test_offload_analysis import BEFORE, _random_traffic
from tests.live.test_offload_analysis import _Replay as AnalysisReplay

HZ = 250
SSH = [
    "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name bad",
    "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds {s} "
    "--hitcount {h} --name bad -j DROP",
]
SEED_I = [  # the seed recipe as `iptables -I` leaves it: rcheck, update, set
    "-N SSH_CHECK",
    "-A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK",
    "-A SSH_CHECK -m state --state NEW -m recent --rcheck --seconds {s} --hitcount {h} "
    "--name bad -j DROP",
    "-A SSH_CHECK -m state --state NEW -m recent --update --seconds {s} --hitcount {h} "
    "--name bad",
    "-A SSH_CHECK -m state --state NEW -m recent --set --name bad",
]
SEED_A = [SEED_I[0], SEED_I[1], SEED_I[4], SEED_I[3], SEED_I[2]]  # as -A writes it
RECIPES = {"ssh": SSH, "seed -I": SEED_I, "seed -A": SEED_A}


def _text(recipe: list[str], seconds: int, hits: int, before: list[str], v6: bool) -> str:
    lines = before + [line.format(s=seconds, h=hits) for line in recipe]
    commands = ["iptables"] + (["ip6tables"] if v6 else [])
    return "".join(f"{cmd} {line}\n" for cmd in commands for line in lines)


def _load(tmp: Path, text: str) -> Ruleset:
    path = tmp / "rules.sh"
    path.write_text(text)
    return load_ruleset(path)


def test_the_recipes_people_run_offload_with_stamping(tmp_path):
    for name, recipe in RECIPES.items():
        ruleset = _load(tmp_path, _text(recipe, 60, 4, [], v6=True))
        assert find_offload_case(ruleset) is None or name == "seed -I"  # without: not all
        case = find_offload_case(ruleset, stamping=True)
        assert case is not None, name
        assert (case.name, case.seconds, case.hitcount, case.families) == ("bad", 60, 4, (4, 6))
        assert case.ban_class.log_group == (STAMP_LOG_GROUP if case.recipe else None)
        assert case.ban_class.dports == (22,) and case.ban_class.ct_new_only
        commands = [m.command.name for m in case.recipe]
        assert commands == {"ssh": ["SET", "UPDATE"], "seed -I": [],
                            "seed -A": ["SET", "UPDATE"]}[name]  # fmt: skip


class _Replay(AnalysisReplay):
    """User space alone, or with the kernel (and its log of drops) in front of it: the
    analysis tests' replay, each kernel drop logged; the log is read as the daemon reads
    it — as runs (one header, one tick, counted), replayed before user space decides the
    next packet (Daemon.on_stamps runs before each queue batch) and at the end."""

    def __init__(self, ruleset: Ruleset, case) -> None:
        super().__init__(ruleset, case)
        self.logged: list[tuple[Packet, int]] = []

    def run(self, events):
        out = super().run(events)
        self.read_log()
        return out

    def _one(self, packet: Packet, state: int, hook: str) -> int:
        for attempt in range(2):  # again once the log is read: it may have re-banned
            if self.case is not None and self._banned(packet) and kernel_drops(
                    self.case.ban_class, packet, state, hook.lower()):
                self.kernel_drops += 1
                self.logged.append((packet, self.clock.now_ticks()))  # logged; read later
                return NF_DROP
            if not attempt:
                self.read_log()
        return super()._one(packet, state, hook)

    def read_log(self) -> None:
        planner, logged, self.logged = self.planner, self.logged, []
        if planner is None or not logged:
            return
        now = self.clock.read()
        for family, addr in planner.stamp_runs(_runs(logged)):
            ban = planner.plan_address(family, addr, now, "log")
            if ban is not None and planner.retime(self.enforcer.active.get((family, addr)),
                                                  ban, now.tick):  # fmt: skip
                self.enforcer.carry_out(ban, now.tick)


def _runs(logged: list[tuple[Packet, int]]) -> list[Drops]:
    """The drops as logged_drops hands them over: per tick, each header counted, in the
    order of its last drop."""
    out: list[Drops] = []
    for tick, group in itertools.groupby(logged, key=lambda item: item[1]):
        counted = Counter(packet for packet, _tick in reversed(list(group)))
        out += [Drops(packet, n, tick) for packet, n in reversed(counted.items())]
    return out


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1))
def test_stamping_offload_replays_like_user_space(tmp_path_factory, seed):
    rng = random.Random(seed)
    recipe = rng.choice(list(RECIPES.values()))
    before = rng.sample(BEFORE, rng.randint(0, 4))
    text = _text(recipe, rng.choice([2, 5, 20]), rng.choice([1, 2, 4]), before,
                 rng.random() < 0.5)  # fmt: skip
    ruleset = _load(tmp_path_factory.mktemp("st"), text)
    case = find_offload_case(ruleset, stamping=True)
    assume(case is not None)
    assert case is not None
    events = _random_traffic(rng, ruleset.families())
    plain, offloaded = _Replay(ruleset, None), _Replay(ruleset, case)
    assert offloaded.run(events) == plain.run(events), text
    assert offloaded.listings() == plain.listings(), text
    assert offloaded.planner is not None
    for ban in offloaded.enforcer.active.values():  # never beyond R's drops (re-timed lazily:
        entry = plain.tables[case.name].get(ban.family, int(ban.address))  # a prefix of them)
        expiry = None if entry is None else offloaded.planner.expiry_tick(entry)
        assert expiry is not None and ban.expiry_tick <= expiry


def test_the_kernel_carries_the_update_flood(tmp_path):
    ruleset = _load(tmp_path, _text(SSH, 20, 4, [], v6=False))
    case = find_offload_case(ruleset, stamping=True)
    assert case is not None
    flood = [(i * 0.01, Packet(4, 1, 99, 64, 6, 60, 40000, 22, 2, iif="eth0"), 8, "INPUT")
             for i in range(3000)]  # 100 new connections a second for 30 s
    plain, offloaded = _Replay(ruleset, None), _Replay(ruleset, case)
    assert offloaded.run(flood) == plain.run(flood)
    assert offloaded.listings() == plain.listings()
    assert offloaded.kernel_drops > 2900  # all but the first second's decided in the kernel


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([1, 2, 3]), max_size=120), st.integers(0, 30),
       st.sampled_from(list(RECIPES)))
def test_a_batch_of_drops_is_replayed_as_all_of_them(tmp_path_factory, order, before, name):
    """Drops of one tick in any order, read as the log's runs (each source counted, in the
    order of its last drop) and replayed, leave the same tables as every drop in order."""
    ruleset = _load(tmp_path_factory.mktemp("b"), _text(RECIPES[name], 60, 4, [], v6=False))
    case = find_offload_case(ruleset, stamping=True)
    assert case is not None
    replays = [_Replay(ruleset, case), _Replay(ruleset, case)]
    warmup = [(0.0, Packet(4, src, 99, 64, 6, 60, 40000, 22, 2, iif="eth0"), 8, "INPUT")
              for _ in range(before) for src in (1, 2, 3)]  # fmt: skip
    for replay in replays:
        replay.clock.advance(1)
        replay.run(warmup)
        replay.clock.advance(1)
    drops = [Packet(4, src, 99, 60 + src, 6, 60, 40000, 22, 2) for src in order]
    tick = replays[0].clock.now_ticks()
    first, second = (r.planner for r in replays)
    assert first is not None and second is not None
    for packet in drops:
        first.stamp(packet, tick)
    second.stamp_runs(_runs([(packet, tick) for packet in drops]))
    assert replays[0].listings() == replays[1].listings()


def test_a_dense_flood_is_replayed_as_runs(tmp_path):
    """Two sources at 12.5k new connections a second each (about 50 drops per source and
    tick): the log's runs are replayed a run at a time (the fill), the same as per drop."""
    ruleset = _load(tmp_path, _text(SSH, 2, 4, [], v6=True))
    case = find_offload_case(ruleset, stamping=True)
    assert case is not None
    flood = [(i * 0.00004, Packet(4 if i % 3 else 6, 1 + i % 2, 99, 60 + i % 2, 6, 60, 40000,
                                   22, 2, iif="eth0"), 8, "INPUT") for i in range(60000)]
    plain, offloaded = _Replay(ruleset, None), _Replay(ruleset, case)
    assert offloaded.run(flood) == plain.run(flood)
    assert offloaded.listings() == plain.listings()
    assert offloaded.kernel_drops > 59000


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(1, 150), st.integers(0, 2)),
                max_size=12),
       st.integers(0, 30), st.sampled_from(list(RECIPES)), st.sampled_from([None, 24]))
def test_runs_are_replayed_as_every_drop(tmp_path_factory, runs, before, name, prefix):
    """stamp_runs (a run at a time) leaves the same entries, /proc lines and LRU order as
    stamping each of the runs' drops, masked lists included."""
    mask = "" if prefix is None else " --mask 255.255.255.0"
    text = _text(RECIPES[name], 60, 4, [], v6=False).replace("--name bad", f"--name bad{mask}")
    ruleset = _load(tmp_path_factory.mktemp("r"), text)
    case = find_offload_case(ruleset, stamping=True)
    assert case is not None
    replays = [_Replay(ruleset, case), _Replay(ruleset, case)]
    warmup = [(0.0, Packet(4, src, 99, 64, 6, 60, 40000, 22, 2, iif="eth0"), 8, "INPUT")
              for _ in range(before) for src in (1, 2, 3, 0x101)]  # fmt: skip
    for replay in replays:
        replay.clock.advance(1)
        replay.run(warmup)
    tick = replays[0].clock.now_ticks()
    drops, at = [], tick
    for src, count, gap in runs:
        at += gap
        drops.append(Drops(Packet(4, src, 99, 60 + src, 6, 60, 40000, 22, 2), count, at))
    first, second = (r.planner for r in replays)
    assert first is not None and second is not None
    for run in drops:
        for _ in range(run.count):
            first.stamp(run.packet, run.tick)
    second.stamp_runs(drops)
    lru = [[format_entry(e) for e in r.tables["bad"]] for r in replays]
    assert lru[0] == lru[1]
