"""Fresh-source templates (rules.fresh) change nothing: the same rules and traffic give
the same decisions, counters and tables with them as without them.

Random rule sets are drawn from the memo test's lines (`recent` with every command and
option, limit, hashlimit, LOG, MARK, REJECT, jumps, gotos, RETURN, policies) and a few
that read the source elsewhere; the traffic comes from many sources of both families,
most of them new (a spoofed flood), some repeating, into small tables (evictions), with
/proc writes between packets.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.live.nfqnl import QueuedPacket
from recentd.live.verdict import Pipeline, engine_decider
from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, Packet
from recentd.recent import ModuleParams, RecentTables
from recentd.rules import CtState, Engine, Hook, parse_ruleset_text
from recentd.rules.rawmemo import RawMemo
from recentd.testing.clock import FakeClock
from tests.rules.test_memo import FILTER_LINES, MANGLE_LINES, USER_LINES
from tests.rules.transcript import addr

SEED = (
    "iptables -N SSH_CHECK\n"
    "iptables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK\n"
    "iptables -I SSH_CHECK -m state --state NEW -m recent --set --name SSH\n"
    "iptables -I SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4"
    " --name SSH\n"
    "iptables -I SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4"
    " --name SSH -j DROP\n"
)
EXTRA_LINES = [
    "-m recent --rcheck --rttl --hitcount 2 --name C -j DROP",
    "-m recent --set --name C",
    "-p tcp --dport 22 -m recent --set --name A -m recent --update --name A -j ACCEPT",
    "-m recent --set --name A -m recent --remove --name A",
    "-m recent --set --name M --mask 255.255.255.0",
    "-s 10.8.0.0/16 -j ACCEPT",
]


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    lines: list[str] = []
    lines_of = [line for line in FILTER_LINES if "--rdest" not in line and "--reap" not in line]
    if draw(st.booleans()):
        lines_of = FILTER_LINES  # rules that rule templates out: they must stay off
    for program in ("iptables", "ip6tables"):
        lines.append(f"{program} -N X")
        lines.append(f"{program} -P INPUT {draw(st.sampled_from(['ACCEPT', 'DROP']))}")
        for line in draw(st.lists(st.sampled_from(lines_of + EXTRA_LINES), min_size=1,
                                  max_size=6)):
            if program == "ip6tables" and ("10.8." in line or "255.255.255.0" in line):
                continue
            lines.append(f"{program} -A INPUT {line}")
        for line in draw(st.lists(st.sampled_from([*lines_of, "-j X"]), max_size=2)):
            lines.append(f"{program} -A FORWARD {line}")  # TTL + 1 (an output device)
        for line in draw(st.lists(st.sampled_from(USER_LINES), max_size=3)):
            lines.append(f"{program} -A X {line}")
        for line in draw(st.lists(st.sampled_from(MANGLE_LINES), max_size=1)):
            lines.append(f"{program} -t mangle -A PREROUTING {line}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Send:
    step: int
    packet: Packet
    state: CtState
    hook: Hook


def _traffic(rng: random.Random, count: int) -> list[Send | tuple[int, str, int]]:
    """Mostly new sources, some repeating; clock steps within a tick to past a window."""
    events: list[Send | tuple[int, str, int]] = []
    seen: list[tuple[int, int]] = []
    for n in range(count):
        step = rng.choice([0, 0, 1, 3, rng.randint(0, 300), rng.randint(200, 900)])
        if seen and rng.random() < 0.03:
            events.append((step, rng.choice("+-/"), rng.randrange(len(seen))))
            continue
        if seen and rng.random() < 0.25:
            family, src = rng.choice(seen)
        else:
            family = 6 if rng.random() < 0.15 else 4
            src = addr(f"fd08::{n + 1:x}" if family == 6 else
                       f"10.{rng.choice([8, 9])}.{n // 250}.{n % 250 + 1}")
            seen.append((family, src))
        dst = addr("fd09::ff" if family == 6 else "10.9.0.255")
        udp = rng.random() < 0.1
        packet = Packet(family, src, dst, rng.choice([64, 64, 63, 255]),
                        IPPROTO_UDP if udp else IPPROTO_TCP, 60, sport=1024 + n % 7,
                        dport=rng.choice([22, 22, 22, 80]), tcp_flags=-1 if udp else TCP_SYN,
                        mark=rng.choice([0, 0, 0, 2]), iif="eth0")
        events.append(Send(step, packet, CtState.ESTABLISHED if rng.random() < 0.1
                           else CtState.NEW, rng.choice([Hook.INPUT] * 3 + [Hook.FORWARD])))
    return events


def _run(rules: str, events: list[Send | tuple[int, str, int]], *,
         fresh: bool) -> tuple[list[object], Engine, dict[str, list[object]]]:
    tables = RecentTables(ModuleParams(ip_list_tot=7))  # small: evictions happen
    engine = Engine(parse_ruleset_text(rules, source="fresh").ruleset, tables, fresh=fresh)
    now, decisions = 1_000, list[object]()
    for event in events:
        if isinstance(event, Send):
            now += event.step
            decisions.append(engine.evaluate(event.packet, event.hook, now, ctstate=event.state))
            continue
        step, command, index = event
        now += step
        for table in tables:
            family, src = (6, addr(f"fd08::{index + 1:x}")) if index % 5 == 0 else \
                (4, addr(f"10.9.0.{index % 250 + 1}"))
            if command == "+":
                table.add(family, src, now)
            elif command == "-":
                table.remove(family, src)
            else:
                table.flush()
    return decisions, engine, {table.name: list(table) for table in tables}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.one_of(st.just(SEED), rule_sets()), seed=st.integers(0, 2**32 - 1))
def test_templates_decide_what_the_walk_decides(rules: str, seed: int) -> None:
    events = _traffic(random.Random(seed), 300)
    walked, plain, plain_tables = _run(rules, events, fresh=False)
    templated, engine, tables = _run(rules, events, fresh=True)
    assert templated == walked
    assert engine.snapshot() == plain.snapshot()
    assert tables == plain_tables
    # evictions are part of what a template repeats
    assert [t.evictions for t in engine.tables] == [t.evictions for t in plain.tables]


def test_a_spoofed_flood_walks_the_rules_once_per_shape() -> None:
    """The seed recipe under 1,000 new sources: the first packet walks the rules and
    teaches the template; the other 999 are decided from it, with the same tables."""
    packets = [Packet(4, addr("198.18.0.0") + n, addr("192.0.2.1"), 64, IPPROTO_TCP, 40,
                      sport=1024 + n, dport=22, tcp_flags=TCP_SYN) for n in range(1000)]
    outcomes = []
    for fresh in (False, True):
        tables = RecentTables(ModuleParams(ip_list_tot=100))
        engine = Engine(parse_ruleset_text(SEED, source="seed").ruleset, tables, fresh=fresh)
        verdicts = [engine.evaluate(p, Hook.INPUT, 100 + n).verdict.name
                    for n, p in enumerate(packets)]
        outcomes.append((verdicts, engine.snapshot(), list(tables["SSH"]),
                         tables["SSH"].evictions))
        if fresh:
            assert engine.fresh is not None
            assert len(engine.fresh._templates) == 1
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == ["ACCEPT"] * 1000 and outcomes[1][3] == 900


def _queued(rng: random.Random, packet_id: int, sources: list[int]) -> QueuedPacket:
    """A SYN (or UDP datagram), mostly from a new source, to the server."""
    if sources and rng.random() < 0.2:
        src = rng.choice(sources)
    else:
        src = 0xC6120000 + packet_id  # 198.18.x.y: a spoofed flood's new source
        sources.append(src)
    if rng.random() < 0.1:
        body, proto = struct.pack("!HHHH", 5353, 53, 8 + 12, 0) + bytes(12), 17
    else:
        body = struct.pack("!HHIIBBHHH", 1024 + packet_id % 7, rng.choice([22, 22, 80]),
                           rng.getrandbits(32), 0, 0x50, 0x02, 64240, 0, 0)
        proto = 6
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(body), rng.getrandbits(16), 0,
                     rng.choice([64, 63]), proto, 0, src, 0x0A000001)
    return QueuedPacket(packet_id, 1, ip + body, queue=LIVE_BASE + rng.choice([3, 3, 3, 1]),
                        indev=1, mark=rng.choice([0, 0, 7]))


LIVE_BASE = 20


def _pipeline(rules: str, clock: FakeClock, *, memo: bool) -> tuple[Pipeline, Engine]:
    engine = Engine(parse_ruleset_text(rules, source="fresh").ruleset,
                    RecentTables(ModuleParams(ip_list_tot=9), hz=250), hz=250, memo=memo)
    pipeline = Pipeline(engine_decider(engine), clock, base_queue=LIVE_BASE,
                        raw_memo=RawMemo(engine) if memo else None)
    pipeline._ifnames.update({1: "eth0"})
    return pipeline, engine


@settings(max_examples=60, deadline=None)
@given(rules=st.one_of(st.just(SEED), rule_sets()), seed=st.integers(0, 2**32 - 1))
def test_the_live_pipeline_decides_new_sources_as_the_walk_does(rules: str, seed: int) -> None:
    """The pipeline's raw-bytes path (templates by raw bytes, rules.rawmemo) against a
    pipeline whose engine remembers nothing: same verdicts, counters and tables."""
    rng = random.Random(seed)
    clock_a, clock_b = FakeClock(start_ns=10**12), FakeClock(start_ns=10**12)
    fast, engine_a = _pipeline(rules, clock_a, memo=True)
    plain, engine_b = _pipeline(rules, clock_b, memo=False)
    packet_id, sources = 0, list[int]()
    for _ in range(30):
        batch = []
        for _ in range(rng.randrange(1, 20)):
            packet_id += 1
            batch.append(_queued(rng, packet_id, sources))
        assert fast(batch) == plain(batch)
        step = rng.choice([0, 0, 1_000_000, 400_000_000])
        clock_a.advance(step / 1e9)
        clock_b.advance(step / 1e9)
    assert fast.counters == plain.counters
    assert engine_a.snapshot() == engine_b.snapshot()
    assert {t.name: list(t) for t in engine_a.tables} == {t.name: list(t) for t in engine_b.tables}


def test_the_pipeline_answers_a_spoofed_flood_from_one_template() -> None:
    """The seed recipe: the first new source's SYN is decoded and walked; the next 199,
    each from a new source, are answered from the template found by their raw bytes."""
    clock = FakeClock(start_ns=10**12)
    pipeline, engine = _pipeline(SEED, clock, memo=True)
    flood = []
    for n in range(200):
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, n, 0, 64, 6, 0, 0xC6120000 + n, 0x0A000001)
        tcp = struct.pack("!HHIIBBHHH", 1024 + n, 22, n * 7919, 0, 0x50, 2, 64240, 0, 0)
        flood.append(QueuedPacket(n + 1, 1, ip + tcp, queue=LIVE_BASE + 3, indev=1))
    assert pipeline(flood) == [1] * 200
    assert pipeline.counters.remembered == 199
    table = engine.tables["SSH"]
    assert [view.addr for view in table] == [0xC6120000 + n for n in range(191, 200)]
    assert table.evictions == 191
