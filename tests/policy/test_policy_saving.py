"""The policy file (history and grants) is rewritten whole: the timer saves it only as
often as :data:`recentd.daemon.POLICY_SAVE_SHARE` of the time allows, and stop always
saves the last change."""

from __future__ import annotations

import ipaddress
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import recentd.daemon
from recentd.daemon import POLICY_SAVE_SHARE

from .harness import PolicyHarness


def test_a_costly_save_waits_and_stop_saves_the_last_change(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:  # fmt: skip
    h = PolicyHarness(tmp_path, state_dir=tmp_path / "state")
    saved_at: list[float] = []
    real_save = recentd.daemon.save_history

    def costly_save(*args: Any) -> None:  # a 10,000-address history: 0.3 s a save
        saved_at.append(h.clock.now_ns() / 1e9)
        h.clock.advance(0.3)
        real_save(*args)

    monkeypatch.setattr(recentd.daemon, "save_history", costly_save)
    start = h.clock.now_ns() / 1e9
    for second in range(20):  # a new ban every second, the timer every second
        h.remote_ban(ipaddress.ip_address(f"198.51.100.{second + 1}"))
        h.timer()
        h.step(1.0)
    gaps = [later - earlier for earlier, later in pairwise(saved_at)]
    assert saved_at[0] == start  # the first change is saved on the next tick
    assert len(saved_at) < 20 and min(gaps) >= 0.3 / POLICY_SAVE_SHARE
    h.stop()
    assert len(saved_at) == len(gaps) + 2  # stop saved what the timer had put off
    assert "198.51.100.20" in (tmp_path / "state" / "policy.json").read_text()
