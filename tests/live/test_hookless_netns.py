"""Issue 12 item 3: when every decision of the rule set is carried by the kernel's ban set
(a list fed only by a watched log, read only by an offloaded ``--rcheck … -j DROP``),
``recentd run`` installs no NFQUEUE hook at all: failures appended to the file put the
source in the set and the kernel drops it; another source still connects."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live.netns import CLIENT4, OTHER4, REPO, SERVER4, Testbed, sh
from tests.live.test_live_netns import Run
from tests.live.test_logs_netns import ban_set, fail_until_banned, kernel_drops

pytestmark = [pytest.mark.netns, pytest.mark.slow]

RULE = ("-A INPUT -p tcp --dport 22 -m recent --name SSH_AUTH --rcheck --seconds 600 "
        "--hitcount 5 -j DROP")
SENTENCE = "# no NFQUEUE hook: every decision of the rule set is carried by the kernel ban set"


def _files(tmp: Path, rules_text: str) -> tuple[Path, Path, Path]:
    rules, log, config = tmp / "rules.v4", tmp / "auth.log", tmp / "recentd.toml"
    rules.write_text(rules_text)
    log.write_text("")
    config.write_text(f'[[watch]]\nsource = "{log}"\nfailure = "SSH_AUTH"\n')
    return rules, log, config


def _kernel_rules(bed: Testbed) -> str:
    """Everything the server's kernel holds: both iptables flavours and nftables."""
    return "".join(sh(*bed.exec(bed.server, *argv), check=False).stdout for argv in (
        ["iptables-legacy-save"], ["iptables-nft-save"], ["nft", "list", "ruleset"]))


def test_no_queue_hook_and_the_kernel_drops_what_the_log_bans(testbed: Testbed,
                                                              tmp_path: Path) -> None:
    testbed.serve(22)
    rules, log, config = _files(tmp_path, f"*filter\n:INPUT ACCEPT [0:0]\n{RULE}\nCOMMIT\n")
    run = Run(testbed, tmp_path, rules, "--config", str(config), "-v")
    assert "no NFQUEUE hook" in run.output()
    held = _kernel_rules(testbed)
    assert "NFQUEUE" not in held and "queue" not in held.lower()
    assert "inet recentd" in held  # the ban set is all recentd put in

    fail_until_banned(testbed, log, run, CLIENT4)
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
    assert kernel_drops(testbed) >= 1
    assert testbed.connect(OTHER4, SERVER4, 22, 2) == ["ok", "ok"]
    assert "NFQUEUE" not in _kernel_rules(testbed)
    run.proc.send_signal(signal.SIGHUP)  # a reload re-asserts the ban from the lists
    deadline = time.monotonic() + 5
    while "rules reloaded" not in run.output():
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert CLIENT4 in ban_set(testbed)
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
    assert "NFQUEUE" not in _kernel_rules(testbed)
    run.stop()
    assert "inet recentd" not in _kernel_rules(testbed)


def test_the_kernel_runs_the_other_rules_itself(testbed: Testbed, tmp_path: Path) -> None:
    """Rules beside the offloaded drop are restored into the kernel as they are (here a
    REJECT of port 23), and put back as they were at stop."""
    testbed.serve(22)
    testbed.serve(23)
    text = (f"*filter\n:INPUT ACCEPT [0:0]\n{RULE}\n"
            "-A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset\nCOMMIT\n")
    rules, _log, config = _files(tmp_path, text)
    run = Run(testbed, tmp_path, rules, "--config", str(config))
    held = sh(*testbed.exec(testbed.server, "iptables-legacy-save")).stdout
    assert "-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset" in held
    assert "NFQUEUE" not in held and "recent" not in held
    assert testbed.connect(OTHER4, SERVER4, 23, 1) == ["fail"]
    assert testbed.connect(OTHER4, SERVER4, 22, 1) == ["ok"]
    run.stop()
    assert "REJECT" not in sh(*testbed.exec(testbed.server, "iptables-legacy-save")).stdout


def test_dry_run_says_so(tmp_path: Path) -> None:
    rules, _log, config = _files(tmp_path, f"*filter\n:INPUT ACCEPT [0:0]\n{RULE}\nCOMMIT\n")
    done = subprocess.run([sys.executable, "-m", "recentd.cli.main", "run", "--rules",
                           str(rules), "--config", str(config), "--dry-run"],
                          capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
    out = done.stdout.splitlines()
    assert any(line.startswith(SENTENCE) for line in out), done.stdout
    assert not any("NFQUEUE" in line for line in out if not line.startswith("#"))
    assert not [line for line in out if line.startswith("iptables")]


def test_a_rule_that_writes_a_list_keeps_the_queue(tmp_path: Path) -> None:
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp --dport 22 -m recent --name SSH_AUTH --set\n"
            f"{RULE}\nCOMMIT\n")
    rules, _log, config = _files(tmp_path, text)
    done = subprocess.run([sys.executable, "-m", "recentd.cli.main", "run", "--rules",
                           str(rules), "--config", str(config), "--dry-run"],
                          capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
    assert SENTENCE not in done.stdout
    assert "NFQUEUE" in done.stdout
