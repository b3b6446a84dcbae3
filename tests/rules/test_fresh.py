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
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, Packet
from recentd.recent import ModuleParams, RecentTables
from recentd.rules import CtState, Engine, Hook, parse_ruleset_text
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
    now, decisions = 1_000, []
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
