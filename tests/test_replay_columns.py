"""Replay's fast path (columns, raw-bytes keys) answers what record-by-record replay
answers: the same summary, rule counters, recent tables and connection table, on
floods and on mixed traffic, and the same error on a damaged capture."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.errors import CaptureError
from recentd.packets import columns
from recentd.packets.capture import read_capture
from recentd.packets.columns import read_columns
from recentd.packets.conntrack import ConnTracker
from recentd.packets.factory import LINKTYPE_ETHERNET, LINKTYPE_RAW, PacketFactory, write_pcap
from recentd.recent import ModuleParams, RecentTables
from recentd.replay import Replayer
from recentd.rules import Engine, parse_ruleset_text
from tests.live.conftest import seed_text

SEED = seed_text()  # the how-to's recipe, as pasted
RULE_SETS = [
    SEED,
    # established traffic accepted, NEW limited per source, UDP by a limit (volatile)
    "iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n"
    "iptables -A INPUT -p tcp --syn -m recent --update --seconds 1 --hitcount 3 --name A -j DROP\n"
    "iptables -A INPUT -p tcp --syn -m recent --set --name A\n"
    "iptables -A INPUT -p udp -m limit --limit 50/sec --limit-burst 5 -j ACCEPT\n"
    "iptables -A INPUT -p udp -j DROP\n"
    "iptables -A INPUT -m state --state INVALID -j DROP\n",
    # a short window: remembered drops end when it passes
    "iptables -A INPUT -p tcp --syn -m recent --rcheck --seconds 1 --hitcount 2 --name R -j DROP\n"
    "iptables -A INPUT -p tcp --syn -m recent --set --name R\n",
    # addresses, TTL and flags read; a user chain with RETURN; DROP policy
    "iptables -P INPUT DROP\n"
    "iptables -N X\n"
    "iptables -A INPUT -s 10.1.0.0/30 -j X\n"
    "iptables -A INPUT -p tcp --tcp-flags SYN,ACK SYN -m recent --rcheck --rttl --name T -j DROP\n"
    "iptables -A INPUT -p tcp -m recent --set --name T -j ACCEPT\n"
    "iptables -A INPUT -p udp --dport 53 -j ACCEPT\n"
    "iptables -A X -p tcp --dport 80 -j RETURN\n"
    "iptables -A X -j ACCEPT\n",
]
SERVER = "10.0.0.1"
CLIENTS = ["10.1.0.1", "10.1.0.2", "10.1.0.9", "10.2.0.5", "10.2.0.6"]
pf = PacketFactory()


def _traffic(rng: random.Random, count: int) -> list[tuple[int, bytes]]:
    """Floods of SYNs (a few ports, so tuples repeat), handshakes and data both ways,
    UDP, ICMP, IPv6, fragments, short packets; clock steps within a tick to seconds."""
    out: list[tuple[int, bytes]] = []
    ts = 1_700_000_000_000_000_000
    for _ in range(count):
        ts += rng.choice([1_000, 1_000, 50_000, 3_000_000, 700_000_000])
        client, sport = rng.choice(CLIENTS), rng.choice([1024, 1025, 1026, 40000 + rng.randrange(9)])
        dport = rng.choice([22, 22, 80])
        kind = rng.random()
        if kind < 0.55:
            packet = pf.tcp(client, SERVER, sport=sport, dport=dport, flags="S",
                            ttl=rng.choice([64, 63]))
        elif kind < 0.65:
            packet = pf.tcp(SERVER, client, sport=dport, dport=sport, flags="SA", seq=5000, ack=1001)
        elif kind < 0.75:
            packet = pf.tcp(client, SERVER, sport=sport, dport=dport, flags=rng.choice(["A", "PA", "FA", "R"]),
                            seq=1001, ack=5001, payload=b"x" * rng.choice([0, 10]))
        elif kind < 0.85:
            packet = pf.udp(client, SERVER, sport=sport, dport=53, payload=b"q" * rng.choice([4, 20]))
        elif kind < 0.9:
            packet = pf.icmp(client, SERVER, payload=b"ping")
        elif kind < 0.95:
            packet = pf.tcp("fd00::" + client.split(".")[-1], "fd00::1", sport=sport, dport=22, flags="S")
        else:
            packet = rng.choice([pf.ip(client, SERVER, 6, pf.tcp(client, SERVER)[20:], frag_offset=8),
                                 b"\x45\x00\x00\x14" + bytes(16)])
        out.append((ts, packet))
    return out


def _replayer(rules: str) -> Replayer:
    tables = RecentTables(ModuleParams(ip_list_tot=8))  # small: evictions happen
    return Replayer(Engine(parse_ruleset_text(rules, source="test").ruleset, tables),
                    conntrack=ConnTracker(max_entries=8))  # small: the table fills


def _outcome(replayer: Replayer, error: str | None) -> tuple[object, ...]:
    summary = replayer.summary
    engine = replayer.engine
    assert isinstance(engine, Engine)
    return (summary.packets, summary.evaluated, summary.undecodable, summary.verdicts,
            summary.by_source(), engine.snapshot(), {t.name: list(t) for t in engine.tables},
            len(replayer.conntrack), error)


def _compare(path: Path, rules: str) -> tuple[object, ...]:
    fast, slow = _replayer(rules), _replayer(rules)
    fast_error = slow_error = None
    try:
        fast.replay(read_columns(path))
    except CaptureError as exc:
        fast_error = str(exc)
    try:
        for _ in slow.run(read_capture(path)):
            pass
    except CaptureError as exc:
        slow_error = str(exc)
    expected = _outcome(slow, slow_error)
    assert _outcome(fast, fast_error) == expected
    return expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.sampled_from(RULE_SETS), seed=st.integers(0, 2**32 - 1),
       linktype=st.sampled_from([LINKTYPE_RAW, LINKTYPE_ETHERNET]))
def test_the_fast_path_answers_what_record_by_record_replay_answers(
        tmp_path: Path, rules: str, seed: int, linktype: int) -> None:
    path = tmp_path / "traffic.pcap"
    write_pcap(path, _traffic(random.Random(seed), 400), linktype=linktype)
    _compare(path, rules)


def test_a_flood_across_many_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", 8192)
    path = tmp_path / "flood.pcap"
    rng = random.Random(7)
    write_pcap(path, [(1_700_000_000_000_000_000 + 1_000 * i,
                       pf.tcp(rng.choice(CLIENTS), SERVER, sport=1024 + i % 50, flags="S"))
                      for i in range(3_000)])
    packets, _, _, verdicts, *_ = _compare(path, SEED)
    assert packets == 3_000 and verdicts == {"ACCEPT": 20, "DROP": 2_980}


def test_a_damaged_capture_fails_the_same_after_the_same_packets(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap(path, _traffic(random.Random(3), 300))
    path.write_bytes(path.read_bytes()[:-7])
    *_, error = _compare(path, SEED)
    assert isinstance(error, str) and "truncated" in error


@pytest.mark.parametrize(("hz", "first"), [(10**7, 4 * 10**9), (10**10, 1_700_000_000)])
def test_ticks_beyond_numpy_exactness_take_the_ordinary_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hz: int, first: int) -> None:
    """With an extreme --hz, ticks outgrow what int64/float64 hold exactly (2**53): such
    chunks are replayed record by record, in Python integers. Found by review: a plan
    compared a float `until` and reused a drop one tick after its window closed."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", 3 * 56)  # records 1-3, then record 4
    rules = ("iptables -A INPUT -p tcp --syn -m recent --rcheck --seconds 1 --hitcount 2"
             " --name R -j DROP\niptables -A INPUT -p tcp --syn -m recent --set --name R\n")
    # ticks around 4e16 (beyond float64's exact integers), or 1.7e19 (beyond int64)
    stamps = [first * 10**9 + offset * 10**9 // hz for offset in (0, 1, 2, hz + 1)]
    path = tmp_path / "hz.pcap"
    write_pcap(path, [(ts, pf.tcp(CLIENTS[0], SERVER, sport=1000 + i, flags="S"))
                      for i, ts in enumerate(stamps)])

    def replayer() -> Replayer:
        engine = Engine(parse_ruleset_text(rules, source="hz").ruleset, RecentTables(hz=hz), hz=hz)
        return Replayer(engine, hz=hz)

    slow, fast = replayer(), replayer()
    verdicts = [result.verdict for result in slow.run(read_capture(path))]
    fast.replay(read_columns(path))
    assert verdicts[:3] == ["ACCEPT", "ACCEPT", "DROP"]  # the 4th: 1 s (+1 tick) later
    assert _outcome(fast, None) == _outcome(slow, None)


def test_the_replayer_picks_columns_only_where_they_apply(tmp_path: Path) -> None:
    """Columns with recentd's engine and every record taking the hook; record by record
    with ``local`` addresses or another evaluator — and the same answers either way."""
    from recentd.replay.columns import ColumnReplay  # noqa: PLC0415
    from recentd.replay.strategy import RecordByRecord  # noqa: PLC0415

    engine = Engine(parse_ruleset_text(SEED, source="seed").ruleset)
    assert isinstance(Replayer(engine).strategy(), ColumnReplay)
    assert isinstance(Replayer(engine, local=[(4, 1)]).strategy(), RecordByRecord)

    class Other:  # any evaluator: replay needs only evaluate()
        def __init__(self, inner: Engine) -> None:
            self.inner = inner

        def evaluate(self, packet: object, hook: object, now_ticks: int, *,
                     ctstate: int) -> object:
            return self.inner.evaluate(packet, hook, now_ticks, ctstate=ctstate)  # type: ignore[arg-type]

    inner = _replayer(SEED).engine
    assert isinstance(inner, Engine)
    other = Replayer(Other(inner), conntrack=ConnTracker(max_entries=8))  # type: ignore[arg-type]
    assert isinstance(other.strategy(), RecordByRecord)
    path = tmp_path / "traffic.pcap"
    write_pcap(path, _traffic(random.Random(5), 200))
    other.replay(read_columns(path))
    expected = _replayer(SEED)
    for _ in expected.run(read_capture(path)):
        pass
    assert other.summary.verdicts == expected.summary.verdicts
    assert other.summary.by_source() == expected.summary.by_source()


SPOOFED_RULE_SETS = [
    SEED,
    # a masked table: sources of one /24 share an entry
    "iptables -A INPUT -p tcp --syn -m recent --rcheck --seconds 1 --hitcount 2 --name N"
    " --mask 255.255.255.0 -j DROP\n"
    "iptables -A INPUT -p tcp --syn -m recent --set --name N --mask 255.255.255.0\n",
    # a new source is dropped, nothing written (a DROP template without writes); UDP set
    "iptables -A INPUT -p tcp --dport 80 -m recent ! --rcheck --name K -j DROP\n"
    "iptables -A INPUT -p udp -m recent --set --name K\n"
    "iptables -A INPUT -p tcp -m recent --set --name K -m recent --update --name K\n",
    # created and removed by the same walk; two tables
    "iptables -A INPUT -p tcp --syn -m recent --set --name A -m recent --remove --name A\n"
    "iptables -A INPUT -p tcp --syn -m recent --set --name B\n",
]


def _spoofed_traffic(rng: random.Random, count: int) -> list[tuple[int, bytes]]:
    """Runs of SYNs from new sources (a spoofed flood), with repeats, a source twice in
    a run, neighbours in one /24, the server's SYN/ACKs to them, UDP, other packets."""
    out: list[tuple[int, bytes]] = []
    ts, sources = 1_700_000_000_000_000_000, list[str]()
    for n in range(count):
        ts += rng.choice([1_000, 1_000, 1_000, 40_000_000, 900_000_000])
        kind = rng.random()
        if kind < 0.7 or not sources:
            src = f"198.18.{n // 200}.{rng.choice([n % 200 + 1, n % 200 + 1, 7])}"
            sources.append(src)
        else:
            src = rng.choice(sources)
        sport, dport = 1024 + n % rng.choice([7, 60000]), rng.choice([22, 22, 22, 80])
        if kind < 0.9:
            packet = pf.tcp(src, SERVER, sport=sport, dport=dport, flags="S")
        elif kind < 0.94:
            packet = pf.tcp(SERVER, src, sport=dport, dport=sport, flags="SA", seq=5, ack=1)
        elif kind < 0.98:
            packet = pf.udp(src, SERVER, sport=sport, dport=53, payload=b"q")
        else:
            packet = pf.tcp(src, SERVER, sport=sport, dport=dport, flags="A", seq=1, ack=6)
        out.append((ts, packet))
    return out


def _connections(replayer: Replayer) -> tuple[object, ...]:
    """The connection table: every tuple's entry, and the order early drops take."""
    tracker = replayer.conntrack
    return ({key: (conn.original, conn.reply, conn.created_ns, conn.expires_ns, conn.state,
                   conn.win, conn.assured) for key, conn in tracker.entries.items()},
            [conn.original for conn in tracker.unassured()])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.sampled_from(SPOOFED_RULE_SETS), seed=st.integers(0, 2**32 - 1),
       sizes=st.sampled_from([(8, 8), (50, 16), (5_000, 5_000)]))
def test_new_sources_decided_in_runs_answer_what_record_by_record_replay_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: str, seed: int,
        sizes: tuple[int, int]) -> None:
    """Rule 3 of the columns (templates, runs of them): the same verdicts, counters,
    tables (entries, order, evictions) and connections (tuples, entries, order of the
    early drops) as record-by-record replay, with tables and connection table full or not."""
    monkeypatch.setattr(columns, "CHUNK_BYTES", 20_000)  # a few chunks
    path = tmp_path / "spoofed.pcap"
    write_pcap(path, _spoofed_traffic(random.Random(seed), 900))
    list_tot, max_entries = sizes

    def replayer() -> Replayer:
        tables = RecentTables(ModuleParams(ip_list_tot=list_tot))
        return Replayer(Engine(parse_ruleset_text(rules, source="test").ruleset, tables),
                        conntrack=ConnTracker(max_entries=max_entries))

    fast, slow = replayer(), replayer()
    fast.replay(read_columns(path))
    for _ in slow.run(read_capture(path)):
        pass
    assert _outcome(fast, None) == _outcome(slow, None)
    assert _connections(fast) == _connections(slow)
    assert fast.conntrack.changes == slow.conntrack.changes
    assert isinstance(fast.engine, Engine) and isinstance(slow.engine, Engine)
    assert [t.evictions for t in fast.engine.tables] == [t.evictions for t in slow.engine.tables]
    assert fast.summary.remembered > 0  # decided without walking the rules
