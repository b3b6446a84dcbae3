"""``recentd top``: the screen from a Stats reply (pure), ``--once`` against a daemon, and
the live view driven in a real terminal (tmux, 80×24): keys in, screen captured."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from recentd.cli.top import View, prefix_of, screen_lines, sparkline, viewer_address
from recentd.control.protocol import StatsReply
from tests.live.netns import REPO

WALL = 1_763_596_810 * 10**9  # 2025-11-20 00:00:10 UTC


def _ban(address: str, expires_in_s: int, origin: str) -> dict:
    return {"address": address, "list": "SSH", "expiry_wall_ns": WALL + expires_in_s * 10**9,
            "origin": origin, "origin_class": origin.split(maxsplit=1)[0], "reason": "4 hits in 60 s"}


STATS = StatsReply(
    wall_ns=WALL,
    counters={"accepted": 120, "dropped": 7, "remembered": 90, "observations": 5, "reloads": 1},
    lists=[{"name": "SSH", "entries": 4, "evictions": 0}],
    bans=[_ban("203.0.113.9", 55, "packet"), _ban("203.0.113.77", 30, "observation file x"),
          _ban("2001:db8::5", 125, "packet")],
    near=[{"address": "198.51.100.4", "list": "SSH", "hits": 3, "threshold": 4, "seconds": 60}],
    events=[{"wall_ns": WALL - 5 * 10**9, "kind": "ban", "address": "203.0.113.9", "list": "SSH",
             "origin": "packet", "reason": "4 hits in 60 s", "expiry_wall_ns": 0}],
    health={"offload": "ok", "source file:auth.log": "ok"},
    sparkline=[0, 0, 1, 3, 0, 2],
)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_screen_of_one_reply():
    lines = [line.plain for line in screen_lines(STATS, View(), "203.0.113.77", width=100)]
    assert lines == [
        "recentd top · 00:00:10 · 120 accepted 7 dropped · 90 from memory · 5 observations · 1 reloads",
        "health: offload ok  source file:auth.log ok",
        "you: 203.0.113.77 is BANNED",
        "bans 3 in force  ▁▁▃█▁▅ (bans/min, last 6 min)  SSH 4 entries",
        "top offenders (sort: expiry)  address · list · expires · origin",
        "  2001:db8::5                             SSH          2m05s  packet",
        "  203.0.113.9                             SSH            55s  packet",
        "  203.0.113.77                            SSH            30s  observation file x",
        "top prefixes (/24, /64)  bans · expires · origins",
        "  203.0.113.0/24                                 2     55s  observation,packet",
        "  2001:db8::/64                                  1   2m05s  packet",
        "near the threshold  address · hits",
        "  198.51.100.4                            3/4 in 60 s (SSH)",
        "events",
        "  00:00:05 ban   203.0.113.9 (SSH; packet; 4 hits in 60 s)",
    ]


def test_a_small_terminal_keeps_every_section_and_the_width():
    many = dataclasses.replace(STATS, bans=[_ban(f"192.0.2.{i}", i, "packet")
                                            for i in range(1, 60)])  # fmt: skip
    lines = [line.plain for line in screen_lines(many, View(sort="address"), None, 80, 24)]
    assert len(lines) == 24
    assert all(len(line) <= 80 for line in lines)
    titles = [line for line in lines if not line.startswith(" ")]
    assert any(t.startswith("top offenders (sort: address)") for t in titles)
    assert any(t.startswith("near the threshold") for t in titles)
    assert any(t == "events" for t in titles)
    assert lines[2] == "you: not over SSH (no SSH_CONNECTION)"


def test_helpers():
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 2, 4]) == "▂▄█"
    assert prefix_of("203.0.113.200") == "203.0.113.0/24"
    assert prefix_of("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert viewer_address({"SSH_CONNECTION": "198.51.100.4 50000 192.0.2.1 22"}) == "198.51.100.4"
    assert viewer_address({"SSH_CONNECTION": "evil 1 2 3"}) is None
    assert viewer_address({}) is None


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    env.update(PYTHONPATH=str(REPO / "src"), TZ="UTC", **extra)
    return env


def test_once_prints_the_plain_screen(served, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "recentd.cli.main", "top", "--once", "--socket",
         str(served.config.socket)], capture_output=True, text=True, check=False, cwd=REPO,
        env=_env(SSH_CONNECTION="203.0.113.9 50000 192.0.2.1 22"), timeout=20)
    assert done.returncode == 0, done.stderr
    print(done.stdout)  # the transcript
    lines = done.stdout.splitlines()
    assert lines[0].startswith("recentd top · 00:00:")
    assert "5 observations" in lines[0]
    assert lines[2] == "you: 203.0.113.9 is BANNED"
    assert lines[3].startswith("bans 1 in force")
    offenders = lines.index("top offenders (sort: expiry)  address · list · expires · origin")
    assert lines[offenders + 1].split()[:2] == ["203.0.113.9", "SSH"]
    assert "observation file" in lines[offenders + 1]
    assert "  203.0.113.0/24" in "\n".join(lines)
    assert any(line.startswith("  ") and "ban   203.0.113.9" in line for line in lines)


def test_live_view_in_a_real_terminal(served, tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux missing: scripts/setup.sh installs it")
    session = f"recentd-top-{uuid.uuid4().hex[:8]}"
    socket = str(tmp_path / "tmux.sock")  # a server of our own: never the user's tmux
    tmux = ["tmux", "-S", socket]
    command = [sys.executable, "-m", "recentd.cli.main", "top", "--interval", "0.2",
               "--socket", str(served.config.socket)]
    env = _env()
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    "-e", f"PYTHONPATH={env['PYTHONPATH']}", "-e", "TZ=UTC",
                    "-e", "TERM=xterm-256color", *command], check=True, env=env, cwd=REPO)
    try:
        screen = _wait_for(tmux, session, "top offenders (sort: expiry)")
        print(screen)  # the transcript: the 80x24 screen as the terminal shows it
        lines = screen.splitlines()
        assert lines[0].startswith("recentd top")
        assert all(len(line) <= 80 for line in lines)
        assert any("203.0.113.9" in line and "observation" in line for line in lines)
        subprocess.run([*tmux, "send-keys", "-t", session, "a"], check=True)
        _wait_for(tmux, session, "top offenders (sort: address)")
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while _alive(tmux, session):
            assert time.monotonic() < deadline, "q did not quit"
            time.sleep(0.05)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def _capture(tmux: list[str], session: str) -> str:
    return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], check=True,
                          capture_output=True, text=True).stdout


def _alive(tmux: list[str], session: str) -> bool:
    return subprocess.run([*tmux, "has-session", "-t", session], check=False,
                          capture_output=True).returncode == 0


def _wait_for(tmux: list[str], session: str, text: str) -> str:
    deadline = time.monotonic() + 15
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(tmux, session)
        if text in screen:
            return screen
        time.sleep(0.1)
    pytest.fail(f"{text!r} never shown; screen:\n{screen}")
