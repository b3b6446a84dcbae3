"""``recentd logs scan LOG...``: what the sshd parser sees in a log, per address and per event.

The adapter half of :mod:`recentd.logs`: it opens files (plain, gzip, or ``-`` for
stdin), decodes bytes, reads the clock once (for the year of classic syslog lines
when ``--year`` is not given) and writes the report.  Everything else is the pure
parser's.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import io
import json
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from recentd.cli.globals import add_global_options, config_path
from recentd.cli.process import collector_paused
from recentd.errors import SourceError
from recentd.logs import ClassicYear, RecordParser, SshdParser
from recentd.logs.events import AuthEvent, Outcome
from recentd.logs.records import count_lines
from recentd.logs.summary import Summary, event_record
from recentd.observation import Evidence, Observation

if TYPE_CHECKING:
    from recentd.logs.replay import BanRecord, LogReplay

DESCRIPTION = """\
Scan sshd (and dropbear) logs and show what recentd's parser makes of them: for
every address, the failed attempts it would count, the successful logins and the
probes (attributed lines that are never counted: "Invalid user", banner grabs,
PAM context).  The fail2ban-regex of recentd.

The format of every line is found by itself: classic syslog (/var/log/auth.log,
/var/log/secure), RFC 3339 stamps (rsyslog's high-precision format), RFC 5424,
`journalctl -o json` export lines, and bare messages (`journalctl -o cat`).
Files may be gzip-compressed (rotations); `-` reads standard input.

Counting, as the daemon does it: every "Failed <method> for ..." line is one
failure; a connection that ends before authentication with a user named and no
"Failed" line is one failure, at its closing line (or at "maximum authentication
attempts exceeded", which ends it); OpenSSH 9.8's srclimit_penalise lines count,
its "drop connection" lines do not; "Invalid user", PAM and "Received disconnect"
lines are context.  The address is only ever taken where
sshd writes it, so a user name such as "x from 192.0.2.1" blames no one.
"""

EPILOG = """\
examples:
  recentd logs scan /var/log/auth.log
  recentd logs scan /var/log/auth.log.2.gz /var/log/auth.log.1 /var/log/auth.log
  journalctl -u ssh -o json | recentd logs scan -
  recentd logs scan secure --year 2024 --events events.jsonl --top 0

Give rotated files oldest first: connections and the year carry on from one file
to the next.

classic syslog lines carry no year: --year names the year of the first one, and
a log that crosses New Year moves on to the next year by itself.  Without
--year, each line gets the most recent year that does not put it in the future.
Their times are local time (set TZ to read another zone's log).

--events writes one JSON object per event, in log order:
  {"line": 12, "addr": "203.0.113.5", "event": "failure", "ts": "1741944121.000000000",
   "ts_ns": 1741944121000000000, "user": "root", "category": "root",
   "kind": "password", "service": "sshd", "pid": 4242, "host": "web1"}
"line" is 1-based (a journal JSON line is one line); "event" is "failure",
"success" or "probe"; with several LOGs each object also has "file".

exit status: 0 scanned (whatever was found), 2 a LOG or OUT cannot be opened or
a compressed LOG is damaged (one line on stderr says which and where).
"""

#: Files at least this big get a progress bar (when stderr is a terminal).
PROGRESS_BYTES = 4 << 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="what the log parser sees (scan), and what the rules would have banned (replay)",
        description="Auth evidence from logs. Actions: scan, replay.",
    )
    actions = parser.add_subparsers(dest="logs_action", metavar="ACTION")
    parser.set_defaults(func=lambda _args: _usage(parser))
    scan = actions.add_parser(
        "scan",
        help="show the events and per-address counts the sshd parser finds in logs",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("logs", nargs="+", metavar="LOG", help="log file, .gz file, or - (stdin)")
    scan.add_argument(
        "--events", type=Path, metavar="OUT", help="write every event to OUT as JSON lines"
    )
    scan.add_argument("--year", type=_year, help="year of the first classic syslog line")
    scan.add_argument(
        "--top", type=int, default=20, metavar="N",
        help="addresses listed in the summary, most failures first (0: all; default 20)",
    )
    scan.set_defaults(func=run_scan)
    _register_replay(actions)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _year(text: str) -> int:
    if not text.isdigit() or not 1970 <= int(text) <= 9999:
        raise argparse.ArgumentTypeError(f"not a year: {text!r}")
    return int(text)


def run_scan(args: argparse.Namespace) -> int:
    for name in args.logs:
        problem = _unreadable(name)
        if problem:
            print(f"recentd logs scan: cannot read {name}: {problem}", file=sys.stderr)
            return 2
    records = RecordParser(ClassicYear(year=args.year, now=time.time_ns()))
    parser = SshdParser()
    summary = Summary()
    several = len(args.logs) > 1
    with ExitStack() as stack:
        try:
            out = stack.enter_context(args.events.open("w")) if args.events else None
        except OSError as exc:
            print(f"recentd logs scan: cannot write {args.events}: {exc.strerror}", file=sys.stderr)
            return 2
        sink = _sink(summary, out)
        try:
            for name in args.logs:
                for line, text in _lines(name):
                    summary.lines += 1
                    sink(parser.feed(records.parse(text, line)), name if several else None)
        except SourceError as exc:
            print(f"recentd logs scan: {exc}", file=sys.stderr)
            return 2
        sink(parser.close(), None)
    _print_summary(summary, args.top, args.logs)
    return 0


def _unreadable(name: str) -> str:
    if name == "-":
        return ""
    try:
        with Path(name).open("rb"):
            return ""
    except OSError as exc:
        return exc.strerror or str(exc)


def _sink(summary: Summary, out: IO[str] | None) -> Callable[[list[AuthEvent], str | None], None]:
    def take(events: list[AuthEvent], file: str | None) -> None:
        for event in events:
            summary.add(event)
            if out is not None:
                out.write(json.dumps(event_record(event, file)) + "\n")

    return take


def _lines(name: str, doing: str = "scanning") -> Iterator[tuple[int, str]]:
    """(1-based number, text) of every line of LOG ``name``.

    Bytes are decoded as UTF-8 with errors="replace": the text is only matched and
    reported, and U+FFFD can be part of no address, so invalid bytes in a user name
    can neither stop the scan nor move an attribution.  Only "\n" ends a line (a
    stray "\r" inside a message does not renumber the rest).
    """
    with ExitStack() as stack:
        raw, stream = _open(name, stack)
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
        progress = _progress(name, raw, stack, doing)
        number = 0
        try:
            for number, line in enumerate(text, 1):
                if progress is not None and not number & 0x3FFF:
                    progress()
                yield number, line.rstrip("\r\n")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise SourceError(f"damaged compressed data ({exc})", path=name,
                              position=number + 1) from exc
        finally:
            text.detach()


def _open(name: str, stack: ExitStack) -> tuple[IO[bytes], IO[bytes]]:
    """(the file as stored, its decompressed bytes)."""
    if name == "-":
        return sys.stdin.buffer, sys.stdin.buffer
    raw = stack.enter_context(Path(name).open("rb"))  # noqa: SIM115 (the stack closes it)
    compressed = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    if compressed:
        return raw, stack.enter_context(gzip.GzipFile(fileobj=raw))  # type: ignore[arg-type]
    return raw, raw


def _progress(
    name: str, raw: IO[bytes], stack: ExitStack, doing: str
) -> Callable[[], None] | None:
    """A progress bar over the file's stored bytes, for big files on a terminal."""
    if name == "-" or not sys.stderr.isatty():
        return None
    size = Path(name).stat().st_size
    if size < PROGRESS_BYTES:
        return None
    from rich.console import Console  # noqa: PLC0415 - only big files on a terminal need it
    from rich.progress import Progress  # noqa: PLC0415

    bar = stack.enter_context(Progress(console=Console(stderr=True), transient=True))
    task = bar.add_task(f"{doing} {Path(name).name}", total=size)
    return lambda: bar.update(task, completed=raw.tell())


def _print_summary(summary: Summary, top: int, names: list[str]) -> None:
    rows = summary.ranked()
    shown = rows if top <= 0 else rows[:top]
    if shown:
        print(f"{'ADDRESS':<39} {'FAILURES':>8} {'SUCCESSES':>9} {'PROBES':>6}  FIRST / LAST")
    for row in shown:
        counts = row.counts
        print(
            f"{row.address!s:<39} {counts[Outcome.FAILURE]:>8} {counts[Outcome.SUCCESS]:>9} "
            f"{counts[Outcome.PROBE]:>6}  {_when(row.first)} / {_when(row.last)}"
        )
    if len(rows) > len(shown):
        print(f"... and {len(rows) - len(shown)} more addresses (--top 0 lists all)")
    totals = summary.totals
    print(
        f"{summary.lines} lines ({', '.join(names)}): "
        f"{totals[Outcome.FAILURE]} failures, {totals[Outcome.SUCCESS]} successes, "
        f"{totals[Outcome.PROBE]} probes from {len(rows)} addresses"
    )


def _when(time_ns: int | None) -> str:
    if time_ns is None:
        return "-"
    return datetime.fromtimestamp(time_ns / 1e9).astimezone().isoformat(timespec="seconds")


# ---- logs replay ------------------------------------------------------------------------

REPLAY_DESCRIPTION = """\
Replay old logs through the whole pipeline in virtual time: who would have been
banned, when, and until when.

Each LOG is read with the parser and lists of the [[watch]] entries of --config
(their `source` is for `recentd run`): every counted failure is +ADDR on its list
at the line's own time, a success routed there is -ADDR; then every rule
`-m recent --rcheck|--update --seconds S [--hitcount H] -j DROP` on that list
(IPv4 events: the iptables rules, IPv6 events: the ip6tables rules) says whether it
now drops the address, exactly as the daemon's ban planner does live.  The stamp
is added before the rule is checked and the window is inclusive, as in the kernel,
so a ban names the line whose event made the rule match.  A list with --mask
bans the masked network (a CIDR).  The tables take the config's module
parameters (ip_list_tot, ip_pkt_list_tot) and hz.
"""

REPLAY_EPILOG = """\
examples:
  recentd logs replay /var/log/auth.log --config /etc/recentd/recentd.toml
  recentd logs replay auth.log.1 auth.log --config recentd.toml --rules rules.v4 \\
      --rules rules.v6 --bans bans.jsonl --year 2024

--bans writes one JSON object per ban, in time order:
  {"addr": "203.0.113.5", "ts": 1741944121.0, "line": 812, "until": 1741944721.004,
   "list": "SSH_AUTH", "rule": "-A INPUT ... -j DROP", "ts_ns": 1741944121000000000,
   "until_ns": 1741944721004000000, "extended": 3}
"ts" is the triggering line's time (epoch seconds; "ts_ns" exact), "line" its
1-based number, "until" when the rule stops dropping (moved on by later events:
"extended" counts them; "lifted_line" when a success removed the entry first);
with several LOGs each object also has "file".  OUT is always written.

classic syslog times are local time (TZ); --year is the year of the first line
(a log that crosses New Year moves on); without it, the most recent year that
puts no line in the future.  RFC 3339 offsets are honoured.

exit status: 0 replayed (whatever was banned), 2 a LOG, OUT, the config or a
rules file cannot be read or is invalid.
"""


def _register_replay(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = actions.add_parser(
        "replay",
        help="the whole pipeline over old logs: who would have been banned, when, until when",
        description=REPLAY_DESCRIPTION,
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("logs", nargs="+", metavar="LOG", help="log file, .gz file, or - (stdin)")
    add_global_options(replay)
    replay.add_argument("--rules", type=Path, action="append", metavar="RULES",
                        help="iptables rules file (repeatable; default: the config's rules)")
    replay.add_argument("--bans", type=Path, metavar="OUT",
                        help="write every ban to OUT as JSON lines")
    replay.add_argument("--year", type=_year, help="year of the first classic syslog line")
    replay.add_argument(
        "--report", type=Path, metavar="FILE.html",
        help="also write a self-contained HTML report with plots: failed attempts, the "
        "attempts a ban in force would have dropped, and bans over time for the top "
        "sources; attempts per source; the bans (needs the report extra)",
    )  # fmt: skip
    replay.add_argument("--top", type=int, default=10, metavar="N",
                        help="banned addresses listed in the summary (0: all; default 10)")
    replay.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """``recentd logs replay``: the adapter around :class:`recentd.logs.replay.LogReplay`."""
    from recentd.config import load_config  # noqa: PLC0415 - rule 2 of cli.main: start fast
    from recentd.errors import ConfigError  # noqa: PLC0415
    from recentd.logs.replay import LogReplay  # noqa: PLC0415
    from recentd.rules.parser import load_rule_files  # noqa: PLC0415

    config = load_config(config_path(args))
    if not config.watch:
        raise ConfigError("no [[watch]] table: nothing says which lists the events write",
                          key="watch", source=str(config_path(args) or "no --config"))
    paths = args.rules or list(config.rules)
    if not paths:
        raise ConfigError("no rules file: give --rules FILE or rules = in --config", key="rules")
    for name in args.logs:
        problem = _unreadable(name)
        if problem:
            print(f"recentd logs replay: cannot read {name}: {problem}", file=sys.stderr)
            return 2
    loaded = load_rule_files(paths)
    for notice in loaded.notices:
        print(f"recentd: {notice}", file=sys.stderr)
    records = RecordParser(ClassicYear(year=args.year, now=time.time_ns()))
    replay = LogReplay(loaded.ruleset, config.watch, records, config.module_params(), config.hz)
    if not replay.rules:
        print("recentd logs replay: warning: no rule bans by a list (-m recent --rcheck|"
              "--update --seconds S -j DROP): nobody can be banned", file=sys.stderr)
    with ExitStack() as stack:
        try:
            out = stack.enter_context(args.bans.open("w")) if args.bans else None
        except OSError as exc:
            print(f"recentd logs replay: cannot write {args.bans}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return 2
        failures: list[tuple[str, int]] = []
        if args.report:
            replay.on_observation = functools.partial(_note_failure, failures)
        try:
            bans = _replay_logs(replay, args.logs)
        except SourceError as exc:
            print(f"recentd logs replay: {exc}", file=sys.stderr)
            return 2
        if out is not None:
            out.writelines(json.dumps(ban.as_json()) + "\n" for ban in bans)
    _print_replay_summary(replay, bans, args.top, args.logs)
    if args.report:
        _write_report(args.report, replay, bans, failures, args.logs)
    return 0


def _note_failure(failures: list[tuple[str, int]], observation: Observation) -> None:
    if observation.evidence is Evidence.AUTH_FAILURE:
        failures.append((str(observation.address), observation.wall_ns))


def _write_report(path: Path, replay: LogReplay, bans: list[BanRecord],
                  failures: list[tuple[str, int]], names: list[str]) -> None:  # fmt: skip
    """The replay as one HTML page: an attempt is dropped when a ban of its address (by
    the same rules) was in force at its time."""
    from recentd.report import BanRow, ReportData, RuleCounter, TimelineBuilder  # noqa: PLC0415
    from recentd.report.html import write_report  # noqa: PLC0415 - matplotlib, on demand

    held: dict[str, list[BanRecord]] = {}
    for ban in bans:
        held.setdefault(ban.addr, []).append(ban)
    builder = TimelineBuilder()
    for addr, ts_ns in failures:
        builder.attempt(addr, ts_ns)
        if any(b.ts_ns < ts_ns < b.until_ns for b in held.get(addr, ())):
            builder.drop(addr, ts_ns)
    for ban in bans:
        builder.ban(ban.addr, ban.ts_ns)
    timeline, distribution = builder.build(top=5)
    per_rule = Counter(ban.rule for ban in bans)
    write_report(path, ReportData(
        title=f"recentd logs replay {', '.join(Path(name).name for name in names)}",
        subject=f"{replay.stats.lines} lines, {len(failures)} failed attempts, {len(bans)} bans",
        timeline=timeline, attempts_per_source=distribution,
        rules=tuple(RuleCounter(f"list {rule.planner.case.name}", rule.text, per_rule[rule.text])
                    for rule in replay.rules),
        bans=tuple(BanRow(ban.addr, ban.ts_ns, ban.until_ns,
                          f"{ban.list}: line {ban.line}{f' of {ban.file}' if ban.file else ''}")
                   for ban in bans),
    ))  # fmt: skip


def _replay_logs(replay: LogReplay, names: list[str]) -> list[BanRecord]:
    several = len(names) > 1
    with collector_paused():
        for name in names:
            replay.start_file(name if several else None)
            for first, text in _chunks(name, "replaying"):
                replay.feed_text(text, first)
    return replay.finish()


#: Bytes read at once by ``logs replay`` (the bulk path reads a chunk as one text).
CHUNK_BYTES = 1 << 20


def _chunks(name: str, doing: str) -> Iterator[tuple[int, str]]:
    """(number of the first line, text) of LOG ``name`` in chunks of whole lines, each
    line ended by ``\n``: the lines :func:`_lines` gives, decoded the same way (a chunk
    ends at a ``\n``, which no UTF-8 sequence holds, so decoding each chunk on its own
    gives the same text as decoding the stream)."""
    with ExitStack() as stack:
        raw, stream = _open(name, stack)
        progress = _progress(name, raw, stack, doing)
        number, rest = 1, b""
        try:
            while block := stream.read(CHUNK_BYTES):
                cut = block.rfind(b"\n") + 1
                if not cut:
                    rest += block
                    continue
                data, rest = rest + block[:cut], block[cut:]
                text = data.decode("utf-8", errors="replace")
                yield number, text
                number += count_lines(text)[0]
                if progress is not None:
                    progress()
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise SourceError(f"damaged compressed data ({exc})", path=name,
                              position=number) from exc
        if rest:
            yield number, rest.decode("utf-8", errors="replace") + "\n"


def _print_replay_summary(replay: LogReplay, bans: list[BanRecord], top: int,
                          names: list[str]) -> None:  # fmt: skip
    per_addr = Counter(ban.addr for ban in bans)
    ranked = per_addr.most_common(None if top <= 0 else top)
    first: dict[str, BanRecord] = {}
    for ban in bans:
        first.setdefault(ban.addr, ban)
    if ranked:
        print(f"{'BANNED':<43} {'BANS':>4}  FIRST BAN (LINE)")
    for addr, count in ranked:
        ban = first[addr]
        where = f"{ban.file}:{ban.line}" if ban.file else f"line {ban.line}"
        print(f"{addr:<43} {count:>4}  {_when(ban.ts_ns)} ({where})")
    if len(per_addr) > len(ranked):
        print(f"... and {len(per_addr) - len(ranked)} more addresses (--top 0 lists all)")
    stats = replay.stats
    kinds = ", ".join(f"{n} {outcome} {kind}"
                      for (outcome, kind), n in stats.events.most_common())  # fmt: skip
    print(f"{stats.lines} lines ({', '.join(names)}): {sum(stats.events.values())} events"
          f"{f' ({kinds})' if kinds else ''}")
    untimed = f"; {stats.untimed} events before any time, not applied" if stats.untimed else ""
    print(f"{len(bans)} bans of {len(per_addr)} addresses by {len(replay.rules)} rule(s)"
          f"{untimed}")
