"""A flood of ever new sources past every bound: each packet costs the same at the
flood's end as at its start, and every structure a new source touches stays at its bound.

The cost is measured as a ratio between the first and the last fifth of the flood
(no absolute time): a structure whose work grows with what it evicted — the
dict-as-FIFO pitfall the connection table's early drop once had — makes the last
fifth several times slower than the first.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recentd.cli.process import collector_paused
from recentd.packets import columns
from recentd.packets.capture import read_capture
from recentd.packets.columns import read_columns
from recentd.packets.conntrack import ConnTracker
from recentd.packets.factory import PacketFactory, write_syn_flood_pcap
from recentd.recent import ModuleParams, RecentTables
from recentd.replay import Replayer
from recentd.replay.summary import ReplaySummary
from recentd.rules import Engine, memo, parse_ruleset_text, rawmemo

SEED_RECIPE = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state --state NEW -m recent --set --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4 \
--name SSH -j DROP
"""

FLOOD = 150_000  # packets, every one from a new source
CONNTRACK_MAX = 60_000  # full after the first fifth: the rest is early drop, each packet
LIST_TOT = 1_000
KEPT = 1_000
MEMO_CAPACITY = 4_096
#: Generous: the machine is shared and noisy; the collapse this guards against was
#: measured at 3.2-3.4x on this flood (1.1x without it).
MAX_RATIO = 2.5


def _replayer(summary_kept: int = KEPT) -> tuple[Replayer, RecentTables]:
    tables = RecentTables(ModuleParams(ip_list_tot=LIST_TOT))
    engine = Engine(parse_ruleset_text(SEED_RECIPE, source="seed").ruleset, tables)
    replayer = Replayer(engine, conntrack=ConnTracker(max_entries=CONNTRACK_MAX))
    replayer.summary = ReplaySummary(capacity=summary_kept)
    return replayer, tables


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flood") / "spoofed.pcap"
    return write_syn_flood_pcap(path, FLOOD, FLOOD, first_source="10.0.0.1")


def _fifths(stamps: list[float]) -> float:
    """Last fifth's time over the first fifth's, from the clock after each chunk."""
    fifth = len(stamps) // 5
    first = stamps[fifth] - stamps[0]
    last = stamps[-1] - stamps[-1 - fifth]
    return last / first


def _assert_at_bounds(replayer: Replayer, tables: RecentTables) -> None:
    summary = replayer.summary
    assert len(replayer.conntrack) == CONNTRACK_MAX
    assert len(tables["SSH"]) == LIST_TOT
    assert len(summary.sources) <= 2 * KEPT
    assert summary.admitted >= FLOOD - 2 * KEPT  # each new source was admitted, most evicted
    assert 0 < summary.floor <= FLOOD // KEPT  # the Space-Saving bound: N / capacity


def test_record_by_record_cost_is_flat_and_structures_stay_at_their_bounds(
        flood: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "CAPACITY", MEMO_CAPACITY)
    replayer, tables = _replayer()
    stamps = [time.perf_counter()]
    with collector_paused():
        for index, _ in enumerate(replayer.run(read_capture(flood)), 1):
            if index % 1_000 == 0:
                stamps.append(time.perf_counter())
    ratio = _fifths(stamps)
    print(f"record by record: last fifth / first fifth = {ratio:.2f}")
    assert replayer.summary.packets == FLOOD
    assert replayer.summary.verdicts == {"ACCEPT": FLOOD}  # nobody repeats: nobody dropped
    _assert_at_bounds(replayer, tables)
    assert len(replayer.engine._memo or {}) <= MEMO_CAPACITY  # type: ignore[attr-defined]
    assert ratio < MAX_RATIO


def test_columns_cost_is_flat_and_structures_stay_at_their_bounds(
        flood: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "CAPACITY", MEMO_CAPACITY)
    monkeypatch.setattr(rawmemo, "CAPACITY", MEMO_CAPACITY)
    monkeypatch.setattr(columns, "CHUNK_BYTES", 1_000 * 56)  # about 1,000 records a chunk
    replayer, tables = _replayer()
    stamps = [time.perf_counter()]
    with collector_paused():
        replayer.replay(read_columns(flood),
                        progress=lambda _: stamps.append(time.perf_counter()))
    ratio = _fifths(stamps)
    print(f"columns: last fifth / first fifth = {ratio:.2f}")
    assert replayer.summary.packets == FLOOD
    _assert_at_bounds(replayer, tables)
    assert ratio < MAX_RATIO


ATTACKER, SERVER = "203.0.113.66", "192.0.2.1"
SPOOFED_PER_S = 500  # scaled down from the bench's 100k/s: the rule is the same


@pytest.mark.parametrize(("list_tot", "caught"), [(4_000, False), (6_000, True)])
def test_a_real_attacker_in_a_spoofed_flood_is_caught_if_the_list_outlasts_his_pauses(
        tmp_path: Path, list_tot: int, caught: bool) -> None:
    """One attempt every 10 s among 500 new sources a second: 5,000 sources between two
    attempts. The kernel's LRU keeps the attacker's entry only in a list with room for
    them all (docs/deviations.md: ip_list_tot >= spoofed rate x attempt interval)."""
    attempts = [(i * 10 * 10**9 + 5 * 10**9, PacketFactory().tcp(
        ATTACKER, SERVER, sport=40000 + i, dport=22, flags="S")) for i in range(5)]
    capture = write_syn_flood_pcap(tmp_path / "attack.pcap", 50 * SPOOFED_PER_S,
                                   50 * SPOOFED_PER_S, dst=SERVER, start_ns=0,
                                   interval_ns=10**9 // SPOOFED_PER_S, extra=attempts)
    tables = RecentTables(ModuleParams(ip_list_tot=list_tot))
    replayer = Replayer(Engine(parse_ruleset_text(SEED_RECIPE, source="seed").ruleset, tables))
    summary = replayer.replay(read_columns(capture))
    assert summary.packets == 50 * SPOOFED_PER_S + len(attempts)
    # The recipe accepts four new connections in 60 s and drops the fifth (a sixth, 20 s
    # later, would find the entry evicted again: --rcheck does not refresh it). Each
    # spoofed source sends one SYN, accepted: every drop is the attacker's (his row in
    # the summary is not asked for: 25,000 sources overflow its heavy hitters).
    assert summary.verdicts.get("DROP", 0) == (1 if caught else 0)
