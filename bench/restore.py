"""Benchmark: restore 100,000 tracked addresses from a state directory (issue 6).

The state directory is made by recentd's own writer, the way a daemon leaves it:
80 % of the addresses in a snapshot, the rest (plus re-stamps of earlier ones)
in journal records of 1,000 changes each. Addresses are mixed, 70 % IPv4 and
30 % IPv6, with 4 stamps each (the ring of `--hitcount 4`).

The last 20 % were stamped 4 times within a few seconds before the "crash": they
are the sources the seed recipe is dropping, so their bans must come back too.

Timed, as the daemon does it at start: ``StateStore(dir).restore(tables, now, wall)``
into the tables the seed recipe's engine creates, with the wall clock 10 s later
and the monotonic clock restarted (a quick reboot), so every stamp is recomputed
from its age; then the kernel bans those tables imply are re-asserted through the
daemon's own path — ``find_offload_case`` → ``BanPlanner.plan_restored`` →
``Enforcer.carry_out_bans`` → ``NftBanBackend`` (libnftables JSON, one transaction) — into
a real nftables set. As root the benchmark runs itself inside a private network
namespace for that (the host's firewall is never touched); otherwise the ban step
uses the in-memory backend and says so.

Run: ``python bench/restore.py [N]``. Target: ``restore_s`` <= 2 (state and bans
together). The last line is ``restore_s=<S> addrs=<N>``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recentd.backends import BanBackend
from recentd.backends.memory import MemoryBanBackend
from recentd.backends.nftables import NftBanBackend
from recentd.clock import ClockReading
from recentd.enforcer import Enforcer
from recentd.errors import BackendError
from recentd.live.policy import BanPlanner, find_offload_case
from recentd.recent import Command, ModuleParams, RecentMatch, RecentTables
from recentd.rules import Engine, parse_ruleset_text
from recentd.state import StateStore
from recentd.state.framing import read_records

SEED_RECIPE = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state --state NEW -m recent --set --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4 --name SSH -j DROP
ip6tables -N SSH_CHECK
ip6tables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
ip6tables -I SSH_CHECK -m state --state NEW -m recent --set --name SSH
ip6tables -I SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH
ip6tables -I SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4 --name SSH -j DROP
"""
INSIDE = "RECENTD_BENCH_IN_NETNS"

HZ = 250
STAMPS = 4
WALL = 1_800_000_000 * 10**9


def make_tables(total: int) -> RecentTables:
    tables = RecentTables(ModuleParams(ip_list_tot=total), hz=HZ)
    tables.acquire(RecentMatch(Command.UPDATE, name="SSH", seconds=60, hitcount=STAMPS))
    return tables


def addresses(total: int, rng: random.Random) -> list[tuple[int, int]]:
    result: set[tuple[int, int]] = set()
    while len(result) < total:
        if rng.random() < 0.7:
            result.add((4, rng.getrandbits(32)))
        else:
            result.add((6, 0x2001_0DB8 << 96 | rng.getrandbits(64)))
    return sorted(result, key=lambda pair: rng.random())


def write_state(directory: Path, total: int) -> None:
    """A daemon's lifetime, shortened: a snapshot, then a journal on top of it."""
    rng = random.Random(6)
    tables = make_tables(total)
    store = StateStore(directory, compact_bytes=1 << 40)
    tick = 10_000_000
    store.restore(tables, tick, WALL)
    table = tables["SSH"]
    pairs = addresses(total, rng)
    split = total * 8 // 10
    for family, addr in pairs[:split]:
        for _ in range(STAMPS):
            tick += rng.randrange(1, 3)
            table.add(family, addr, tick)
    store.compact(tables, WALL + tick * 10**9 // HZ, tick)
    # The attack just before the crash: 4 hits each within a few seconds.
    later = pairs[split:] + rng.sample(pairs[:split], total // 10)
    for start in range(0, len(later), 1000):
        tick += 25
        for family, addr in later[start : start + 1000]:
            for _ in range(STAMPS):
                table.add(family, addr, tick)
        store.record(tables, WALL + tick * 10**9 // HZ, tick)
    store.close()


def last_wall(directory: Path) -> int:
    """The wall clock of the last record written (the moment of the "crash")."""
    records = read_records(sorted(directory.glob("journal.*"))[-1]).payloads
    return int(records[-1]["wall_ns"])


def reassert_bans(
    engine: Engine, tables: RecentTables, now: ClockReading
) -> tuple[int, str, BanBackend]:
    """The daemon's start-up ban path; returns (bans pushed, backend used)."""
    case = find_offload_case(engine.ruleset)
    assert case is not None, "the seed recipe is the first offloadable case"
    backend: BanBackend
    try:
        nft = NftBanBackend(case.ban_class)
        nft.install()
        backend, used = nft, "nftables (private namespace)"
    except BackendError as exc:
        if os.environ.get(INSIDE):
            raise
        backend, used = MemoryBanBackend(), f"in-memory backend ({exc})"
    planner = BanPlanner(case, tables, HZ)
    pushed = Enforcer(backend, HZ).carry_out_bans(planner.plan_restored(now), now.tick)
    return len(pushed), used, backend


def measure(total: int) -> None:
    with tempfile.TemporaryDirectory(prefix="recentd-bench-") as tmp:
        directory = Path(tmp) / "state"
        write_state(directory, total)
        size = sum(path.stat().st_size for path in directory.iterdir())
        print(f"state files: {size / 1e6:.1f} MB in {sorted(p.name for p in directory.iterdir())}")
        tables = RecentTables(ModuleParams(ip_list_tot=total), hz=HZ)
        engine = Engine(parse_ruleset_text(SEED_RECIPE, source="seed").ruleset, tables, hz=HZ)
        # Rebooted: the monotonic clock restarted; 10 s passed on the wall clock.
        now, wall = 1_000, last_wall(directory) + 10 * 10**9
        started = time.perf_counter()
        report = StateStore(directory).restore(tables, now, wall)
        state_s = time.perf_counter() - started
        bans, used, backend = reassert_bans(engine, tables, ClockReading(wall, now, HZ))
        restore_s = time.perf_counter() - started
        assert len(backend.snapshot()) == bans  # every ban really is in the kernel's set
        if isinstance(backend, NftBanBackend):
            backend.uninstall()
        restored = len(tables["SSH"])
        assert restored == total, (restored, total)
        print(f"loaded {report.loaded} entry records, {restored} addresses in {state_s:.3f} s")
        print(f"re-asserted {bans} kernel bans in {restore_s - state_s:.3f} s into {used}")
    print(f"restore_s={restore_s:.3f} addrs={restored}")


def main(total: int) -> None:
    """As root, run :func:`measure` inside a private network namespace (real nftables)."""
    if os.environ.get(INSIDE) or os.geteuid() != 0 or shutil.which("ip") is None:
        measure(total)
        return
    namespace = f"rrb-{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        argv = ["ip", "netns", "exec", namespace, sys.executable, __file__, str(total)]
        subprocess.run(argv, check=True, env={**os.environ, INSIDE: "1"})
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
