"""Fixtures: a service over real tables, and a running test daemon on a real socket."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from recentd.control import Service
from recentd.recent import Command, ModuleParams, RecentMatch, RecentTables, ticks_to_ns
from recentd.testing.clock import FakeClock

from .loop import TestLoop

NOW = 4_294_967_296  # a tick past 2**32, as a long-running kernel's jiffies would be
WALL_NS = 1_796_600_000_123_000_000  # 2026-12-06T23:33:20.123Z, read at the same moment as NOW


def make_service(**params: int) -> Service:
    """Tables SSH (mode 0600 unless given) and WEB (0644), one rule each."""
    tables = RecentTables(ModuleParams(**params), hz=250)
    tables.acquire(RecentMatch(Command.SET, name="SSH"))
    tables.acquire(RecentMatch(Command.SET, name="WEB"))
    tables.configure("WEB", ip_list_perms=0o644)
    clock = FakeClock(250, ticks_to_ns(NOW, 250))
    return Service(tables, clock=clock.now_ticks, monotonic=lambda: 100.0, wall=lambda: WALL_NS)


@pytest.fixture
def service() -> Service:
    return make_service(ip_list_perms=0o600)


@pytest.fixture
def public_dir():
    """A temporary directory every user can traverse (for tests run as nobody)."""
    path = Path(tempfile.mkdtemp(prefix="recentd-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(service, public_dir):
    loop = TestLoop(public_dir / "control.sock", service).start()
    yield loop
    loop.stop()
