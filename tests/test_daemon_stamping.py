"""The daemon replays the kernel's logged drops (a fake reader) before deciding: the list
gets every dropped packet's stamps and the ban is re-timed, as xt_recent would have it."""

from __future__ import annotations

import ipaddress
import struct

from recentd.backends.memory import MemoryBanBackend
from recentd.daemon import Daemon, DaemonConfig
from recentd.live.nflog import logged_drops, packet_message
from recentd.live.nfqnl import NF_DROP, QueuedPacket
from recentd.live.policy import STAMP_LOG_GROUP, Drops
from recentd.recent.procfs import format_entry
from recentd.recent.ticks import ClockReading
from recentd.testing.clock import FakeClock

QUEUE = 20
NEW_QUEUE = QUEUE + 3
A = ipaddress.IPv4Address("10.0.0.2")
SSH = """\
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name SSH
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP
"""


def _syn(packet_id: int) -> bytes:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, int(A), 0x0A000001)
    tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id, 22, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return ip + tcp


class FakeLog:
    """What the kernel logged since the last read (IP headers), sent as the kernel's
    messages through the real parser."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.waiting: list[bytes] = []
        self.closed = False
        self.lost = 0

    def fileno(self) -> int:
        return -1

    def read_drops(self, now: ClockReading) -> list[Drops]:
        batch = b"".join(packet_message(self.group, header) for header in self.waiting)
        self.waiting = []
        return logged_drops(batch, now)

    def close(self) -> None:
        self.closed = True


def test_logged_drops_are_replayed_and_the_ban_re_timed(tmp_path):
    rules = tmp_path / "ssh.sh"
    rules.write_text(SSH)
    clock = FakeClock(start_ns=10**12)
    logs: list[FakeLog] = []
    kernel = MemoryBanBackend(lambda: clock.now_ns() / 1e9)

    def open_log(group: int) -> FakeLog:
        logs.append(FakeLog(group))
        return logs[-1]

    daemon = Daemon(DaemonConfig([rules], queue_num=QUEUE), clock=clock,
                    runner=lambda argv: (0, ""), backend_factory=lambda case: kernel,
                    stamp_reader=open_log)  # fmt: skip
    daemon._setup_offload()
    assert daemon.planner is not None and daemon.enforcer is not None
    assert [log.group for log in logs] == [STAMP_LOG_GROUP]
    assert "its drops logged to NFLOG group 4717 and replayed" in daemon.describe()
    verdicts: list[int] = []
    daemon.pipeline.on_verdict = lambda packet, verdict, queued: verdicts.append(verdict)
    for i in range(1, 5):
        daemon.pipeline([QueuedPacket(i, 1, _syn(i), queue=NEW_QUEUE)])
    assert verdicts[-1] == NF_DROP and daemon.enforcer.active  # the 4th: 4 hits, banned
    first = next(iter(daemon.enforcer.active.values()))
    assert first.timeout_s == 60
    clock.advance(31)  # the kernel drops 5 more, and logs them
    logs[0].waiting = [_syn(i) for i in range(4, 9)]
    assert daemon.on_stamps() == 5
    (entry,) = daemon.tables["SSH"]
    assert len(entry.stamps) == 5 + 2 * 5  # 4 packets (the 4th updated too), 5 logged × 2
    assert format_entry(entry).startswith("src=10.0.0.2 ttl: 64 ")
    again = next(iter(daemon.enforcer.active.values()))
    assert again.expiry_tick == first.expiry_tick + 31 * 250  # re-timed: < half was left
    assert [b.timeout_s for b in kernel.snapshot()] == [60]
    daemon._close_stamps()
    assert logs[0].closed


def test_lost_log_messages_show_in_status_and_metrics(tmp_path):
    """An overflow of the log's socket (ENOBUFS, counted by the reader) is no error: the
    daemon goes on, and ctl status (health), ctl stats and the metrics say how often."""
    from prometheus_client.core import CollectorRegistry  # noqa: PLC0415

    from recentd.metrics.collector import DaemonCollector  # noqa: PLC0415
    from recentd.metrics.stats import counters  # noqa: PLC0415

    rules = tmp_path / "ssh.sh"
    rules.write_text(SSH)
    clock = FakeClock(start_ns=10**12)
    logs: list[FakeLog] = []
    daemon = Daemon(DaemonConfig([rules], queue_num=QUEUE), clock=clock,
                    runner=lambda argv: (0, ""),
                    backend_factory=lambda case: MemoryBanBackend(lambda: clock.now_ns() / 1e9),
                    stamp_reader=lambda group: logs.append(FakeLog(group)) or logs[-1])  # fmt: skip
    daemon._setup_offload()
    logs[0].waiting = [_syn(1), _syn(2)]
    assert daemon.on_stamps() == 2 and "stamping" not in daemon.health
    logs[0].lost = 3  # the kernel dropped batches for the socket
    logs[0].waiting = [_syn(3)]
    assert daemon.on_stamps() == 1
    assert daemon.health["stamping"].startswith("degraded: the kernel's log of its drops "
                                                "overflowed 3 time(s)")  # fmt: skip
    assert (counters(daemon)["stamps_replayed"], counters(daemon)["stamp_log_overflows"]) == (3, 3)
    registry = CollectorRegistry()
    registry.register(DaemonCollector(daemon))
    assert registry.get_sample_value("recentd_stamp_log_overflows_total") == 3
    assert registry.get_sample_value("recentd_stamps_replayed_total") == 3
