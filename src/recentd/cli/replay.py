"""``recentd replay CAPTURE --rules FILE``: what would these rules do to this traffic?"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from rich.progress import Progress

from recentd import config as options
from recentd.cli.globals import add_global_options, config_path
from recentd.cli.process import collector_paused
from recentd.errors import ConfigError
from recentd.packets.capture import CapturedPacket, capture_packet_count
from recentd.recent import DEFAULT_HZ, RecentTables, render_listing
from recentd.replay import HOOKS, Replayer, ReplaySummary
from recentd.replay.summary import SOURCES_KEPT
from recentd.rules import Engine, render_list
from recentd.rules.parser import load_rule_files
from recentd.sources.capture import CaptureSource

DESCRIPTION = """\
Replay a capture (pcap or pcapng) through a rule set in virtual time: each
packet's timestamp is the clock, so a day of traffic replays in seconds and the
answer is what the kernel would have decided, packet by packet.
"""

EPILOG = """\
examples:
  recentd replay attack.pcap --rules rules.v4
  recentd replay day.pcapng --rules rules.txt --verdicts out.jsonl --tables-out tables/
  recentd replay gw.pcap --rules fw.rules --hook FORWARD --local 192.0.2.1
  recentd replay flood.pcap --config /etc/recentd/recentd.toml   # decide as `recentd run`

--config reads the file `recentd run` reads: its rules (unless --rules is given), hz
(unless --hz is) and the table parameters (ip_list_tot, ip_pkt_list_tot ...), so a
replay decides as the daemon would; other keys are checked and ignored.

The verdicts file has one JSON object per packet, in capture order:
  {"n": 1, "ts": "1700000000.000000000", "verdict": "ACCEPT", "hook": "INPUT", ...}
--tables-out writes one file per recent table, named like the table, in the
kernel's /proc/net/xt_recent/NAME format (stamps in ticks of the capture clock).

speed: without --verdicts, a classic pcap is read in columns and a flood's packets
(option-less IPv4 TCP/UDP like ones already decided) are decided without decoding
each one — the same answers, several times faster. --verdicts writes a JSON line
per packet, which costs more than deciding it.

memory: bounded whatever the number of sources. The totals are exact; per-source
counts are kept for the heaviest %(kept)d sources (Space-Saving heavy hitters, up to
twice as many at times): a listed source's counts are exact from its first listed
packet on, "+ up to M before" bounds what it may have sent before, and no source
left out sent more packets than the summary says. Under a flood of new sources
the connection table (262144 entries, early drop of the oldest unassured) and the
recent tables (--config's ip_list_tot) stay at their bounds, each packet costing
the same at the flood's end as at its start.

spoofed floods: the tables evict the least recently refreshed entry, as the kernel
does, and the default list holds 100 entries. A real attacker inside a flood of
spoofed sources is kept (and caught) only if ip_list_tot exceeds the spoofed
sources per second times the seconds between his attempts (about 250 bytes an
entry: 1,200,000 entries, 300 MB, hold 100k sources/s against 10 s pauses); set it
in --config. --rttl keeps forged packets from getting an innocent address banned,
not the attacker's entry from eviction (docs/deviations.md).

exit status: 0 replayed, 2 invalid rules or a damaged capture (the packets before
the damage are still processed and reported).
"""


EPILOG = EPILOG.replace("%(kept)d", str(SOURCES_KEPT))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a capture through a rule set in virtual time",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("capture", type=Path, help="pcap or pcapng file")
    parser.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="rule file: iptables/ip6tables command lines or iptables-save output "
        "(repeatable: a host keeps rules.v4 and rules.v6; default: --config's rules)",
    )
    parser.add_argument(
        "--family", type=int, choices=(4, 6), default=None,
        help="the rule files' family, where their names and contents do not say it",
    )  # fmt: skip
    add_global_options(parser, socket=False)
    parser.add_argument(
        "--hook", choices=HOOKS, default="INPUT", help="hook to evaluate at (default INPUT)"
    )
    parser.add_argument(
        "--local",
        action="append",
        default=[],
        metavar="ADDR",
        help="an address of the protected host (repeat); with it, only packets "
        "that would traverse --hook are evaluated",
    )
    parser.add_argument(
        "--verdicts", type=Path, metavar="OUT.jsonl", help="write every packet's verdict"
    )
    parser.add_argument(
        "--tables-out", type=Path, metavar="DIR", help="write the final recent tables"
    )
    parser.add_argument(
        "--hz", type=int, default=argparse.SUPPRESS,
        help=f"tick rate (default: --config's hz, else {DEFAULT_HZ}, like Debian)",
    )  # fmt: skip
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="sources listed in the summary"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--report", type=Path, metavar="FILE.html",
        help="also write a self-contained HTML report with plots (replays the capture "
        "once more, packet by packet; needs the report extra)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    local = [_address(text) for text in args.local] or None
    config = options.load_config(config_path(args), _overrides(args))
    if not config.rules:
        raise ConfigError("no rules file: give --rules FILE or rules = in --config", key="rules")
    ruleset = load_rule_files(config.rules, args.family).ruleset
    tables = RecentTables(config.module_params(), hz=config.hz)
    engine = Engine(ruleset, tables, hz=config.hz)
    replayer = Replayer(engine, hook=args.hook, hz=config.hz, local=local)
    with ExitStack() as stack:
        verdicts = stack.enter_context(args.verdicts.open("w")) if args.verdicts else None
        advance = _progress(args, stack)
        # --verdicts: every record as a CapturedPacket; else in columns where they apply
        # (the fast path), record by record elsewhere
        source = CaptureSource(args.capture, columns=verdicts is None)
        if verdicts is None:
            with collector_paused():
                replayer.replay(source.items(), progress=advance)
        else:
            _write_verdicts(replayer, _counted(source.records(), advance), verdicts)
        source.close()
    damage = source.damage
    if damage is not None and replayer.summary.packets == 0:
        print(f"recentd: {damage}", file=sys.stderr)  # nothing was read: nothing to report
        return 2
    if args.tables_out:
        _write_tables(tables, args.tables_out)
    _print_summary(replayer.summary, args.top, engine)
    if args.report and damage is None:
        from recentd.report.capture import capture_report  # noqa: PLC0415 - matplotlib
        from recentd.report.html import write_report  # noqa: PLC0415

        write_report(args.report, capture_report(
            args.capture, ruleset, hook=args.hook, hz=config.hz, params=config.module_params(),
            local=local, top=5))  # fmt: skip
    if damage is not None:
        print(f"recentd: {damage}", file=sys.stderr)
        print(
            f"recentd: {replayer.summary.packets} packets before the damage were replayed "
            "and are reported above",
            file=sys.stderr,
        )
        return 2
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The options of ``recentd run`` this command line gives (the daemon's own names)."""
    return {name: getattr(args, name) for name in ("rules", "hz") if hasattr(args, name)}


def _address(text: str) -> tuple[int, int]:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError("not an IP address", key="--local", value=text,
                          source="command line") from None
    return ip.version, int(ip)


def _progress(args: argparse.Namespace, stack: ExitStack) -> Callable[[int], None] | None:
    """A progress bar on a terminal: the callback to advance it by some records."""
    if args.no_progress or not sys.stderr.isatty():
        return None
    progress = stack.enter_context(Progress(transient=True))
    task = progress.add_task(
        f"replaying {args.capture.name}", total=capture_packet_count(args.capture)
    )
    return lambda done: progress.advance(task, done)


def _counted(packets: Iterator[CapturedPacket],
             advance: Callable[[int], None] | None) -> Iterator[CapturedPacket]:
    if advance is None:
        yield from packets
        return
    for index, record in enumerate(packets, 1):
        if index % 4096 == 0:
            advance(4096)
        yield record


def _write_verdicts(replayer: Replayer, packets: Iterator[CapturedPacket], verdicts: IO[str]
                    ) -> None:
    for result in replayer.run(packets):
        verdicts.write(json.dumps(result.as_json(), separators=(",", ":")) + "\n")


def _write_tables(tables: RecentTables, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for table in tables:
        (directory / table.name).write_text(render_listing(table))


def _print_summary(summary: ReplaySummary, top: int, engine: Engine) -> None:
    verdicts = ", ".join(f"{count} {name}" for name, count in sorted(summary.verdicts.items()))
    print(
        f"{summary.packets} packets: {verdicts or 'none'}; {summary.evaluated} evaluated, "
        f"{summary.undecodable} not IP or undecodable"
        + (f"; {summary.remembered} decided from remembered decisions" if summary.remembered
           else "")
    )
    ranked = summary.by_source()
    if ranked:
        print(f"\n{'source':<40} {'packets':>9} {'dropped':>9}  first drop")
        for source, stats in ranked[:top]:
            first = (
                "-"
                if stats.first_drop_ns is None
                else (f"{stats.first_drop_ns // 10**9}.{stats.first_drop_ns % 10**9:09d}")
            )
            before = f"  (+ up to {stats.missed} before)" if stats.missed else ""
            print(f"{source:<40} {stats.packets:>9} {stats.dropped:>9}  {first}{before}")
        if len(ranked) > top:
            print(f"... and {len(ranked) - top} more sources")
        if summary.floor:
            print(f"({summary.admitted} sources admitted in all; counts kept for the "
                  f"heaviest {summary.capacity}: none left out sent more than "
                  f"{summary.floor} packets)")
    print("\nrule counters (iptables -L -n -v):")
    for table in engine.snapshot().tables:
        family = "ip6tables" if table.family == 6 else "iptables"
        print(f"\n# {family} -t {table.name}")
        print(render_list(table), end="")
