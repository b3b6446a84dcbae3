"""A daemon without a kernel (fake clock, memory backend, a real log file source), and its
control socket served from a thread, for the metrics and ``recentd top`` tests."""

from __future__ import annotations

import datetime
import select
import threading

import pytest

from recentd.backends.memory import MemoryBanBackend
from recentd.daemon import Daemon, DaemonConfig, SourceSpec
from recentd.logs.observe import ObservingParser
from recentd.logs.parsers import make_parser
from recentd.logs.records import RecordParser
from recentd.logs.timestamps import ClassicYear
from recentd.observation import Action, Evidence, Route
from recentd.sources.files import FileSource
from recentd.testing.clock import FakeClock
from tests.live.conftest import seed_text

NOW_NS = 1_763_596_800 * 10**9  # 2025-11-20 00:00:00 UTC
LINES = [
    "Nov 20 00:00:01 srv1 sshd[100]: Failed password for root from 203.0.113.9 port 4711 ssh2",
    "Nov 20 00:00:02 srv1 sshd[100]: Failed password for root from 203.0.113.9 port 4712 ssh2",
    "Nov 20 00:00:03 srv1 sshd[100]: Failed password for root from 203.0.113.9 port 4713 ssh2",
    "Nov 20 00:00:04 srv1 sshd[100]: Failed password for root from 203.0.113.9 port 4714 ssh2",
    "Nov 20 00:00:04 srv1 sshd[100]: Failed password for root from 203.0.113.9 port 4715 ssh2",
    "Nov 20 00:00:05 srv1 cron[7]: (root) CMD (true)",
    "garbage without a header",
]


@pytest.fixture
def daemon(tmp_path):
    """The daemon, its log file written (not yet read)."""
    rules = tmp_path / "seed.rules"
    rules.write_text(seed_text(60))
    log = tmp_path / "auth.log"
    log.write_text("")
    parser = ObservingParser(make_parser("sshd"),
                             RecordParser(ClassicYear(year=2025, tz=datetime.UTC)),
                             now=lambda: NOW_NS)  # fmt: skip
    routes = (Route(Evidence.AUTH_FAILURE, "SSH", Action.ADD),)
    spec = SourceSpec("file:auth.log",
                      lambda checkpoint: FileSource(log, parser, checkpoint, start_at_end=False),
                      routes)  # fmt: skip
    config = DaemonConfig([rules], queue_num=20, sources=[spec])
    clock = FakeClock(start_ns=10**12, wall_origin_ns=NOW_NS + 10 * 10**9 - 10**12)
    made = Daemon(config, clock=clock,
                  runner=lambda argv: (0, ""), backend_factory=lambda case: MemoryBanBackend())
    made._setup_offload()
    made.open_sources()
    log.write_text("\n".join(LINES) + "\n")
    yield made
    made.close_sources()



@pytest.fixture
def served(daemon, tmp_path):
    """The daemon's control socket, answered from a thread until the test ends."""
    daemon.config.socket = tmp_path / "ctl.sock"
    daemon._open_control()
    daemon.read_source(daemon.sources[0])
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            if select.select([daemon.control.fileno()], [], [], 0.05)[0]:
                daemon.control.on_ready()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield daemon
    stop.set()
    thread.join(2)
    daemon._close_control()
