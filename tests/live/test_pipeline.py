"""The verdict pipeline with offload: a ban goes to the backend the moment it is decided,
and what the banned source still has in the queue is dropped without asking the rules."""

from __future__ import annotations

import random
import struct

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Ban
from recentd.enforcer import Enforcer
from recentd.errors import BackendError
from recentd.live import nfqnl
from recentd.live.nfqnl import NF_ACCEPT, NF_DROP, QueuedPacket
from recentd.live.nfqueue import Batch
from recentd.live.policy import BanPlanner, find_offload_case
from recentd.live.verdict import Pipeline, engine_decider
from recentd.recent import RecentTables
from recentd.rules import Engine
from recentd.rules.parser import load_ruleset
from recentd.testing.clock import FakeClock
from tests.live.conftest import seed_text

BASE = 20
NEW_QUEUE, ESTABLISHED_QUEUE = BASE + 3, BASE + 1
ATTACKER, OTHER, SERVER = 0x0A000002, 0x0A000003, 0x0A000001


def _syn(packet_id: int, src: int, dport: int = 22, queue: int = NEW_QUEUE) -> QueuedPacket:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, src, SERVER)
    tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id % 20000, dport, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return QueuedPacket(packet_id, 1, ip + tcp, queue=queue)


class Recorder(MemoryBanBackend):
    def __init__(self, log: list[str], fail: bool = False) -> None:
        super().__init__()
        self.log, self.fail, self.calls = log, fail, 0

    def add(self, family, addr, timeout_s) -> None:
        self.calls += 1
        if self.fail:
            raise BackendError("refused", backend="fake")
        self.log.append(f"ban {int(addr):#x}")
        super().add(family, addr, timeout_s)


def _pipeline(tmp_path, log: list[str], *, offload: bool = True, fail: bool = False):
    path = tmp_path / "seed.rules"
    path.write_text(seed_text())
    tables = RecentTables(hz=250)
    decide = engine_decider(Engine(load_ruleset(path), tables, hz=250))

    def logged(packet, hook, now, ctstate):
        log.append(f"decide {packet.src:#x}")
        return decide(packet, hook, now, ctstate)

    clock = FakeClock(start_ns=10**12)
    case = find_offload_case(load_ruleset(path))
    assert case is not None
    planner = BanPlanner(case, tables, 250)
    pipeline = Pipeline(logged, clock, planner, base_queue=BASE)
    if offload:
        pipeline.enforcer = Enforcer(Recorder(log, fail), 250)
    return pipeline, clock


def _banned(pipeline: Pipeline) -> list[int]:
    assert pipeline.enforcer is not None
    return [int(ban.address) for ban in pipeline.enforcer.active.values()]


def test_ban_is_pushed_before_the_rest_of_the_batch(tmp_path):
    log: list[str] = []
    pipeline, _clock = _pipeline(tmp_path, log)
    batch = [_syn(i, ATTACKER) for i in range(1, 8)] + [_syn(8, OTHER)]
    verdicts = pipeline(batch)
    assert verdicts == [NF_ACCEPT] * 4 + [NF_DROP] * 3 + [NF_ACCEPT]
    assert log == [f"decide {ATTACKER:#x}"] * 5 + [f"ban {ATTACKER:#x}", f"decide {OTHER:#x}"]
    assert pipeline.counters.banned_drops == 2 and pipeline.counters.dropped == 3
    assert _banned(pipeline) == [ATTACKER]


def test_packets_outside_the_ban_class_are_still_decided(tmp_path):
    log: list[str] = []
    pipeline, _clock = _pipeline(tmp_path, log)
    pipeline([_syn(i, ATTACKER) for i in range(1, 6)])
    log.clear()
    pipeline([_syn(6, ATTACKER, dport=23), _syn(7, ATTACKER, queue=ESTABLISHED_QUEUE)])
    assert log == [f"decide {ATTACKER:#x}"] * 2


def test_expired_ban_is_decided_again(tmp_path):
    log: list[str] = []
    pipeline, clock = _pipeline(tmp_path, log)
    pipeline([_syn(i, ATTACKER) for i in range(1, 6)])
    clock.advance(61)
    log.clear()
    assert pipeline([_syn(6, ATTACKER)]) == [NF_ACCEPT]
    assert log == [f"decide {ATTACKER:#x}"]


def test_same_verdicts_with_and_without_offload(tmp_path):
    rng = random.Random(7)
    plain, clock_a = _pipeline(tmp_path, [], offload=False)
    offloaded, clock_b = _pipeline(tmp_path, [])
    packet_id = 0
    for _ in range(200):
        step = rng.choice([0.0, 0.0, 0.01, 0.5, 3.0, 20.0])
        clock_a.advance(step)
        clock_b.advance(step)
        batch = []
        for _ in range(rng.randrange(1, 12)):
            packet_id += 1
            src = rng.choice([ATTACKER, ATTACKER, OTHER, 0x0A000004])
            batch.append(_syn(packet_id, src, dport=rng.choice([22, 22, 22, 23])))
        assert offloaded(batch) == plain(batch)
    assert offloaded.counters.banned_drops > 0


def test_a_failing_backend_is_not_retried_per_packet(tmp_path):
    log: list[str] = []
    pipeline, clock = _pipeline(tmp_path, log, fail=True)
    assert pipeline([_syn(i, ATTACKER) for i in range(1, 10)]) == [NF_ACCEPT] * 4 + [NF_DROP] * 5
    assert pipeline.enforcer is not None
    backend = pipeline.enforcer.backend
    assert isinstance(backend, Recorder) and backend.calls == 1
    assert pipeline.enforcer.degraded and not _banned(pipeline)
    clock.advance(1.1)
    backend.fail = False
    pipeline([_syn(20, ATTACKER)])
    assert backend.calls == 2 and _banned(pipeline) == [ATTACKER]


def test_pipeline_reads_a_raw_batch(tmp_path):
    pipeline, _clock = _pipeline(tmp_path, [])
    data = b"".join(nfqnl.packet_message(_syn(i, ATTACKER)) for i in range(1, 7))
    assert pipeline(Batch.of(data)) == [NF_ACCEPT] * 4 + [NF_DROP] * 2


def test_a_ban_command_says_until_when_why_and_from_what(tmp_path):
    pipeline, clock = _pipeline(tmp_path, [])
    commands: list[object] = []
    assert pipeline.enforcer is not None
    pipeline.enforcer.listeners.append(commands.append)
    pipeline([_syn(i, ATTACKER) for i in range(1, 6)])
    [ban] = commands
    assert isinstance(ban, Ban) and int(ban.address) == ATTACKER and ban.family == 4
    # four stamps at now: R drops until the oldest of them leaves the 60 s window
    now = clock.read()
    assert ban.expiry_tick == now.tick + 60 * 250 + 1 and ban.timeout_s == 60
    assert ban.expiry_wall_ns == now.wall_ns + (60 * 250 + 1) * 4_000_000
    assert ban.reason == "4 hits in 60 s in list SSH" and ban.origin == "packet"
