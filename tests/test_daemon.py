"""The daemon without a kernel: reload keeps the lists, a bad file changes nothing,
hooks follow the rules, bans are re-derived from restored tables."""

from __future__ import annotations

import logging

from recentd.backends.memory import MemoryBanBackend
from recentd.daemon import Daemon, DaemonConfig
from recentd.live.nfqnl import NF_ACCEPT, NF_DROP
from recentd.packets.packet import Packet
from recentd.rules.model import CtState
from recentd.state import StateStore
from recentd.testing.clock import FakeClock
from tests.live.conftest import seed_text

ATTACKER, OTHER = 0x0A000002, 0x0A000003


def _syn(src: int, dport: int = 22) -> Packet:
    return Packet(4, src, 0x0A000001, 64, 6, 60, 40000, dport, 0x02)


def _daemon(tmp_path, text: str, **kw):
    path = tmp_path / "rules"
    path.write_text(text)
    calls: list[list[str]] = []

    def runner(argv):
        calls.append(list(argv))
        return (1, "no such rule") if "-D" in argv else (0, "")

    clock = FakeClock(start_ns=10**12)
    daemon = Daemon(
        DaemonConfig([path], **kw),
        clock=clock,
        runner=runner,
        backend_factory=lambda case: MemoryBanBackend(),
    )
    return daemon, path, clock, calls


def _decide(daemon, src, clock, dport=22):
    return daemon.pipeline.decide(_syn(src, dport), "INPUT", clock.now_ticks(), CtState.NEW)


def test_reload_keeps_lists_and_rederives_hooks(tmp_path):
    daemon, path, clock, calls = _daemon(tmp_path, seed_text())
    assert [_decide(daemon, ATTACKER, clock) for _ in range(5)] == [NF_ACCEPT] * 4 + [NF_DROP]
    before = list(daemon.tables.get("SSH"))
    daemon.hooks.installed = True  # as if running: a reload must rebuild the chains
    path.write_text(seed_text() + seed_text().replace("22", "23").replace("SSH", "TEL"))
    assert daemon.reload()
    assert list(daemon.tables.get("SSH")) == before
    assert _decide(daemon, ATTACKER, clock) == NF_DROP
    assert any("23:23" in argv for argv in calls)
    assert {f.dports for f in daemon.hooks.filters} == {((22, 22),), ((23, 23),)}


def test_bad_reload_changes_nothing_and_names_the_place(tmp_path, caplog):
    daemon, path, clock, calls = _daemon(tmp_path, seed_text())
    for _ in range(4):
        _decide(daemon, ATTACKER, clock)
    ruleset, filters, before = daemon.ruleset, daemon.hooks.filters, list(daemon.tables.get("SSH"))
    path.write_text(seed_text() + "iptables -A SSH_CHECK -m recent –seconds x\n")
    with caplog.at_level(logging.ERROR, "recentd.daemon"):
        assert not daemon.reload()
    assert f"{path}:6:" in caplog.text and "old rules kept" in caplog.text
    assert daemon.ruleset is ruleset and daemon.hooks.filters == filters and not calls
    assert list(daemon.tables.get("SSH")) == before
    assert _decide(daemon, ATTACKER, clock) == NF_DROP
    assert _decide(daemon, OTHER, clock) == NF_ACCEPT


def test_restored_tables_reassert_kernel_bans(tmp_path):
    daemon, path, clock, _ = _daemon(tmp_path, seed_text(), state_dir=tmp_path / "state")
    daemon._open_store()
    for _ in range(5):
        _decide(daemon, ATTACKER, clock)
    _decide(daemon, OTHER, clock)
    daemon._close_store()

    again = Daemon(
        DaemonConfig([path], state_dir=tmp_path / "state"),
        clock=clock,
        backend_factory=lambda case: MemoryBanBackend(),
        runner=lambda a: (1, ""),
    )
    again._open_store()
    again._setup_offload()
    assert again.enforcer is not None
    assert [int(b.addr) for b in again.enforcer.backend.snapshot()] == [ATTACKER]
    assert [ban.origin for ban in again.enforcer.active.values()] == ["restore"]
    assert StateStore  # the store the daemon used is the project's own
