"""The daemon with evidence sources, without a kernel: packets and observations in,
verdicts and ban/unban commands out, in the order they were decided."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import selectors
import struct

import pytest

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Ban, Unban
from recentd.daemon import Daemon, DaemonConfig, SourceSpec, load_rules
from recentd.errors import RuleError, StateFileError
from recentd.live.nfqnl import NF_ACCEPT, QueuedPacket
from recentd.observation import Action, Evidence, Observation, Origin, Route
from recentd.testing.clock import FakeClock
from recentd.testing.sources import ListSource
from tests.live.conftest import seed_text

QUEUE = 20
NEW_QUEUE = QUEUE + 3  # the hooks send NEW packets to queue N+3
A, B = ipaddress.IPv4Address("10.0.0.2"), ipaddress.IPv4Address("10.0.0.3")
SERVER = 0x0A000001
ROUTES = (
    Route(Evidence.AUTH_FAILURE, "SSH", Action.ADD),
    Route(Evidence.AUTH_SUCCESS, "SSH", Action.REMOVE),
)


def _syn(packet_id: int, src: ipaddress.IPv4Address) -> QueuedPacket:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, int(src), SERVER)
    tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id, 22, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return QueuedPacket(packet_id, 1, ip + tcp, queue=NEW_QUEUE)


class Harness:
    """A daemon (fake clock, fake backend, one list source) and the transcript it writes."""

    def __init__(self, tmp_path, *, state_dir=None, source: ListSource | None = None) -> None:
        rules = tmp_path / "seed.rules"
        rules.write_text(seed_text(60))
        self.clock = FakeClock(start_ns=10**12)
        self.source = source or ListSource()
        self.opened_from: list[object] = []

        def open_source(checkpoint):
            self.opened_from.append(checkpoint)
            if checkpoint:
                self.source.position = int(checkpoint["position"])
            return self.source

        config = DaemonConfig(
            [rules], queue_num=QUEUE, state_dir=state_dir,
            sources=[SourceSpec("list:auth", open_source, ROUTES)],
        )  # fmt: skip
        self.daemon = Daemon(config, clock=self.clock, runner=lambda argv: (0, ""),
                             backend_factory=lambda case: MemoryBanBackend())  # fmt: skip
        self.daemon._setup_offload()
        assert self.daemon.enforcer is not None
        self.daemon.enforcer.listeners.append(self._command)
        self.daemon.pipeline.on_verdict = self._verdict
        self.daemon.open_sources()
        self.transcript: list[str] = []
        self.packets = 0
        self.lines = 0

    def _command(self, command: Ban | Unban) -> None:
        if isinstance(command, Ban):
            self.transcript.append(
                f"ban {command.address} {command.timeout_s} s ({command.reason}; {command.origin})"
            )
        else:
            self.transcript.append(f"unban {command.address} ({command.reason})")

    def _verdict(self, packet, verdict: int, _queued) -> None:
        name = "ACCEPT" if verdict == NF_ACCEPT else "DROP"
        self.transcript.append(f"{ipaddress.IPv4Address(packet.src)} {name}")

    def packet(self, src: ipaddress.IPv4Address) -> None:
        self.packets += 1
        self.daemon.pipeline([_syn(self.packets, src)])

    def line(self, evidence: Evidence, address: ipaddress.IPv4Address) -> None:
        self.lines += 1
        origin = Origin("file", "/var/log/auth.log", f"line {self.lines}")
        self.source.push(Observation(evidence, address, self.clock.wall_ns(), origin))
        self.daemon.read_source(self.daemon.sources[0])

    def step(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)


def test_packets_and_observations_in_verdicts_and_commands_out_in_order(tmp_path):
    h = Harness(tmp_path)
    for event in ("packet", "packet", "failure", "failure", "packet", "other", "success",
                  "packet"):  # fmt: skip
        if event == "packet":
            h.packet(A)
        elif event == "other":
            h.packet(B)
        else:
            evidence = Evidence.AUTH_FAILURE if event == "failure" else Evidence.AUTH_SUCCESS
            h.line(evidence, A)
        h.step()
    assert h.transcript == [
        "10.0.0.2 ACCEPT",
        "10.0.0.2 ACCEPT",
        # the fourth stamp comes from a log line: the ban needs no packet
        "ban 10.0.0.2 57 s (4 hits in 60 s in list SSH; "
        "observation file /var/log/auth.log (line 2))",
        "10.0.0.2 DROP",  # dropped as banned: the rules are not asked
        "10.0.0.3 ACCEPT",
        # a successful login removes the entry: the rule no longer drops, the ban goes
        "unban 10.0.0.2 (the rule no longer drops it)",
        "10.0.0.2 ACCEPT",
    ]
    assert h.daemon.pipeline.counters.banned_drops == 1
    assert h.daemon.enforcer is not None and h.daemon.enforcer.active == {}


def test_an_observation_counts_at_its_own_time(tmp_path):
    h = Harness(tmp_path)
    late = h.clock.wall_ns() - 30 * 10**9  # a line read 30 s after it was written
    h.source.push(Observation(Evidence.AUTH_FAILURE, A, late, Origin("file", "auth.log")))
    h.daemon.read_source(h.daemon.sources[0])
    [entry] = list(h.daemon.tables["SSH"])
    assert entry.stamps == (h.clock.now_ticks() - 30 * 250,)


def test_source_checkpoints_survive_a_restart(tmp_path):
    state = tmp_path / "state"
    h = Harness(tmp_path, state_dir=state)
    h.line(Evidence.AUTH_FAILURE, A)
    h.line(Evidence.AUTH_FAILURE, B)
    h.daemon.close_sources()
    saved = json.loads((state / "sources.json").read_text())
    assert saved["sources"] == {"list:auth": {"position": 2}}

    medium = h.source.medium
    again = Harness(tmp_path, state_dir=state, source=ListSource(medium))
    assert again.opened_from == [{"position": 2}]
    assert again.daemon.read_source(again.daemon.sources[0]) == 0  # nothing read twice


def test_damaged_checkpoints_are_refused_not_guessed(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "sources.json").write_text("{not json")
    with pytest.raises(StateFileError, match=r"sources\.json"):
        Harness(tmp_path, state_dir=state)


def test_rules_of_two_files_load_as_one_rule_set(tmp_path):
    v4, v6 = tmp_path / "rules.v4", tmp_path / "rules.v6"
    v4.write_text(seed_text(60))
    v6.write_text(seed_text(60).replace("iptables ", "ip6tables "))
    assert load_rules([v4, v6]).families() == (4, 6)
    with pytest.raises(RuleError, match="also written by"):
        load_rules([v4, v4])


@pytest.mark.parametrize(
    "failure",
    [UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed"),
     ValueError("a parser bug"), RuleError("bad target", source="r", line=3, column=4),
     OSError(13, "Permission denied")],
    ids=["unicode", "value", "rule", "os"],
)  # fmt: skip
def test_reload_keeps_the_old_rules_whatever_goes_wrong(tmp_path, caplog, failure):
    h = Harness(tmp_path)
    ruleset = h.daemon.ruleset

    def broken(paths):
        raise failure

    h.daemon.loader = broken
    with caplog.at_level(logging.ERROR, "recentd.daemon"):
        assert h.daemon.reload() is False
    assert h.daemon.ruleset is ruleset
    assert "old rules kept" in caplog.text
    for _ in range(5):
        h.packet(A)
    assert h.transcript[-1] == "10.0.0.2 DROP"  # still protecting


class PipeSource(ListSource):
    """A list source with a descriptor, which it may swap (as a reopened medium does)."""

    def __init__(self) -> None:
        super().__init__()
        self.pipe = os.pipe()

    def fileno(self) -> int | None:
        return self.pipe[0]


def test_a_source_descriptor_is_watched_and_rewatched_when_it_changes(tmp_path):
    source = PipeSource()
    h = Harness(tmp_path, source=source)
    with selectors.DefaultSelector() as sel:
        h.daemon._watch_sources(sel)
        assert sel.get_key(source.pipe[0]).data is h.daemon.sources[0]
        old, source.pipe = source.pipe, os.pipe()
        h.daemon._watch_sources(sel)
        assert sel.get_key(source.pipe[0]).data is h.daemon.sources[0]
        with pytest.raises(KeyError):
            sel.get_key(old[0])
    for fd in (*old, *source.pipe):
        os.close(fd)


def test_a_checkpoint_that_cannot_be_written_degrades_and_is_retried(tmp_path, caplog):
    state = tmp_path / "state"
    h = Harness(tmp_path, state_dir=state)
    (state / "sources.json.tmp").mkdir(parents=True)  # in the way of the atomic write
    h.line(Evidence.AUTH_FAILURE, A)
    with caplog.at_level(logging.ERROR, "recentd.daemon"):
        h.daemon.save_checkpoints()
    assert h.daemon.health["checkpoints"].startswith("degraded: ")
    (state / "sources.json.tmp").rmdir()
    h.daemon.save_checkpoints()
    assert "checkpoints" not in h.daemon.health
    assert json.loads((state / "sources.json").read_text())["sources"] == {
        "list:auth": {"position": 1}
    }


def test_source_status_is_shown_with_the_daemon_health(tmp_path):
    h = Harness(tmp_path)
    h.daemon.source_health()
    assert h.daemon.health["source list:auth"] == "ok"
