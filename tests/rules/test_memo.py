"""Remembered decisions (rules.memo) change nothing: the same rules and traffic give the
same decisions, counters and tables with the memo as without it.

Random rule sets are drawn from lines that cover every kind of part the memo must
respect — `recent` with every command and option (reads, writes, --reap, --rttl,
--rdest, `!`), limit and hashlimit (state of their own), LOG (events), MARK in
mangle (marks), REJECT, jumps, gotos, RETURN, policies — and random traffic from
a few sources of both families with clock steps of 0 to ~2 s (sometimes back in
time), interleaved with /proc writes (``+addr``, ``-addr``, ``/``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, Packet
from recentd.recent import RecentTables
from recentd.rules import CtState, Engine, Hook, parse_ruleset_text
from tests.rules.transcript import addr

FILTER_LINES = [
    "-p tcp --dport 22 -m state --state NEW -m recent --set --name A",
    "-p tcp --dport 22 -m recent --rcheck --seconds 2 --hitcount 3 --name A -j DROP",
    "-m recent --update --seconds 1 --hitcount 2 --name A -j DROP",
    "-m recent --rcheck --seconds 3 --name A --rttl -j DROP",
    "-m recent ! --rcheck --seconds 2 --hitcount 2 --name A -j LOG",
    "-m recent ! --rcheck --seconds 1 --hitcount 2 --name A -j DROP",
    "-m recent --remove --name A",
    "-m recent --rcheck --seconds 2 --reap --name A -j DROP",
    "-m recent --rcheck --rdest --name B -j DROP",
    "-m recent --set --rdest --name B",
    "-m recent --rcheck --hitcount 2 --name A -j REJECT",
    "-m limit --limit 5/sec --limit-burst 2 -j ACCEPT",
    "-m hashlimit --hashlimit-upto 3/sec --hashlimit-mode srcip --hashlimit-name H -j ACCEPT",
    "-p tcp --dport 80 -j ACCEPT",
    "-p tcp -m multiport --dports 22,80 -m recent --rcheck --seconds 1 --name A -j DROP",
    "-m mark --mark 2 -j DROP",
    "-p udp -j DROP",
    "-m state --state ESTABLISHED -j ACCEPT",
    "-p tcp --syn -m recent --update --seconds 2 --name A",
    "-j X",
    "-g X",
]
USER_LINES = [line for line in FILTER_LINES if line not in ("-j X", "-g X")] + ["-j RETURN"]
MANGLE_LINES = [
    "-m recent --rcheck --seconds 1 --hitcount 2 --name A -j MARK --set-mark 2",
    "-p tcp --dport 80 -j MARK --set-mark 0",
]
SOURCES = ["10.9.0.1", "10.9.0.2", "fd09::1"]
HOOKS = [Hook.INPUT, Hook.INPUT, Hook.INPUT, Hook.FORWARD, Hook.OUTPUT]


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for program in ("iptables", "ip6tables"):
        lines.append(f"{program} -N X")
        policy = draw(st.sampled_from(["ACCEPT", "DROP"]))
        lines.append(f"{program} -P INPUT {policy}")
        for line in draw(st.lists(st.sampled_from(FILTER_LINES), min_size=1, max_size=6)):
            lines.append(f"{program} -A INPUT {line}")
        for line in draw(st.lists(st.sampled_from(USER_LINES), max_size=4)):
            lines.append(f"{program} -A X {line}")
        for line in draw(st.lists(st.sampled_from(MANGLE_LINES), max_size=2)):
            lines.append(f"{program} -t mangle -A PREROUTING {line}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Send:
    step: int
    source: int
    dport: int
    sport: int
    ttl: int
    mark: int
    established: bool
    udp: bool
    hook: Hook


@dataclass(frozen=True)
class Write:
    step: int
    command: str  # "+", "-" or "/"
    source: int


def _traffic(rng: random.Random, count: int) -> list[Send | Write]:
    """Bursts from few sources (so that packets alike meet), clock steps mostly within
    a tick or a window, sometimes past one or back in time, and some /proc writes."""
    events: list[Send | Write] = []
    for _ in range(count):
        step = rng.choice([0, 0, 1, 2, rng.randint(0, 300), rng.randint(200, 900), -rng.randint(1, 600)])
        if rng.random() < 0.05:
            events.append(Write(step, rng.choice("+-/"), rng.randrange(len(SOURCES))))
            continue
        events.append(Send(step, rng.randrange(len(SOURCES)), rng.choice([22, 22, 80]),
                           rng.choice([1024, 1025]), rng.choice([64, 64, 63]),
                           rng.choice([0, 0, 0, 2]), rng.random() < 0.2, rng.random() < 0.05,
                           rng.choice(HOOKS)))
    return events


def _packet(event: Send) -> Packet:
    text = SOURCES[event.source]
    family = 6 if ":" in text else 4
    dst = addr("fd09::ff" if family == 6 else "10.9.0.255")
    proto = IPPROTO_UDP if event.udp else IPPROTO_TCP
    return Packet(family, addr(text), dst, event.ttl, proto, 60, sport=event.sport,
                  dport=event.dport, tcp_flags=-1 if event.udp else TCP_SYN, mark=event.mark,
                  iif="eth0")


def _proc_write(tables: RecentTables, event: Write, now: int) -> None:
    table = tables.get("A")
    if table is None:
        return
    text = SOURCES[event.source]
    family = 6 if ":" in text else 4
    if event.command == "+":
        table.add(family, addr(text), now)
    elif event.command == "-":
        table.remove(family, addr(text))
    else:
        table.flush()


def _tables(tables: RecentTables) -> dict[str, list[object]]:
    return {table.name: list(table) for table in tables}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), seed=st.integers(0, 2**32 - 1))
def test_remembered_decisions_are_the_decisions(rules: str, seed: int) -> None:
    events = _traffic(random.Random(seed), 300)
    ruleset = parse_ruleset_text(rules, source="memo").ruleset
    plain_tables, memo_tables = RecentTables(), RecentTables()
    plain = Engine(ruleset, plain_tables, memo=False)
    remembering = Engine(ruleset, memo_tables)
    now = 1_000
    for event in events:
        now += event.step
        if isinstance(event, Write):
            _proc_write(plain_tables, event, now)
            _proc_write(memo_tables, event, now)
            continue
        packet = _packet(event)
        state = CtState.ESTABLISHED if event.established else CtState.NEW
        expected = plain.evaluate(packet, event.hook, now, ctstate=state)
        assert remembering.evaluate(packet, event.hook, now, ctstate=state) == expected
    assert remembering.snapshot() == plain.snapshot()
    assert _tables(memo_tables) == _tables(plain_tables)


def test_a_flood_over_its_limit_is_decided_from_memory() -> None:
    """The seed recipe's shape: after the 4th SYN within the window the source is
    dropped by an --rcheck that changes nothing, so its later packets are remembered —
    until the window lets the 4th newest stamp go (then the rules run again)."""
    rules = (
        "iptables -A INPUT -p tcp --dport 22 -m recent --rcheck --seconds 60 --hitcount 4"
        " --name SSH -j DROP\n"
        "iptables -A INPUT -p tcp --dport 22 -m recent --set --name SSH\n"
    )
    engine = Engine(parse_ruleset_text(rules, source="memo").ruleset)
    attacker = Packet(4, addr("10.9.0.7"), addr("10.9.0.255"), 64, IPPROTO_TCP, 60,
                      sport=1024, dport=22, tcp_flags=TCP_SYN)
    verdicts = [engine.evaluate(attacker._replace(sport=1024 + n), Hook.INPUT, 100 + n).verdict.name
                for n in range(10)]
    assert verdicts == ["ACCEPT"] * 4 + ["DROP"] * 6
    remembered = engine._memo
    assert remembered is not None and len(remembered) == 1
    (entry,) = remembered.values()
    # Stamps at ticks 100..103; the first (oldest) of the 4 leaves the 60 s window
    # after tick 100 + 60 * 250: the decision holds up to there.
    assert (entry.since, entry.until) == (104, 100 + 60 * 250)
    assert engine.evaluate(attacker, Hook.INPUT, 100 + 60 * 250 + 1).verdict.name == "ACCEPT"
    counts = [(rule.packets, rule.bytes) for rule in engine.snapshot().table(4, "filter")
              .chain("INPUT").rules]  # type: ignore[union-attr]
    assert counts == [(6, 360), (5, 300)]


def test_a_decision_remembered_later_does_not_serve_an_earlier_time() -> None:
    """Captures can step back in time; going back brings stamps into the window."""
    rules = (
        "iptables -A INPUT -p tcp --dport 80 -m recent --rcheck --seconds 1 --hitcount 3"
        " --name A -j DROP\n"
        "iptables -A INPUT -p tcp --dport 22 -m recent --set --name A\n"
    )
    engine = Engine(parse_ruleset_text(rules, source="memo").ruleset)
    ssh = Packet(4, addr("10.9.0.7"), addr("10.9.0.255"), 64, IPPROTO_TCP, 60, sport=1024,
                 dport=22, tcp_flags=TCP_SYN)
    web = ssh._replace(dport=80)
    transcript = [(100, ssh, "ACCEPT"), (101, ssh, "ACCEPT"), (102, ssh, "ACCEPT"),
                  (400, web, "ACCEPT"),  # 1 s = 250 ticks: the stamps are out of the window
                  (300, web, "DROP")]    # back in time: all three are in it again
    assert [engine.evaluate(packet, Hook.INPUT, now).verdict.name
            for now, packet, _ in transcript] == [verdict for _, _, verdict in transcript]
