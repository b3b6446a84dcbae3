"""A capture's report: the packets replayed once more, one by one, into a
:class:`~recentd.report.model.ReportData`.

The report needs each packet's time and verdict, which the column fast path of
``recentd replay`` does not keep; so ``--report`` costs one more replay of the capture
(per packet), with fresh tables: the same deterministic answers as the summary's.

A *ban* here is a source the rules dropped: from its first dropped packet until its last
one; an *attempt* is a packet of a new connection (conntrack state NEW).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from recentd.packets.capture import read_capture
from recentd.recent import ModuleParams, RecentTables
from recentd.replay import Replayer
from recentd.report.model import BanRow, ReportData, RuleCounter, TimelineBuilder
from recentd.rules import Engine, Ruleset
from recentd.rules.model import CtState
from recentd.rules.render import rule_spec


@dataclass
class _Dropped:
    first_ns: int
    last_ns: int
    dropped: int = 0


def capture_report(capture: Path, ruleset: Ruleset, *, hook: str = "INPUT", hz: int = 100,
                   params: ModuleParams | None = None,
                   local: Iterable[tuple[int, int]] | None = None, top: int = 5) -> ReportData:
    """Replay ``capture`` through ``ruleset`` packet by packet, with the tables ``recentd
    replay`` made (``params``, ``hz``), and gather the report.

    Raises:
        CaptureError: as ``recentd replay`` (the caller reports it).
    """
    tables = RecentTables(params, hz=hz)
    engine = Engine(ruleset, tables, hz=hz)
    replayer = Replayer(engine, hook=hook, hz=hz, local=local)
    builder = TimelineBuilder()
    dropped: dict[str, _Dropped] = {}
    packets: dict[str, int] = {}
    for result in replayer.run(read_capture(capture)):
        packet = result.packet
        if packet is None or result.hook is None:
            continue
        source = str(ipaddress.ip_address(packet.src) if packet.family == 4
                     else ipaddress.IPv6Address(packet.src))  # fmt: skip
        packets[source] = packets.get(source, 0) + 1
        if result.ctstate is CtState.NEW:
            builder.attempt(source, result.ts_ns)
        if result.verdict != "ACCEPT":
            builder.drop(source, result.ts_ns)
            seen = dropped.get(source)
            if seen is None:
                seen = dropped[source] = _Dropped(result.ts_ns, result.ts_ns)
                builder.ban(source, result.ts_ns)
            seen.last_ns, seen.dropped = result.ts_ns, seen.dropped + 1
    timeline, distribution = builder.build(top=top)
    summary = replayer.summary
    verdicts = ", ".join(f"{n} {name}" for name, n in sorted(summary.verdicts.items()))
    bans = tuple(BanRow(who, d.first_ns, d.last_ns,
                        f"{d.dropped} of {packets[who]} packets dropped by the rules")
                 for who, d in sorted(dropped.items(), key=lambda item: item[1].first_ns))
    return ReportData(
        title=f"recentd replay {capture.name}",
        subject=f"rules {', '.join(sorted({t.source for t in ruleset.tables}))}; "
                f"{summary.packets} packets: {verdicts or 'none'}; "
                f"{len(packets)} sources, {len(dropped)} dropped",
        timeline=timeline, attempts_per_source=distribution,
        rules=_rule_counters(engine), bans=bans,
    )  # fmt: skip


def _rule_counters(engine: Engine) -> tuple[RuleCounter, ...]:
    rows = []
    for table in engine.snapshot().tables:
        family = "ip6tables" if table.family == 6 else "iptables"
        for chain in table.chains:
            for index, rule in enumerate(chain.rules, 1):
                rows.append(RuleCounter(f"{family} {table.name} {chain.name} #{index}",
                                        rule_spec(rule, table.family), rule.packets,
                                        rule.bytes))  # fmt: skip
    return tuple(rows)
