"""``recentd demo`` end to end: it runs, exits 0, and leaves no namespace behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recentd.cli import main
from tests.live.netns import REPO, sh

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _demo_namespaces() -> set[str]:
    return {
        n for n in sh("ip", "netns", "list", check=False).stdout.split() if n.startswith("lvd-")
    }


def test_demo_runs_and_cleans_up():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    before = _demo_namespaces()
    done = subprocess.run(
        [sys.executable, "-m", "recentd.cli.main", "demo", "--duration", "8"],
        cwd=REPO, check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary" in done.stdout and "attacker" in done.stdout
    assert _demo_namespaces() <= before


def test_demo_refuses_without_root_with_a_clear_message(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main.main(["demo", "--duration", "1"]) == 1
    assert "needs root" in capsys.readouterr().out
