"""``recentd demo``: watch recentd stop an SSH brute-force attack, live (root; ~30 s).

Nothing on this machine's own firewall is touched: the demo builds two throw-away
network namespaces joined by a veth pair (unique ``lvd-…`` names), runs
``recentd run`` inside the server one with the classic ``recent`` recipe (4 new
connections per window; the window is short so you see the ban lift), a TCP
listener on port 22, and in the client namespace a legitimate user and an
attacker connecting side by side. Every second a table shows what happened; at
the end (or on Ctrl-C) everything is deleted again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from recentd.control.client import ControlClient
from recentd.control.protocol import ShowTable, TableListing
from recentd.errors import ControlError
from recentd.live.netns import CLIENT4, CONNECT, OTHER4, SERVER4, Testbed, sh
from recentd.recent import EntryView, format_entry

#: The recipe as it is usually pasted (typographic dashes and all); {s} is the window.
RECIPE = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds {s} –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds {s} –hitcount 4 –name SSH -j DROP
"""  # noqa: E501 - the recipe as pasted
ROLES = (("legitimate user", OTHER4, 3.0), ("attacker", CLIENT4, 0.2))


DESCRIPTION = """\
Watch recentd stop an SSH brute-force attack, live (root; about 30 s).

Nothing on this machine's own firewall is touched: the demo builds two throw-away
network namespaces joined by a veth pair (unique lvd-... names), runs `recentd run`
inside the server one with the classic `recent` recipe (4 new connections per window;
the window is short so you see the ban lift), a TCP listener on port 22, and in the
client namespace a legitimate user and an attacker connecting side by side. Every
second a table shows what happened; at the end (or on Ctrl-C) everything is deleted."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="see recentd stop a brute-force attack, in throw-away namespaces (root)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=30.0, metavar="SECONDS",
                        help="how long to run (default 30)")  # fmt: skip
    parser.add_argument("--window", type=int, default=10, metavar="SECONDS",
                        help="the recipe's --seconds (default 10, so the ban lifts)")  # fmt: skip
    parser.set_defaults(func=demo)


@dataclass
class Tally:
    attempts: int = 0
    accepted: int = 0
    dropped: int = 0


def demo(args: argparse.Namespace) -> int:
    console = Console()
    missing = _missing_requirements()
    if missing:
        console.print(f"[bold red]recentd demo:[/] {missing}")
        return 1
    signal.signal(signal.SIGTERM, _terminate)  # cleanup runs on kill too, not only on Ctrl-C
    bed = Testbed("lvd")
    workdir = Path(tempfile.mkdtemp(prefix="recentd-demo-"))
    try:
        return _run(console, bed, workdir, args.duration, args.window)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: cleaning up[/]")
        return 130
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)
        console.print("[dim]namespaces and temporary files removed; the host was not touched[/]")


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _missing_requirements() -> str:
    if os.geteuid() != 0:
        return ("needs root: it creates network namespaces and firewall rules inside them "
                "(never on this host's own firewall). "
                "Try: sudo .venv/bin/recentd demo")  # fmt: skip
    for tool in ("ip", "iptables-legacy"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command (iproute2, iptables)"
    return ""


def _run(console: Console, bed: Testbed, workdir: Path, duration: float, window: int) -> int:
    console.print("[dim]building namespaces…[/]")
    bed.up()
    rules = workdir / "ssh.rules"
    rules.write_text(RECIPE.format(s=window))
    sock = workdir / "control.sock"
    bed.serve(22)
    daemon = _start_daemon(bed, workdir, rules, sock)
    tallies = {name: Tally() for name, _, _ in ROLES}
    for name, src, gap in ROLES:
        _start_client(bed, tallies[name], src, gap)
    start = time.monotonic()
    banned_seconds = 0
    with Live(console=console, refresh_per_second=4) as live:
        while (elapsed := time.monotonic() - start) < duration:
            banned = _banned_in_kernel(bed, CLIENT4)
            banned_seconds += banned
            live.update(
                _view(elapsed, duration, window, tallies, banned=banned, listing=_listing(sock))
            )
            time.sleep(1.0)
    _stop_daemon(daemon)
    console.print(Panel(_summary(duration, window, tallies, banned_seconds), title="summary"))
    return 0


def _start_daemon(bed: Testbed, workdir: Path, rules: Path, sock: Path) -> subprocess.Popen[str]:
    log = (workdir / "recentd.log").open("w")
    argv = [sys.executable, "-m", "recentd.cli.main", "run", "--rules", str(rules),
            "--socket", str(sock), "--state-dir", str(workdir / "state")]  # fmt: skip
    proc = bed.spawn(bed.server, *argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 15
    while "recentd: ready" not in (workdir / "recentd.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"recentd run did not start:\n{(workdir / 'recentd.log').read_text()}")
        time.sleep(0.05)
    return proc


def _stop_daemon(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _start_client(bed: Testbed, tally: Tally, src: str, gap: float) -> None:
    argv = [sys.executable, "-c", CONNECT, src, SERVER4, "22", "0", str(gap), "0.5"]
    proc = bed.spawn(bed.client, *argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def count() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tally.attempts += 1
            if line.strip() == "ok":
                tally.accepted += 1
            else:
                tally.dropped += 1

    threading.Thread(target=count, daemon=True).start()


def _banned_in_kernel(bed: Testbed, addr: str) -> bool:
    done = sh(
        *bed.exec(bed.server, "nft", "-j", "list", "set", "inet", "recentd", "ban4"), check=False
    )
    if done.returncode != 0:
        return False
    for item in json.loads(done.stdout or "{}").get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            value = elem.get("elem", {}).get("val") if isinstance(elem, dict) else elem
            if value == addr:
                return True
    return False


def _listing(sock: Path) -> str:
    try:
        with ControlClient(sock, timeout=2.0) as client:
            reply = client.call(ShowTable("SSH"))
    except ControlError as exc:
        return f"(control socket: {exc})"
    if not isinstance(reply, TableListing):
        return "(no SSH table yet)"
    return (
        "".join(
            format_entry(EntryView(e.family, e.addr, e.ttl, e.index, tuple(e.stamps), e.last_seen))
            for e in reply.entries
        )
        or "(empty)"
    )


def _view(elapsed: float, duration: float, window: int, tallies: dict[str, Tally], *,
          banned: bool, listing: str) -> Group:  # fmt: skip
    table = Table(title=f"recentd demo — {elapsed:4.0f} s of {duration:.0f} s "
                  f"(4 new connections per {window} s)")  # fmt: skip
    for column in ("source", "attempts", "accepted", "dropped", "banned in kernel"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, src, _ in ROLES:
        t = tallies[name]
        kernel = "[bold red]yes[/]" if banned and src == CLIENT4 else "no"
        table.add_row(f"{name} ({src})", str(t.attempts), f"[green]{t.accepted}[/]",
                      f"[red]{t.dropped}[/]", kernel)  # fmt: skip
    proc = Panel(Text(listing.rstrip()), title="recentd ctl show SSH  (= /proc/net/xt_recent/SSH)")
    return Group(table, proc)


def _summary(duration: float, window: int, tallies: dict[str, Tally], banned_s: int) -> str:
    user, attacker = tallies["legitimate user"], tallies["attacker"]
    return (
        f"In {duration:.0f} s the attacker tried {attacker.attempts} connections: "
        f"{attacker.accepted} got through (4 per {window}-second window, as the recipe "
        f"allows) and {attacker.dropped} were dropped; for about {banned_s} s the ban sat in "
        f"the kernel's nftables set, so those SYNs never reached user space. Meanwhile the "
        f"legitimate user connected {user.accepted} of {user.attempts} times. Each time the "
        f"window passed, the ban lifted by itself, exactly as xt_recent's --rcheck would do."
    )
