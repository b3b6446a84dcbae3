"""Issue 12 item 3's fallback: when the ban set cannot be installed at start, a rule set
that needed no NFQUEUE hook gets the queue hooks after all (the log says so), in a
throw-away network namespace."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.live.netns import python_in_namespace

pytestmark = [pytest.mark.netns]

CODE = r"""
import logging, pathlib, subprocess, tempfile
from recentd.daemon import Daemon, DaemonConfig
from recentd.errors import BackendError

logging.basicConfig(level="INFO", format="%(message)s")
rules = pathlib.Path(tempfile.mkdtemp()) / "rules.v4"
rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -m recent "
                 "--name SSH_AUTH --rcheck --seconds 600 --hitcount 5 -j DROP\nCOMMIT\n")

def no_nftables(case):
    raise BackendError("nft: no such table family", backend="nft")

daemon = Daemon(DaemonConfig([rules], queue_num=33), backend_factory=no_nftables)
print("planned", daemon.plan.mode)
daemon.start()
print("running", daemon.plan.mode, daemon.queue is not None)
saved = subprocess.run(["iptables-legacy-save"], capture_output=True, text=True).stdout
print("queued", "NFQUEUE" in saved)
print("described", daemon.describe())
daemon.stop()
"""


def test_no_ban_set_falls_back_to_the_queue_hooks() -> None:
    if os.geteuid() != 0 or not shutil.which("iptables-legacy"):
        pytest.skip("needs root and iptables-legacy")
    done = python_in_namespace("rdt-hlfb", CODE)
    assert done.stdout.split("\n")[:3] == ["planned hookless", "running queue True",
                                           "queued True"], done.stdout
    assert "offload unavailable: nft: " in done.stderr
    # the ready line tells the truth: no offload, and why
    described = done.stdout.split("\n")[3]
    assert "no offload (degraded: " in described, done.stdout
    assert described.endswith("no such table family)"), done.stdout
    assert "falling back to the NFQUEUE hooks" in done.stderr
