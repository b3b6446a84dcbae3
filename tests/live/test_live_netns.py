"""recentd run in a real network namespace: the seed recipe on real TCP connects."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.live.conftest import seed_text
from tests.live.netns import CLIENT4, CLIENT6, OTHER4, OTHER6, REPO, SERVER4, SERVER6, Testbed, sh

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _start(bed: Testbed, rules, *extra: str) -> subprocess.Popen[str]:
    proc = bed.spawn(
        bed.server, sys.executable, "-m", "tests.live.mini_engine", "--rules", str(rules), "--queue-num", "20", *extra,
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = proc.stdout.readline() if proc.stdout else ""
        if out.startswith("recentd: queues"):
            time.sleep(0.5)  # the banner precedes start(): give the hooks time to land
            return proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"daemon did not install its hooks: {proc.communicate()[0]}")


def _jumps(bed: Testbed, binary: str = "iptables-legacy") -> int:
    return sh(*bed.exec(bed.server, binary, "-S", "INPUT")).stdout.count("recentd-hook")


def test_seed_recipe_v4_drops_fifth_and_spares_other_source(testbed, tmp_path):
    rules = tmp_path / "seed.rules"
    rules.write_text(seed_text(60))
    testbed.serve(22)
    proc = _start(testbed, rules)
    assert testbed.connect(CLIENT4, SERVER4, 22, 6) == ["ok"] * 4 + ["fail"] * 2
    assert testbed.connect(OTHER4, SERVER4, 22, 3) == ["ok"] * 3
    assert "10.77.0.2" in sh(*testbed.exec(testbed.server, "nft", "list", "set", "inet", "recentd", "ban4")).stdout
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert _jumps(testbed) == 0
    assert sh(*testbed.exec(testbed.server, "nft", "list", "tables"), check=False).stdout.strip() == ""


def test_short_window_accepts_again(testbed, tmp_path):
    rules = tmp_path / "short.rules"
    rules.write_text(seed_text(2))
    testbed.serve(22)
    _start(testbed, rules)
    assert testbed.connect(CLIENT4, SERVER4, 22, 5) == ["ok"] * 4 + ["fail"]
    time.sleep(2.3)
    assert testbed.connect(CLIENT4, SERVER4, 22, 1) == ["ok"]


def test_seed_recipe_v6(testbed, tmp_path):
    rules = tmp_path / "both.rules"
    rules.write_text(seed_text(60, v6=True))
    testbed.serve(22)
    _start(testbed, rules)
    assert _jumps(testbed, "ip6tables-legacy") == 1
    assert testbed.connect(CLIENT6, SERVER6, 22, 5) == ["ok"] * 4 + ["fail"]
    assert testbed.connect(OTHER6, SERVER6, 22, 2) == ["ok"] * 2


def test_sigkill_fails_open_and_next_start_cleans(testbed, tmp_path):
    rules = tmp_path / "seed.rules"
    rules.write_text(seed_text(60))
    testbed.serve(22)
    proc = _start(testbed, rules, "--no-offload")
    proc.kill()
    proc.wait()
    assert _jumps(testbed) == 1  # stale hook left behind…
    assert testbed.connect(CLIENT4, SERVER4, 22, 6) == ["ok"] * 6  # …but traffic flows
    proc = _start(testbed, rules, "--no-offload")
    time.sleep(1.0)  # the stale hook is visible at once; let the new daemon take over
    assert _jumps(testbed) == 1
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0, out
    assert _jumps(testbed) == 0
