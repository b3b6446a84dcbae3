"""``recentd top``: a live view of a running daemon, over its control socket.

Rules:

1. One request per refresh (``Stats``); everything shown is computed here from its reply
   by pure functions (:func:`screen_lines`), so the live screen and ``--once`` print the
   same lines, and tests feed replies in and read lines out.
2. The screen fits what it has: sections are cut to the terminal's height, most
   important first (health, bans with their sparkline, offenders, prefixes, addresses
   near the threshold, events); 80×24 over SSH shows every section.
3. Keys: ``q`` quits; ``e``/``a``/``o`` sort offenders by expiry, address or origin
   (prefixes are always by bans, most first). Without a terminal (or with ``--once``) one plain-text
   screen is printed and the command ends.
4. Whether the viewer's own address (``SSH_CONNECTION``) is allowed: "banned" when a
   ban in force covers it; otherwise "unknown" — the daemon has no allow lists yet.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from recentd.cli.globals import add_global_options, socket_path
from recentd.control.client import ControlClient
from recentd.control.protocol import ErrorReply, Stats, StatsReply
from recentd.errors import BackendError

SPARKS = "▁▂▃▄▅▆▇█"
SORTS = {"e": "expiry", "a": "address", "o": "origin"}

EPILOG = """\
keys: q quit · e/a/o sort offenders by expiry/address/origin

examples:
  recentd top                          # live, refreshed every second
  recentd top --once                   # one plain-text screen (also when not a terminal)
  recentd --socket /tmp/r.sock top     # another daemon
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "top", help="a live view of a running daemon: bans, offenders, sources, events",
        description="A live view of a running recentd over its control socket.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_global_options(parser, config=False)
    parser.add_argument("--once", action="store_true",
                        help="print one plain-text screen and exit (the default when "
                        "stdout is not a terminal)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=1.0, metavar="S",
                        help="seconds between refreshes (default 1)")  # fmt: skip
    parser.set_defaults(func=run)


@dataclass
class View:
    """What the viewer chose: the offenders' sort order."""

    sort: str = "expiry"


# ---- pure: reply → lines ----------------------------------------------------------------


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    if top == 0:
        return SPARKS[0] * len(counts)
    return "".join(SPARKS[min(len(SPARKS) - 1, count * (len(SPARKS) - 1) // top)]
                   for count in counts)  # fmt: skip


def prefix_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address is in."""
    ip = ipaddress.ip_address(address)
    bits = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def viewer_address(environ: Mapping[str, str]) -> str | None:
    """The client address of the SSH session this runs in, if any (validated)."""
    words = environ.get("SSH_CONNECTION", "").split()
    if not words:
        return None
    try:
        return str(ipaddress.ip_address(words[0]))
    except ValueError:
        return None


def _until(expiry_wall_ns: int, now_ns: int) -> str:
    seconds = max(0, (expiry_wall_ns - now_ns) // 10**9)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _clock(wall_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall_ns // 10**9))


def _offenders(bans: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort == "address":
        return sorted(bans, key=lambda b: (ipaddress.ip_address(b["address"]).version,
                                           int(ipaddress.ip_address(b["address"]))))  # fmt: skip
    if sort == "origin":
        return sorted(bans, key=lambda b: (b["origin_class"], -b["expiry_wall_ns"]))
    return sorted(bans, key=lambda b: -b["expiry_wall_ns"])


def _prefixes(bans: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    """(prefix, bans in it, latest expiry, origins) for prefixes with bans, most first."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for ban in bans:
        grouped.setdefault(prefix_of(ban["address"]), []).append(ban)
    rows = [(prefix, len(group), max(b["expiry_wall_ns"] for b in group),
             ",".join(sorted({b["origin_class"] for b in group})))
            for prefix, group in grouped.items()]  # fmt: skip
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def _viewer_line(viewer: str | None, bans: list[dict[str, Any]]) -> Text:
    if viewer is None:
        return Text("you: not over SSH (no SSH_CONNECTION)", style="dim")
    if any(ban["address"] == viewer for ban in bans):
        return Text(f"you: {viewer} is BANNED", style="bold red")
    return Text(f"you: {viewer} not banned; allowed: unknown (no allow lists in this daemon)",
                style="green")


def _section(title: str) -> Text:
    return Text(title, style="bold cyan")


def screen_lines(stats: StatsReply, view: View, viewer: str | None,
                 width: int = 80, height: int | None = None) -> list[Text]:
    """The screen for one reply (see the module rules), at most ``height`` lines."""
    now = stats.wall_ns
    c = stats.counters
    head = [
        Text(f"recentd top · {_clock(now)} · {c.get('accepted', 0)} accepted "
             f"{c.get('dropped', 0)} dropped · {c.get('remembered', 0)} from memory · "
             f"{c.get('observations', 0)} observations · {c.get('reloads', 0)} reloads",
             style="bold"),
        Text("health: " + "  ".join(f"{name} {state}" for name, state in
                                    sorted(stats.health.items())) or "health: -"),
        _viewer_line(viewer, stats.bans),
    ]  # fmt: skip
    lists = "  ".join(f"{row['name']} {row['entries']} entries" for row in stats.lists)
    head.append(Text(f"bans {len(stats.bans)} in force  {sparkline(stats.sparkline)} "
                     f"(bans/min, last {len(stats.sparkline)} min)  {lists}"))  # fmt: skip
    offenders = [_section(f"top offenders (sort: {view.sort})  address · list · expires · "
                          "origin")]  # fmt: skip
    for ban in _offenders(stats.bans, view.sort):
        offenders.append(Text(f"  {ban['address']:<39} {ban['list']:<10} "
                              f"{_until(ban['expiry_wall_ns'], now):>7}  {ban['origin']}"))
    prefixes = [_section("top prefixes (/24, /64)  bans · expires · origins")]
    for prefix, count, expiry, origins in _prefixes(stats.bans):
        prefixes.append(Text(f"  {prefix:<43} {count:>4} {_until(expiry, now):>7}  {origins}"))
    near = [_section("near the threshold  address · hits")]
    for row in stats.near:
        near.append(Text(f"  {row['address']:<39} {row['hits']}/{row['threshold']} in "
                         f"{row['seconds']} s ({row['list']})"))
    events = [_section("events")]
    for event in reversed(stats.events):
        style = "red" if event["kind"] == "ban" else "green"
        events.append(Text(f"  {_clock(event['wall_ns'])} {event['kind']:<5} "
                           f"{event['address']} ({event['list']}; {event['origin']}; "
                           f"{event['reason']})", style=style))  # fmt: skip
    sections = [offenders, prefixes, near, events]
    lines = head + [line for section in sections for line in section]
    if height is None or len(lines) <= height:
        return [_cut(line, width) for line in lines]
    return [_cut(line, width) for line in head + _fit(sections, height - len(head))]


def _fit(sections: list[list[Text]], room: int) -> list[Text]:
    """Each section's title and as many of its rows as fit, shared out in turns."""
    shown = [0] * len(sections)
    room -= len(sections)
    progress = True
    while room > 0 and progress:
        progress = False
        for index, section in enumerate(sections):
            if room > 0 and shown[index] < len(section) - 1:
                shown[index] += 1
                room -= 1
                progress = True
    return [line for section, count in zip(sections, shown, strict=True)
            for line in section[:count + 1]]  # fmt: skip


def _cut(line: Text, width: int) -> Text:
    line = line.copy()
    line.truncate(width, overflow="ellipsis")
    return line


# ---- the adapter: socket, terminal, keys --------------------------------------------------


def fetch(args: argparse.Namespace) -> StatsReply:
    with ControlClient(socket_path(args)) as client:
        reply = client.call(Stats())
    if isinstance(reply, ErrorReply):
        raise BackendError(f"top refused: {reply.message}", backend="daemon")
    if not isinstance(reply, StatsReply):
        raise BackendError(f"unexpected reply {type(reply).__name__}", backend="daemon")
    return reply


def run(args: argparse.Namespace) -> int:
    viewer = viewer_address(os.environ)
    if args.once or not sys.stdout.isatty() or not sys.stdin.isatty():
        for line in screen_lines(fetch(args), View(), viewer, width=10_000):
            print(line.plain)
        return 0
    console = Console()
    view = View()
    with _cbreak(sys.stdin.fileno()), Live(console=console, screen=True,
                                            auto_refresh=False) as live:  # fmt: skip
        while True:
            size = console.size
            live.update(Group(*screen_lines(fetch(args), view, viewer, size.width,
                                            size.height)), refresh=True)  # fmt: skip
            for key in _keys(sys.stdin.fileno(), args.interval):
                if key == "q":
                    return 0
                if key in SORTS:
                    view.sort = SORTS[key]


def _keys(fd: int, timeout: float) -> Iterator[str]:
    """Keys pressed within ``timeout`` seconds (returns at the first batch)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        yield from os.read(fd, 32).decode(errors="replace").lower()


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
