"""Decisions found by raw header bytes (live.rawmemo) are the engine's decisions: the same
queued traffic gets the same verdicts, counters and tables with it as through an engine
that remembers nothing."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.live.nfqnl import CT_NONE, IP_CT_ESTABLISHED, IP_CT_NEW, QueuedPacket, packet_message
from recentd.live.nfqueue import Batch
from recentd.live.verdict import Pipeline, engine_decider
from recentd.recent import RecentTables
from recentd.rules import Engine, parse_ruleset_text
from recentd.rules.rawmemo import RawMemo, byte_mask
from recentd.testing.clock import FakeClock

BASE = 20
SERVER = 0x0A000001
RULE_SETS = [
    # the state decides alone
    "iptables -A INPUT -m state --state ESTABLISHED -j ACCEPT\n"
    "iptables -A INPUT -j DROP\n",
    # the seed recipe's shape (reads src, dport, state)
    "iptables -N SSH_CHECK\n"
    "iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK\n"
    "iptables -A SSH_CHECK -m recent --rcheck --seconds 1 --hitcount 3 --name SSH -j DROP\n"
    "iptables -A SSH_CHECK -m recent --set --name SSH\n",
    # reads TTL (--rttl), flags (--syn), sport, the input interface and the mark
    "iptables -A INPUT -p tcp --syn -m recent --rcheck --rttl --seconds 2 --hitcount 2"
    " --name A -j DROP\n"
    "iptables -A INPUT -p tcp --sport 1000:1001 -j ACCEPT\n"
    "iptables -A INPUT -i lo -j ACCEPT\n"
    "iptables -A INPUT -m mark --mark 7 -j DROP\n"
    "iptables -A INPUT -p udp -m recent --rcheck --seconds 1 --name A -j DROP\n"
    "iptables -A INPUT -m recent --set --name A\n",
    # reads the destination (--rdest) and the length; a limit (never remembered)
    "iptables -A INPUT -m recent --rcheck --rdest --seconds 1 --hitcount 2 --name D -j DROP\n"
    "iptables -A INPUT -m length --length 0:45 -m recent --set --rdest --name D\n"
    "iptables -A INPUT -m limit --limit 20/sec --limit-burst 3 -j ACCEPT\n"
    "iptables -A INPUT -j DROP\n",
]


def _queued(rng: random.Random, packet_id: int) -> QueuedPacket:
    src = 0x0A000002 + rng.randrange(3)
    dst = SERVER + rng.randrange(2)
    ttl = rng.choice([64, 64, 63])
    if rng.random() < 0.15:  # UDP
        body = struct.pack("!HHHH", rng.choice([1000, 5353]), 53, 8 + 12, 0) + bytes(12)
        proto = 17
    else:
        flags = rng.choice([0x02, 0x02, 0x10, 0x12])
        body = struct.pack("!HHIIBBHHH", rng.choice([1000, 1001, 40000]), rng.choice([22, 22, 80]),
                           rng.getrandbits(32), 0, 0x50, flags, 64240, 0, 0)
        proto = 6
    extra = bytes(rng.choice([0, 0, 8]))  # some packets longer than 40 bytes
    frag = rng.choice([0, 0, 0, 0x2000])  # some fragments (never keyed)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(body) + len(extra), rng.getrandbits(16),
                     frag, ttl, proto, 0, src, dst)
    queue = BASE + rng.choice([3, 3, 3, 1])  # NEW or ESTABLISHED
    # where the kernel sends NFQA_CT_INFO, it says the state instead of the queue
    ctinfo = rng.choice([CT_NONE, CT_NONE, IP_CT_NEW, IP_CT_ESTABLISHED])
    return QueuedPacket(packet_id, 1, ip + body + extra, ctinfo=ctinfo, queue=queue,
                        indev=rng.choice([1, 2]), mark=rng.choice([0, 0, 0, 7]))


def _pipeline(rules: str, clock: FakeClock, *, memo: bool) -> tuple[Pipeline, Engine]:
    engine = Engine(parse_ruleset_text(rules, source="rawmemo").ruleset, RecentTables(hz=250),
                    hz=250, memo=memo)
    pipeline = Pipeline(engine_decider(engine), clock, base_queue=BASE,
                        raw_memo=RawMemo(engine) if memo else None)
    pipeline._ifnames.update({1: "lo", 2: "eth0"})
    return pipeline, engine


@settings(max_examples=60, deadline=None)
@given(rules=st.sampled_from(RULE_SETS), seed=st.integers(0, 2**32 - 1))
def test_raw_keyed_decisions_are_the_decisions(rules: str, seed: int) -> None:
    rng = random.Random(seed)
    clock_a, clock_b = FakeClock(start_ns=10**12), FakeClock(start_ns=10**12)
    remembering, engine_a = _pipeline(rules, clock_a, memo=True)
    plain, engine_b = _pipeline(rules, clock_b, memo=False)
    packet_id = 0
    for _ in range(40):
        batch = []
        for _ in range(rng.randrange(1, 12)):
            packet_id += 1
            batch.append(_queued(rng, packet_id))
        assert remembering(batch) == plain(batch)
        step = rng.choice([0, 0, 1_000_000, 30_000_000, 400_000_000])
        clock_a.advance(step / 1e9)
        clock_b.advance(step / 1e9)
    assert remembering.counters == plain.counters
    assert engine_a.snapshot() == engine_b.snapshot()
    assert {t.name: list(t) for t in engine_a.tables} == {t.name: list(t) for t in engine_b.tables}


def test_a_flood_is_answered_from_raw_bytes() -> None:
    """After the 3rd SYN in the window the source is dropped by an --rcheck that changes
    nothing: every later SYN of it (new port, sequence, IP id each time) is answered
    from its raw bytes, and the rules' counters still count it."""
    clock = FakeClock(start_ns=10**12)
    pipeline, engine = _pipeline(RULE_SETS[1], clock, memo=True)
    assert pipeline.raw_memo is not None
    rng = random.Random(1)
    flood = []
    for packet_id in range(1, 11):
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, packet_id, 0, 64, 6, 0, 0x0A000009, SERVER)
        tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id, 22, rng.getrandbits(32), 0, 0x50, 2,
                          64240, 0, 0)
        flood.append(QueuedPacket(packet_id, 1, ip + tcp, queue=BASE + 3))
    assert pipeline(flood) == [1, 1, 1] + [0] * 7
    assert len(pipeline.raw_memo) == 1  # one key for all of them: ports, seq, id masked
    counts = [(r.packets, r.bytes) for r in engine.snapshot().table(4, "filter")
              .chain("SSH_CHECK").rules]  # type: ignore[union-attr]
    assert counts == [(7, 280), (3, 120)]


def test_the_key_keeps_only_bytes_the_rules_or_the_decoder_read() -> None:
    mask = byte_mask(("family", "mark", "src", "dport"))
    kept = [index for index in range(36) if (mask >> ((35 - index) * 8)) & 0xFF]
    assert kept == [0, 2, 3, 6, 7, 9, 12, 13, 14, 15, 22, 23, 32]


def _mixed(rng: random.Random, packet_id: int, fresh: list[int], *,
           flood: bool = False) -> QueuedPacket:
    """A flood's traffic and everything else: runs of new sources, known ones again,
    UDP, IPv6, fragments, short captures, other queues, marks, interfaces, stamps
    (``flood``: only new sources' SYNs)."""
    kind = 1.0 if flood else rng.random()
    if kind < 0.08:  # IPv6 TCP SYN
        src6 = (0x20010DB8 << 96) | rng.randrange(4)
        tcp = struct.pack("!HHIIBBHHH", 40000, 22, rng.getrandbits(32), 0, 0x50, 2, 64240, 0, 0)
        payload = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + src6.to_bytes(16, "big") \
            + (SERVER).to_bytes(16, "big") + tcp
        return QueuedPacket(packet_id, 1, payload, queue=BASE + 3, indev=2)
    if kind < 0.14:  # a short capture
        queued = _queued(rng, packet_id)
        return queued._replace(payload=queued.payload[: rng.randrange(1, 40)])
    if kind < 0.4:  # the mixed traffic of the other test, from few sources
        queued = _queued(rng, packet_id)
        return queued._replace(timestamp_ns=rng.choice([0, 10**18 + packet_id]))
    # a SYN to port 22 from a new source, or (sometimes) one seen before
    if fresh and not flood and rng.random() < 0.2:
        src = rng.choice(fresh)
    else:
        src = 0x0B000000 + len(fresh) * rng.choice([1, 1, 7, 256])  # 256: other /24s
        fresh.append(src)
    ttl = rng.choice([64, 64, 64, 128])
    frag = 0x2000 if rng.random() < 0.03 else 0
    tcp = struct.pack("!HHIIBBHHH", 1024 + packet_id % 60000, 22, rng.getrandbits(32), 0, 0x50,
                      2, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, packet_id & 0xFFFF, frag, ttl, 6, 0, src, SERVER)
    return QueuedPacket(packet_id, 1, ip + tcp, queue=BASE + 3, indev=rng.choice([2, 2, 2, 1]),
                        timestamp_ns=10**18 + packet_id * 1000)


#: Two tables, one keyed by /24 (a run's sources must be distinct under each mask).
TWO_TABLES = (
    "iptables -A INPUT -p tcp --dport 22 -m recent --rcheck --seconds 1 --hitcount 3"
    " --name SSH -j DROP\n"
    "iptables -A INPUT -p tcp --dport 22 -m recent --set --name SSH\n"
    "iptables -A INPUT -m recent --rcheck --seconds 1 --hitcount 9 --mask 255.255.255.0"
    " --name NETS -j DROP\n"
    "iptables -A INPUT -m recent --set --mask 255.255.255.0 --name NETS\n"
)


@settings(max_examples=40, deadline=None)
@given(rules=st.sampled_from([*RULE_SETS, TWO_TABLES]), seed=st.integers(0, 2**32 - 1))
def test_the_receive_buffer_path_decides_as_queued_packets(rules: str, seed: int) -> None:
    """The pipeline reading a received batch's buffer (no QueuedPacket per packet, runs
    of new sources applied at once) gives the verdicts, counters and tables of the same
    packets as QueuedPackets, and of an engine that remembers nothing."""
    rng = random.Random(seed)
    clocks = [FakeClock(start_ns=10**12) for _ in range(3)]
    from_buffer, engine_a = _pipeline(rules, clocks[0], memo=True)
    queued, engine_b = _pipeline(rules, clocks[1], memo=True)
    plain, engine_c = _pipeline(rules, clocks[2], memo=False)
    packet_id, fresh = 0, list[int]()
    for _ in range(30):
        batch = []
        flood = rng.random() < 0.2  # a run longer than the tables (100 entries)
        for _ in range(250 if flood else rng.choice([1, 5, 40, 150])):
            packet_id += 1
            batch.append(_mixed(rng, packet_id, fresh, flood=flood))
        data = b"".join(packet_message(p) for p in batch)
        decided = from_buffer(Batch.of(data))
        assert decided == queued(batch) == plain(batch)
        step = rng.choice([0, 0, 1_000_000, 30_000_000, 400_000_000])
        for clock in clocks:
            clock.advance(step / 1e9)
    assert from_buffer.counters == queued.counters == plain.counters
    assert from_buffer.counters.remembered == queued.counters.remembered
    assert engine_a.snapshot() == engine_b.snapshot() == engine_c.snapshot()
    tables = [{t.name: list(t) for t in engine.tables} for engine in (engine_a, engine_b, engine_c)]
    assert tables[0] == tables[1] == tables[2]
