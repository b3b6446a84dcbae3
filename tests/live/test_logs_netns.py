"""``recentd run --config`` with a ``[[watch]]`` on a log file, in a network namespace:
failures appended to the file ban the source in the kernel set before it sends a single
packet; its next SYN is dropped by the kernel (the nft drop rule counts it, the queue
never sees it); another source still connects."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.live.netns import CLIENT4, OTHER4, SERVER4, Testbed, sh
from tests.live.test_live_netns import Run

pytestmark = [pytest.mark.netns, pytest.mark.slow]

RECIPE = """\
*filter
:INPUT ACCEPT [0:0]
:SSH_CHECK - [0:0]
-A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
-A SSH_CHECK -m recent --name SSH_AUTH --rcheck --seconds 600 --hitcount 5 -j DROP
COMMIT
"""


def failure(addr: str, port: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")  # now, local time, as syslog writes it
    return f"{stamp} srv sshd[{4000 + port}]: Failed password for root from {addr} port {port} ssh2\n"


def ban_set(bed: Testbed) -> str:
    done = sh(*bed.exec(bed.server, "nft", "list", "set", "inet", "recentd", "ban4"), check=False)
    return done.stdout


def queued(bed: Testbed) -> int:
    """Packets recentd's NFQUEUE hooks have sent to user space (0: no hook at all)."""
    listing = sh(*bed.exec(bed.server, "iptables-legacy", "-L", "RECENTD-IN", "-n", "-v", "-x"),
                 check=False)
    rows = listing.stdout.splitlines()[2:]
    return sum(int(row.split()[0]) for row in rows if "NFQUEUE" in row)


def kernel_drops(bed: Testbed) -> int:
    listing = sh(*bed.exec(bed.server, "nft", "-j", "list", "chain", "inet", "recentd", "ban"))
    return sum(expr["counter"]["packets"]
               for item in json.loads(listing.stdout)["nftables"]
               for expr in item.get("rule", {}).get("expr", [])
               if isinstance(expr, dict) and "counter" in expr)  # fmt: skip


def fail_until_banned(bed: Testbed, log: Path, run: Run, addr: str) -> None:
    """Five failed logins from ``addr`` appended to the watched ``log``, one write each;
    returns once the address is in the kernel's ban set (5 s at most)."""
    with log.open("a") as out:
        for port in range(5):
            out.write(failure(addr, 40000 + port))
            out.flush()
    deadline = time.monotonic() + 5
    while addr not in ban_set(bed):
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.02)


def test_failures_in_a_watched_file_ban_in_the_kernel_without_a_packet(
    testbed: Testbed, tmp_path: Path
) -> None:
    testbed.serve(22)
    rules = tmp_path / "rules.v4"
    rules.write_text(RECIPE)
    log = tmp_path / "auth.log"
    log.write_text("")
    config = tmp_path / "recentd.toml"
    config.write_text(f'[[watch]]\nsource = "{log}"\nfailure = "SSH_AUTH"\n')
    run = Run(testbed, tmp_path, rules, "--config", str(config))
    assert CLIENT4 not in ban_set(testbed)

    fail_until_banned(testbed, log, run, CLIENT4)
    assert (queued(testbed), kernel_drops(testbed)) == (0, 0)  # not a packet so far
    assert CLIENT4 in run.ctl("show", "SSH_AUTH")

    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
    assert kernel_drops(testbed) >= 1
    assert queued(testbed) == 0  # dropped by the kernel set before the queue hooks
    assert testbed.connect(OTHER4, SERVER4, 22, 1) == ["ok"]
    # every decision is the ban set's: no queue hook at all (test_hookless_netns.py)
    assert queued(testbed) == 0
    assert "no NFQUEUE hook" in run.output()
    run.stop()
