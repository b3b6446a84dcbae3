"""``recentd ctl``: talk to a running daemon over its control socket.

This module is the only place control replies are formatted; the daemon sends
data. ``show`` prints exactly what ``cat /proc/net/xt_recent/NAME`` prints.

Exit statuses: 0 success; 1 the daemon is unreachable or failed; 2 the daemon
refused the request (a bad write line, no such table, permission denied).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import re
import sys
from typing import Any, TypeVar

from recentd.cli.globals import add_global_options, socket_path
from recentd.control.client import ControlClient
from recentd.control.protocol import (
    Allow,
    AllowResult,
    ErrorReply,
    ListPolicyResult,
    ListTables,
    Reply,
    Request,
    SetListPolicy,
    ShowTable,
    Status,
    StatusReply,
    TableList,
    TableListing,
    Unban,
    UnbanResult,
    Why,
    WhyResult,
    WriteResult,
    WriteTable,
)
from recentd.errors import BackendError

_R = TypeVar("_R")

EPILOG = """\
examples:
  recentd ctl list                         # every table, its size and file mode
  recentd ctl show SSH                     # like: cat /proc/net/xt_recent/SSH
  recentd ctl show SSH --json              # the same entries as JSON records, for scripts
  recentd --socket /tmp/r.sock ctl status  # another daemon (or: RECENTD_SOCKET=/tmp/r.sock)
  recentd ctl write SSH +192.0.2.7         # like: echo +192.0.2.7 > /proc/net/xt_recent/SSH
  recentd ctl write SSH -192.0.2.7         # remove one address
  recentd ctl write SSH /                  # flush the table
  recentd ctl status                       # daemon health, adapters, state files
  recentd ctl unban 192.0.2.7              # out of every list and every kernel set
  recentd ctl why 192.0.2.7                # the evidence that put it there, and until when
  recentd ctl allow 192.0.2.0/24 --for 1h  # never ban these for an hour (bans withdrawn)
  recentd ctl write --force SSH +192.0.2.7 # add an allowed address all the same
  recentd ctl set SSH purge_after=7d cut_connections=true   # one list's settings, now

exit status: 0 success, 1 daemon unreachable or failed, 2 request refused.
"""


def register(subparsers: Any) -> None:
    """Add ``ctl`` and its commands to the ``recentd`` parser."""
    parser = subparsers.add_parser(
        "ctl",
        help="inspect and change a running daemon's tables",
        description="Talk to a running recentd over its control socket.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, config=False)
    commands = parser.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    _command(commands, "list", "list the tables", _list)
    show = _command(commands, "show", "print a table's entries, as /proc does", _show)
    show.add_argument("name", metavar="NAME", help="the table")
    show.add_argument("--json", action="store_true",
                      help="one JSON document: the table, and per entry its address, ttl, "
                      "hits, and last seen and every stamp as an age in seconds and a UTC time")
    write = _command(commands, "write", "write one /proc command to a table", _write)
    write.add_argument("name", metavar="NAME", help="the table")
    write.add_argument("line", metavar="LINE",
                       help="+ADDR, -ADDR or / (a line starting with - is read as LINE, "
                       "as is anything after --)")  # fmt: skip
    # "-192.0.2.7" and "-fd77::1" must read as LINE, not as unknown options: argparse
    # already does that for what looks like a negative number, so widen that pattern to
    # what a "-ADDR" line starts with (the write command has no option that could clash).
    write._negative_number_matcher = re.compile(r"^-[0-9a-fA-F:.]")
    write.add_argument("--force", action="store_true",
                       help="add an allowed address all the same (the kernel still never "
                       "bans it)")  # fmt: skip
    _command(commands, "status", "show the daemon's health", _status)
    unban = _command(commands, "unban", "take an address out of every list and kernel set",
                     _unban)  # fmt: skip
    unban.add_argument("addr", metavar="ADDR", help="the address")
    why = _command(commands, "why", "show the evidence that put an address where it is", _why)
    why.add_argument("addr", metavar="ADDR", help="the address")
    allow = _command(commands, "allow", "never ban an address or network", _allow)
    allow.add_argument("network", metavar="ADDR|NET", help="an address or a network")
    allow.add_argument("--for", dest="duration", default="0", metavar="DURATION",
                       help="for how long: 45s, 30m, 12h, 7d, 1w (default: until the "
                       "daemon stops)")  # fmt: skip
    setter = _command(commands, "set", "change a list's settings at run time ([lists.NAME])",
                      _set)  # fmt: skip
    setter.add_argument("name", metavar="NAME", help="the list")
    setter.add_argument("changes", metavar="KEY=VALUE", nargs="+",
                        help="as in the config file: purge_after=7d ban_multiplier=2 "
                        "ban_max=1w cut_connections=true login=- on_ban_of='[\"SSH\"]' "
                        "ip_list_tot=5000")  # fmt: skip
    for parser in (unban, why, allow, setter):
        parser.add_argument("--json", action="store_true", help="one JSON document")


def _command(commands: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_global_options(parser, config=False)
    parser.set_defaults(func=func)
    return parser


def _call(args: argparse.Namespace, request: Request) -> Reply:
    with ControlClient(socket_path(args)) as client:
        return client.call(request)


def _refused(args: argparse.Namespace, what: str, reply: ErrorReply) -> int:
    errno_part = f"{reply.errno} ({reply.message})" if reply.errno else reply.message
    print(f"recentd: {what} refused: {errno_part}", file=sys.stderr)
    return 2


def _unexpected(reply: Reply) -> BackendError:
    return BackendError(f"unexpected reply {type(reply).__name__}", backend="daemon")


def _ask(args: argparse.Namespace, request: Request, expected: type[_R], what: str) -> _R | int:
    """Send ``request``; the reply if it is an ``expected``, else the exit status of a
    refusal (printed). Any other reply is a protocol fault of the daemon."""
    reply = _call(args, request)
    if isinstance(reply, ErrorReply):
        return _refused(args, what, reply)
    if not isinstance(reply, expected):
        raise _unexpected(reply)
    return reply


def _list(args: argparse.Namespace) -> int:
    reply = _ask(args, ListTables(), TableList, "list")
    if isinstance(reply, int):
        return reply
    print(f"{'NAME':<20} {'ENTRIES':>8} {'MAX':>8} {'RING':>5}  MODE  UID   GID")
    for t in reply.tables:
        print(
            f"{t.name:<20} {t.entries:>8} {t.ip_list_tot:>8} {t.ring:>5}  "
            f"{t.ip_list_perms:04o}  {t.ip_list_uid:<5} {t.ip_list_gid}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    reply = _ask(args, ShowTable(args.name), TableListing, f"{args.name}: show")
    if isinstance(reply, int):
        return reply
    if args.json:
        print(json.dumps(listing_record(reply), indent=2))
        return 0
    # The core is imported only to print a listing: `ctl status` must start fast.
    from recentd.recent import EntryView, format_entry  # noqa: PLC0415

    out = sys.stdout
    for e in reply.entries:
        view = EntryView(e.family, e.addr, e.ttl, e.index, tuple(e.stamps), e.last_seen)
        out.write(format_entry(view))
    out.flush()
    return 0


def listing_record(listing: TableListing) -> dict[str, Any]:
    """A listing as a script wants it: addresses as text, times as ages and UTC times.

    Stamps are ticks of the daemon's monotonic clock; the listing says which tick it was
    and the wall time then, so each stamp's age is ``(now - stamp) / hz`` seconds and its
    time the listing's wall time minus that age. Internal ring indexes are left out.
    """
    hz = listing.hz or 1

    def moment(tick: int) -> dict[str, Any]:
        age_ns = (listing.now_ticks - tick) * 1_000_000_000 // hz
        return {"age_s": round(age_ns / 1e9, 3), "time": _utc(listing.wall_ns - age_ns)}

    entries = []
    for e in listing.entries:
        last = moment(e.last_seen)
        entries.append({
            "addr": str(ipaddress.IPv4Address(e.addr) if e.family == 4
                        else ipaddress.IPv6Address(e.addr)),
            "family": e.family, "ttl": e.ttl, "hits": len(e.stamps),
            "last_seen_age_s": last["age_s"], "last_seen": last["time"],
            "stamps": [moment(stamp) for stamp in e.stamps],
        })  # fmt: skip
    return {"table": listing.name, "time": _utc(listing.wall_ns), "entries": entries}


def _utc(wall_ns: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-12-07T02:11:00.123Z``."""
    moment = datetime.datetime.fromtimestamp(wall_ns // 1_000_000 / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write(args: argparse.Namespace) -> int:
    # The line goes as its bytes, like `echo -n LINE`: no newline is added.
    data = os.fsencode(args.line)
    what = f"{args.name}: write {args.line!r}"
    reply = _ask(args, WriteTable(args.name, data, force=args.force), WriteResult, what)
    if isinstance(reply, int):
        return reply
    if reply.written < len(data):
        print(f"recentd: short write: {reply.written} of {len(data)} bytes", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    reply = _ask(args, Status(), StatusReply, "status")
    if isinstance(reply, int):
        return reply
    print(f"recentd {reply.version}, pid {reply.pid}, up {reply.uptime_s:.0f} s")
    print(f"tables: {reply.tables}, entries: {reply.entries}, hz: {reply.hz}")
    for name, health in sorted(reply.adapters.items()):
        print(f"adapter {name}: {health}")
    for key, value in sorted(reply.state.items()):
        print(f"state {key}: {value}")
    return 0


def _unban(args: argparse.Namespace) -> int:
    reply = _ask(args, Unban(args.addr), UnbanResult, f"unban {args.addr}")
    if isinstance(reply, int):
        return reply
    if args.json:
        print(json.dumps({"addr": reply.addr, "removed": reply.removed}, indent=2))
    elif not reply.removed:
        print(f"{reply.addr}: in no list and no kernel set")
    for place in [] if args.json else reply.removed:
        print(f"{reply.addr}: removed from {place}")
    return 0


def why_record(reply: WhyResult) -> dict[str, Any]:
    """``ctl why``'s JSON document: times as UTC text beside the wall ns."""
    events = [{"time": _utc(e.wall_ns), "what": e.what, "list": e.table, "action": e.action,
               "origin": e.origin, "detail": e.detail, "count": e.count,
               "since": _utc(e.since_ns) if e.since_ns else None}
              for e in reply.events]  # fmt: skip
    ban = None
    if reply.banned_until_wall_ns:
        ban = {"until": _utc(reply.banned_until_wall_ns), "reason": reply.ban_reason,
               "origin": reply.ban_origin, "rule": reply.rule}  # fmt: skip
    return {
        "addr": reply.addr, "time": _utc(reply.wall_ns), "allowed": reply.allowed or None,
        "lists": [{"list": x.table, "hits": x.hits, "ttl": x.ttl, "first_age_s": x.first_age_s,
                   "last_age_s": x.last_age_s} for x in reply.lists],
        "kernel_ban": ban, "events": events, "history_bound": reply.history_bound,
    }  # fmt: skip


def _why(args: argparse.Namespace) -> int:
    reply = _ask(args, Why(args.addr), WhyResult, f"why {args.addr}")
    if isinstance(reply, int):
        return reply
    if args.json:
        print(json.dumps(why_record(reply), indent=2))
        return 0
    print(format_why(reply), end="")
    return 0


def format_why(reply: WhyResult) -> str:
    """``ctl why``'s text: where the address is, then its history, oldest first."""
    lines = [f"{reply.addr} at {_utc(reply.wall_ns)}"]
    lines.append(f"  allowed: {reply.allowed}" if reply.allowed else "  allowed: no")
    for entry in reply.lists:
        lines.append(f"  in list {entry.table}: {entry.hits} hit(s), first "
                     f"{entry.first_age_s:g} s ago, last {entry.last_age_s:g} s ago")  # fmt: skip
    if not reply.lists:
        lines.append("  in no list")
    else:
        lines.append("  (stamps the history does not name were made by packet rules: "
                     "--set, --update)")
    if reply.banned_until_wall_ns:
        lines.append(f"  banned in the kernel until {_utc(reply.banned_until_wall_ns)}: "
                     f"{reply.ban_reason} (decided by {reply.ban_origin})")  # fmt: skip
        lines.append(f"    rule: {reply.rule}")
    else:
        lines.append("  not banned in the kernel")
    lines.append(f"  history ({reply.history_bound}):" if reply.events else "  no history")
    for e in reply.events:
        where = f" {e.action}{e.table}" if e.table else ""
        detail = f": {e.detail}" if e.detail else ""
        times = f" (x{e.count} since {_utc(e.since_ns)})" if e.count > 1 else ""
        lines.append(f"    {_utc(e.wall_ns)} {e.what}{where} from {e.origin}{detail}{times}")
    return "\n".join(lines) + "\n"


def _allow(args: argparse.Namespace) -> int:
    from recentd.policy.durations import parse_duration  # noqa: PLC0415 - ctl starts fast

    try:
        seconds = parse_duration(args.duration)
    except ValueError as exc:
        print(f"recentd: allow: --for: {exc}", file=sys.stderr)
        return 2
    reply = _ask(args, Allow(args.network, seconds), AllowResult, f"allow {args.network}")
    if isinstance(reply, int):
        return reply
    until = _utc(reply.until_wall_ns) if reply.until_wall_ns else None
    if args.json:
        print(json.dumps({"network": reply.network, "until": until,
                          "withdrawn": reply.withdrawn}, indent=2))  # fmt: skip
        return 0
    print(f"{reply.network}: allowed " + (f"until {until}" if until else
                                           "until the daemon stops"))  # fmt: skip
    for address in reply.withdrawn:
        print(f"{address}: kernel ban withdrawn")
    return 0


def _set(args: argparse.Namespace) -> int:
    changes = {}
    for item in args.changes:
        key, equals, value = item.partition("=")
        if not equals or not key:
            print(f"recentd: set: {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        changes[key.strip()] = value.strip()
    reply = _ask(args, SetListPolicy(args.name, changes), ListPolicyResult, f"{args.name}: set")
    if isinstance(reply, int):
        return reply
    if args.json:
        print(json.dumps({"list": reply.name, "settings": reply.settings}, indent=2))
        return 0
    for key, value in reply.settings.items():
        print(f"{reply.name}: {key} = {json.dumps(value)}")
    return 0

