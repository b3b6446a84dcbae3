"""``recentd run`` (the real engine) in a network namespace: the seed recipe on real TCP
connects, fail-open, reload and restart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live.conftest import seed_text
from tests.live.netns import CLIENT4, CLIENT6, OTHER4, OTHER6, REPO, SERVER4, SERVER6, Testbed, sh

pytestmark = [pytest.mark.netns, pytest.mark.slow]


class Run:
    """One ``recentd run`` in the server namespace, its output in a file."""

    def __init__(self, bed: Testbed, tmp: Path, rules: Path, *extra: str) -> None:
        self.bed, self.tmp, self.rules = bed, tmp, rules
        self.socket, self.log = tmp / "ctl.sock", tmp / f"run-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "recentd.cli.main", "run", "--rules", str(rules),
                "--queue-num", "20", "--socket", str(self.socket),
                "--state-dir", str(tmp / "state"), *extra]  # fmt: skip
        with self.log.open("w") as out:
            self.proc = bed.spawn(
                bed.server, *argv, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while "recentd: ready" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"daemon did not become ready:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text()

    def ctl(self, *argv: str) -> str:
        done = sh(
            sys.executable,
            "-m",
            "recentd.cli.main",
            "ctl",
            *argv,
            "--socket",
            str(self.socket),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)
        assert self.proc.wait(10) == 0, self.output()


def _jumps(bed: Testbed, binary: str = "iptables-legacy") -> int:
    return sh(*bed.exec(bed.server, binary, "-S", "INPUT")).stdout.count("recentd-hook")


def _rules(tmp: Path, text: str, name: str = "seed.rules") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_seed_recipe_v4_drops_fifth_and_spares_other_source(testbed, tmp_path):
    testbed.serve(22)
    run = Run(testbed, tmp_path, _rules(tmp_path, seed_text(60)))
    assert "typographic dash" in run.output()
    assert testbed.connect(CLIENT4, SERVER4, 22, 6) == ["ok"] * 4 + ["fail"] * 2
    assert testbed.connect(OTHER4, SERVER4, 22, 3) == ["ok"] * 3
    assert (
        CLIENT4
        in sh(*testbed.exec(testbed.server, "nft", "list", "set", "inet", "recentd", "ban4")).stdout
    )
    run.stop()
    assert _jumps(testbed) == 0
    assert (
        sh(*testbed.exec(testbed.server, "nft", "list", "tables"), check=False).stdout.strip() == ""
    )


def test_short_window_accepts_again(testbed, tmp_path):
    testbed.serve(22)
    Run(testbed, tmp_path, _rules(tmp_path, seed_text(2)))
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    time.sleep(2.3)
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["ok"]


def test_seed_recipe_v6(testbed, tmp_path):
    testbed.serve(22)
    Run(testbed, tmp_path, _rules(tmp_path, seed_text(60, v6=True)))
    assert _jumps(testbed, "ip6tables-legacy") == 1
    assert testbed.connect(CLIENT6, SERVER6, 22, 5) == ["ok"] * 4 + ["fail"]
    assert testbed.connect(OTHER6, SERVER6, 22, 2) == ["ok"] * 2
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]


def test_sigkill_fails_open_and_next_start_cleans(testbed, tmp_path):
    rules = _rules(tmp_path, seed_text(60))
    testbed.serve(22)
    run = Run(testbed, tmp_path, rules, "--no-offload")
    run.proc.kill()
    run.proc.wait()
    assert _jumps(testbed) == 1  # stale hook left behind…
    assert testbed.connect(CLIENT4, SERVER4, 22, 6) == ["ok"] * 6  # …but traffic flows
    run = Run(testbed, tmp_path, rules, "--no-offload")
    assert _jumps(testbed) == 1
    run.stop(signal.SIGINT)
    assert _jumps(testbed) == 0


def test_reload_keeps_lists_replaces_hooks_and_refuses_a_bad_file(testbed, tmp_path):
    rules = _rules(tmp_path, seed_text(60))
    testbed.serve(22)
    testbed.serve(23)
    run = Run(testbed, tmp_path, rules)
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    before = run.ctl("show", "SSH")
    assert CLIENT4 in before

    # a good file that also guards port 23: lists kept, hooks re-derived
    rules.write_text(seed_text(60) + seed_text(60).replace("22", "23").replace("SSH", "TEL"))
    run.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    # The chains are rebuilt in place (recentd.live.hooks.Hooks.replace): for a moment
    # RECENTD-IN does not exist, and -S says so with status 1.
    listing = ("iptables-legacy", "-S", "RECENTD-IN")
    while "dport 23" not in sh(*testbed.exec(testbed.server, *listing), check=False).stdout:
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert run.ctl("show", "SSH") == before
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
    assert testbed.connect(CLIENT4, SERVER4, 23, 5) == ["ok"] * 4 + ["fail"]

    # a bad file: nothing changes, and the log names file:line:col
    rules.write_text(seed_text(60) + "iptables -A SSH_CHECK -m recent --seconds x\n")
    run.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "old rules kept" not in run.output():
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert f"{rules}:6:" in run.output()
    assert run.ctl("show", "SSH") == before
    assert "TEL" in run.ctl("list")
    assert testbed.connect(CLIENT4, SERVER4, 23, 1) == ["fail"]
    assert testbed.connect(OTHER4, SERVER4, 23, 1) == ["ok"]
    run.stop()


def test_restart_restores_the_lists(testbed, tmp_path):
    rules = _rules(tmp_path, seed_text(60))
    testbed.serve(22)
    run = Run(testbed, tmp_path, rules)
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    assert testbed.connect(OTHER4, SERVER4, 22, 2) == ["ok"] * 2
    before = run.ctl("show", "SSH")
    run.stop()
    run = Run(testbed, tmp_path, rules)
    _same_entries(run.ctl("show", "SSH"), before)
    # the restored entry still bans, and the kernel carries it again from the start
    assert (
        CLIENT4
        in sh(*testbed.exec(testbed.server, "nft", "list", "set", "inet", "recentd", "ban4")).stdout
    )
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
    run.stop()


def _same_entries(after: str, before: str) -> None:
    """Line for line the same /proc listing; stamps may move by one tick, because a
    restore re-bases them through the wall clock (two clock reads, rounded to ticks)."""
    a, b = after.splitlines(), before.splitlines()
    assert len(a) == len(b) and a, (after, before)
    for new, old in zip(a, b, strict=True):
        head_new, _, stamps_new = new.partition(" last_seen: ")
        head_old, _, stamps_old = old.partition(" last_seen: ")
        assert head_new == head_old
        numbers_new = [int(x) for x in re.findall(r"\d+", stamps_new)]
        numbers_old = [int(x) for x in re.findall(r"\d+", stamps_old)]
        assert numbers_new[1] == numbers_old[1]  # oldest_pkt
        assert all(abs(x - y) <= 1 for x, y in zip(numbers_new, numbers_old, strict=True)), (
            new,
            old,
        )


#: Edits that make the rule file invalid, with the line they break (the lead adds the
#: Latin-1 comment once the parser takes bytes as iptables does).
#: An edit appended to the seed recipe (5 lines), the line and column the log must name.
BAD_EDITS = {
    "unknown-target": (b"iptables -A SSH_CHECK -p tcp --dport 2222 -j DROPP\n", 6, 46),
    # A Latin-1 byte in a comment (iptables takes it) before the unknown target: the reader
    # must neither crash nor stop at the byte (issue 10's repro 4).
    "latin1-comment-and-unknown-target": (
        b'iptables -A SSH_CHECK -m comment --comment "f\xfcr Gr\xfc\xdfe" -j ACCEPT\n'
        b"iptables -A SSH_CHECK -p tcp --dport 2222 -j DROPP\n", 7, 46,
    ),
}


@pytest.mark.parametrize("edit", sorted(BAD_EDITS))
def test_sighup_after_a_bad_edit_keeps_protecting_with_the_old_rules(testbed, tmp_path, edit):
    rules = _rules(tmp_path, seed_text(60))
    testbed.serve(22)
    run = Run(testbed, tmp_path, rules)
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    lines, number, column = BAD_EDITS[edit]
    rules.write_bytes(seed_text(60).encode() + lines)
    run.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "old rules kept" not in run.output():
        assert time.monotonic() < deadline and run.proc.poll() is None, run.output()
        time.sleep(0.05)
    assert f"{rules}:{number}:{column}: " in run.output(), run.output()  # FILE:LINE:COL
    assert run.proc.poll() is None  # still running…
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]  # …and still protecting
    assert testbed.connect(OTHER4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    run.stop()
