"""recentd against the real kernel: the same packets, the same verdicts, the same tables.

For each generated scenario (see scenarios.py) the real kernel — xt_recent,
xt_limit and conntrack, loaded through iptables-legacy in a private namespace —
decides a stream of crafted packets while tcpdump captures them. The capture is
then replayed through recentd with the same rule file, and every packet's verdict
and the final ``/proc/net/xt_recent`` tables must agree.

Jiffies and capture timestamps are two clocks a fraction of a tick apart, so a
packet whose decision rests on an age within three ticks of a ``--seconds`` window
(or a limit bucket within three ticks of a token) could go either way in either
implementation: the harness says so and leaves it out explicitly (counted in the
summary), together with the rest of that source's packets if the two disagreed on
it, since their tables then legitimately diverge.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

from recentd.packets.capture import read_capture
from recentd.packets.packet import Packet, ip_of
from recentd.recent import RecentTables, ns_to_ticks, render_listing
from recentd.replay import Replayer
from recentd.rules import Engine, parse_ruleset_text

from .conftest import STATS
from .kernel import SERVER4, SERVER6, KernelBed, parse_proc_listing
from .scenarios import RULESETS, Scenario, plan, save_text, scenarios

pytestmark = pytest.mark.netns
HZ = 250
MARGIN = 3  # ticks
# A capture timestamp is taken when the packet is queued (netif_rx); netfilter runs when
# the softirq processes the queue, which a loaded machine can delay by tens of ms. Stamp
# ages are compared with that much slack; the count, order and TTLs must match exactly.
AGE_SLACK = 8  # ticks
LIMIT_COST, LIMIT_CPJ = 16000, 128  # --limit 2/sec at HZ=250
LIMIT_MARGIN = 5  # ticks: one bucket for all sources, so softirq delay counts in full


@dataclass
class Outcome:
    compared: int = 0
    boundary: int = 0
    consequences: int = 0
    mismatches: list[str] = field(default_factory=list)
    tainted: set[str] = field(default_factory=set)


def packet_ids(capture: Path) -> dict[int, int]:
    """Capture packet number -> id, for the crafted packets (TCP seq, UDP payload)."""
    ids = {}
    with capture.open("rb") as stream:
        for n, (_, buf) in enumerate(dpkt.pcap.Reader(stream), start=1):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            l4 = ip.data
            if (
                isinstance(l4, dpkt.tcp.TCP)
                and l4.flags & dpkt.tcp.TH_SYN
                and not l4.flags & dpkt.tcp.TH_ACK
            ):
                ids[n] = l4.seq
            elif isinstance(l4, dpkt.udp.UDP) and len(l4.data) >= 8:
                ids[n] = int.from_bytes(l4.data[:8], "big")
    return ids


def windows(ruleset: str) -> dict[str, tuple[bool, list[tuple[int, int]]]]:
    """Table name -> (keyed by destination?, [(window in ticks, hitcount)] of its rules)."""
    found: dict[str, tuple[bool, list[tuple[int, int]]]] = {}
    for line in RULESETS[ruleset]:
        seconds = re.search(r"--seconds (\d+)", line)
        name = re.search(r"--name (\S+)", line)
        hitcount = re.search(r"--hitcount (\d+)", line)
        if seconds and name:
            _, rules = found.setdefault(name.group(1), ("--rdest" in line, []))
            rules.append((int(seconds.group(1)) * HZ, int(hitcount.group(1)) if hitcount else 0))
    return found


def near_window(tables: RecentTables, ruleset: str, packet: Packet, now: int) -> bool:
    """Whether some rule's decision would change if the window were MARGIN ticks
    shorter or longer: then the two clocks' phase can decide it."""
    for name, (by_dest, rules) in windows(ruleset).items():
        table = tables.get(name)
        address = packet.dst if by_dest else packet.src
        entry = table.get(packet.family, address) if table else None
        if entry is None:
            continue
        ages = [now - stamp for stamp in entry.stamps]
        for span, hitcount in rules:
            needed = max(hitcount, 1)
            short = sum(age <= span - MARGIN for age in ages) >= needed
            long = sum(age <= span + MARGIN for age in ages) >= needed
            if short != long:
                return True
    return False


class LimitShadow:
    """The kernel's token bucket for `--limit 2/sec --limit-burst 3`, to spot boundaries.

    A limit bucket belongs to one rule instance: the iptables rule and the ip6tables
    rule each have their own, so there is one shadow per family.
    """

    def __init__(self) -> None:
        self.credit = self.cap = 3 * LIMIT_COST
        self.prev: int | None = None

    def near_boundary(self, now: int) -> tuple[bool, bool]:
        """(is this packet's decision within LIMIT_MARGIN ticks of the other answer,
        has the bucket provably refilled to its cap in both implementations)."""
        gap = 0 if self.prev is None else now - self.prev
        self.prev = now
        credit = min(self.cap, self.credit + gap * LIMIT_CPJ)
        near = credit < self.cap and abs(credit - LIMIT_COST) <= LIMIT_MARGIN * LIMIT_CPJ
        self.credit = credit - LIMIT_COST if credit >= LIMIT_COST else credit
        # After a gap long enough to fill an empty bucket (plus the clocks' slack), both
        # buckets are at the cap whatever happened before: they agree again.
        refilled = gap * LIMIT_CPJ >= self.cap + LIMIT_MARGIN * LIMIT_CPJ
        return near, refilled


def replay_and_compare(
    scenario: Scenario, kernel_accepted: set[int], capture: Path
) -> tuple[Outcome, RecentTables]:
    text = save_text(scenario.ruleset, 4) + save_text(scenario.ruleset, 6)
    tables = RecentTables(hz=HZ)
    engine = Engine(parse_ruleset_text(text, source=f"{scenario.name}.rules").ruleset, tables, hz=HZ)
    local = [(4, int(ipaddress.ip_address(SERVER4))), (6, int(ipaddress.ip_address(SERVER6)))]
    replayer = Replayer(engine, hook="INPUT", hz=HZ, local=local)
    ids = packet_ids(capture)
    shadows = {4: LimitShadow(), 6: LimitShadow()} if scenario.ruleset == "limit" else None
    keyed_by_dest = any(by_dest for by_dest, _ in windows(scenario.ruleset).values())
    outcome = Outcome()
    for record in read_capture(capture):
        packet = record.packet
        ident = ids.get(record.n)
        boundary = False
        if packet is not None and ident is not None:
            now = ns_to_ticks(record.ts_ns, HZ)
            boundary = near_window(tables, scenario.ruleset, packet, now)
            if shadows is not None:
                near, refilled = shadows[packet.family].near_boundary(now)
                boundary |= near
                if refilled:
                    outcome.tainted.discard(f"the IPv{packet.family} limit bucket")
        result = replayer.feed(record)
        if ident is None or packet is None or result.hook is None:
            continue
        source = str(ip_of(packet.family, packet.src))
        # The addresses whose table entries this packet's fate can change: the source,
        # and the destination too where a table is keyed by it (--rdest).
        keys = {source} | ({str(ip_of(packet.family, packet.dst))} if keyed_by_dest else set())
        if shadows is not None:
            keys.add(f"the IPv{packet.family} limit bucket")  # shared by every source
        ours = result.verdict == "ACCEPT"
        theirs = ident in kernel_accepted
        if keys & outcome.tainted:
            outcome.consequences += 1
        elif boundary:
            outcome.boundary += 1
            if ours != theirs:
                outcome.tainted |= keys
        else:
            outcome.compared += 1
            if ours != theirs:
                outcome.mismatches.append(
                    f"packet {record.n} (id {ident}) from {source}: kernel "
                    f"{'ACCEPT' if theirs else 'DROP'}, recentd {result.verdict}"
                )
    return outcome, tables


def compare_tables(
    kernel_tables: dict[str, str],
    tables: RecentTables,
    jiffies: int,
    realtime_ns: int,
    tainted: set[str],
) -> list[str]:
    problems = []
    our_now = ns_to_ticks(realtime_ns, HZ)
    for name, listing in kernel_tables.items():
        theirs = parse_proc_listing(listing)
        table = tables.get(name)
        ours = parse_proc_listing(render_listing(table)) if table else {}
        for address in sorted(set(theirs) | set(ours)):
            plain = str(ipaddress.ip_address(address))
            if plain in tainted:
                continue
            if address not in theirs or address not in ours:
                problems.append(
                    f"{name}: {address} only in {'recentd' if address in ours else 'the kernel'}"
                )
                continue
            (k_ttl, _, k_index, k_stamps), (o_ttl, _, o_index, o_stamps) = (
                theirs[address],
                ours[address],
            )
            if (k_ttl, k_index, len(k_stamps)) != (o_ttl, o_index, len(o_stamps)):
                problems.append(
                    f"{name}: {address} kernel ttl/oldest_pkt/stamps "
                    f"{k_ttl}/{k_index}/{len(k_stamps)}, recentd {o_ttl}/{o_index}/{len(o_stamps)}"
                )
                continue
            for k, o in zip(k_stamps, o_stamps, strict=True):
                if abs((jiffies - k) - (our_now - o)) > AGE_SLACK:
                    problems.append(
                        f"{name}: {address} stamp ages differ: kernel {jiffies - k}, recentd {our_now - o}"
                    )
                    break
    return problems


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.name)
def test_same_verdicts_and_tables_as_the_kernel(testbed: KernelBed, scenario: Scenario) -> None:
    packets = plan(scenario)
    run = testbed.run(
        save_text(scenario.ruleset, 4),
        save_text(scenario.ruleset, 6),
        [(delay, packet) for delay, packet, _ in packets],
        scenario.name,
    )
    outcome, tables = replay_and_compare(scenario, run.accepted, run.capture)
    table_problems = compare_tables(
        run.tables, tables, run.jiffies, run.realtime_ns, outcome.tainted
    )
    STATS["scenarios"] = int(STATS.get("scenarios", 0)) + 1  # type: ignore[call-overload]
    STATS["packets_compared"] = int(STATS.get("packets_compared", 0)) + outcome.compared  # type: ignore[call-overload]
    STATS["left_out_boundary"] = int(STATS.get("left_out_boundary", 0)) + outcome.boundary  # type: ignore[call-overload]
    STATS["left_out_after_boundary"] = (
        int(STATS.get("left_out_after_boundary", 0)) + outcome.consequences
    )  # type: ignore[call-overload]
    rulesets = set(STATS.get("rulesets", set()))  # type: ignore[call-overload]
    STATS["rulesets"] = rulesets | {scenario.ruleset}
    # Most packets must be compared, or the scenario proves little. Not "nearly all": a
    # boundary packet the two clocks decide differently leaves the rest of its source out
    # (a fifth of the run where there are 5 sources), and that is timing, not a verdict.
    assert outcome.compared >= 0.6 * len(packets), (outcome, len(packets))
    assert outcome.mismatches == [], "\n".join(outcome.mismatches[:20])
    assert table_problems == [], "\n".join(table_problems[:20])
