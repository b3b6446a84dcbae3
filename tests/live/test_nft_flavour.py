"""On a host whose own rules are in iptables-nft: ``recentd run`` puts its hooks there
(``iptables -L``, ``iptables-save``, ``nft list ruleset`` show them beside the admin's), and
the seed recipe and the ``--update`` recipe — decided in user space, the bans carried by
the kernel, the ``--update`` drops logged and replayed — answer the same connects as the
kernel's own xt_recent does with the same rules in iptables-legacy, in a second testbed fed
the same traffic at the same time, and list the same entries (``ctl show`` against
``/proc/net/xt_recent``)."""

from __future__ import annotations

import re
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.live.conftest import seed_text
from tests.live.netns import CLIENT4, OTHER4, SERVER4, Testbed, sh
from tests.live.test_live_netns import Run

pytestmark = [pytest.mark.netns, pytest.mark.slow]

#: The admin's own rules, in iptables-save form, loaded with iptables-nft-restore.
ADMIN = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""
#: The most common SSH recipe: --set, then --update … -j DROP inline in INPUT.
UPDATE = (
    "iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name SSH\n"
    "iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 "
    "--hitcount 4 --name SSH -j DROP\n"
)
RECIPES = {"seed": seed_text(60), "update": UPDATE}
#: Stamps of the two testbeds may differ by this many ticks (the connects run side by side,
#: not at the same instant; user space stamps a queued packet when it reads it).
TICKS_APART = 25


@pytest.fixture
def beds():
    missing = [b for b in ("iptables-nft-restore", "iptables-legacy", "iptables", "nft")
               if not shutil.which(b)]  # fmt: skip
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if "nf_tables" not in sh("iptables", "-V").stdout:
        pytest.skip("the host's iptables is not the nft-based one")
    recentd, kernel = Testbed("lvnr"), Testbed("lvnk")
    try:
        yield recentd.up(), kernel.up()
    finally:
        recentd.down()
        kernel.down()


def _kernel_rules(bed: Testbed, recipe: str) -> None:
    """The admin's rules and the recipe in iptables-legacy: xt_recent decides."""
    for line in ADMIN.splitlines():
        if line.startswith("-A "):
            sh(*bed.exec(bed.server, "iptables-legacy", *shlex.split(line)))
    for line in recipe.replace("–", "--").splitlines():
        argv = shlex.split(line)
        sh(*bed.exec(bed.server, "iptables-legacy", *argv[1:]))


def _in_nft(bed: Testbed, tmp: Path) -> None:
    admin = tmp / "admin.save"
    admin.write_text(ADMIN)
    sh(*bed.exec(bed.server, "iptables-nft-restore", str(admin)))


def _side_by_side(beds: tuple[Testbed, Testbed], *connects: tuple[str, int]) -> list[list[str]]:
    """Each (source, count) connecting to port 22 in turn, on both testbeds at once."""

    def run(bed: Testbed) -> list[str]:
        return [answer for src, n in connects for answer in bed.connect(src, SERVER4, 22, n, 0.2)]

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(run, beds))


def _entries(listing: str) -> dict[str, tuple[str, list[int]]]:
    """Per source: the line up to its stamps (ttl, oldest_pkt), and each stamp's age
    relative to last_seen (the two clocks' origins differ)."""
    out = {}
    for line in listing.splitlines():
        match = re.match(r"src=(\S+) ttl: (\d+) last_seen: (\d+) oldest_pkt: (\d+) (.*)", line)
        assert match, line
        src, ttl, last, oldest, stamps = match.groups()
        ages = [int(last) - int(s) for s in stamps.split(", ")]
        out[src] = (f"ttl: {ttl} oldest_pkt: {oldest} stamps: {len(ages)}", ages)
    return out


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recentd_in_iptables_nft_answers_as_xt_recent(beds, tmp_path, recipe):
    ours, theirs = beds
    _in_nft(ours, tmp_path)
    _kernel_rules(theirs, RECIPES[recipe])
    for bed in beds:
        bed.serve(22)
    rules = tmp_path / "recipe.rules"
    rules.write_text(RECIPES[recipe])
    run = Run(ours, tmp_path, rules)
    assert "hooks in iptables-nft: the host's rules are in iptables-nft" in run.output()

    listed = sh(*ours.exec(ours.server, "iptables", "-L", "INPUT", "-n")).stdout
    assert "RECENTD-IN" in listed and "dpt:80" in listed  # beside the admin's rules
    saved = sh(*ours.exec(ours.server, "iptables-save")).stdout
    assert "-A INPUT -m comment --comment recentd-hook -j RECENTD-IN" in saved
    assert "--queue-bypass" in saved and "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT" in saved
    ruleset = sh(*ours.exec(ours.server, "nft", "list", "ruleset")).stdout
    assert "chain RECENTD-IN" in ruleset and "table inet recentd" in ruleset
    assert sh(*ours.exec(ours.server, "iptables-legacy-save")).stdout.count("-A ") == 0

    answers = _side_by_side(beds, (CLIENT4, 7), (OTHER4, 2))
    assert answers[0] == answers[1]
    assert "fail" in answers[0] and answers[0][-2:] == ["ok", "ok"]
    kernel = sh(*theirs.exec(theirs.server, "cat", "/proc/net/xt_recent/SSH")).stdout
    ours_listed, theirs_listed = _entries(run.ctl("show", "SSH")), _entries(kernel)
    assert {src: head for src, (head, _) in ours_listed.items()} == {
        src: head for src, (head, _) in theirs_listed.items()}
    for src, (_, ages) in ours_listed.items():
        kernel_ages = theirs_listed[src][1]
        assert all(abs(a - b) <= TICKS_APART for a, b in zip(ages, kernel_ages, strict=True)), (
            src, ages, kernel_ages)
    run.stop()
    assert "RECENTD" not in sh(*ours.exec(ours.server, "iptables-save")).stdout
