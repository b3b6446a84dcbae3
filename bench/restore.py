"""Benchmark: restore 100,000 tracked addresses from a state directory (issue 6).

The state directory is made by recentd's own writer, the way a daemon leaves it:
80 % of the addresses in a snapshot, the rest (plus re-stamps of earlier ones)
in journal records of 1,000 changes each. Addresses are mixed, 70 % IPv4 and
30 % IPv6, with 4 stamps each (the ring of `--hitcount 4`).

Timed: ``StateStore(dir).restore(tables, now, wall)`` into fresh tables, with the
wall clock 10 s later and the monotonic clock restarted (a quick reboot), so every
stamp is recomputed from its age. Then, if ``recentd.live.offload`` is there,
re-asserting bans into its in-memory backend is timed separately: each entry
with 4 stamps inside 60 s (the seed recipe's `--hitcount 4 --seconds 60`) gets a
ban for the rest of its window. That predicate stands in for the daemon's real
ban planner, which is not part of this benchmark.

Run: ``python bench/restore.py [N]``. Target: ``restore_s`` <= 2. The last line is
``restore_s=<S> addrs=<N>``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from recentd.recent import Command, ModuleParams, RecentMatch, RecentTables
from recentd.state import StateStore
from recentd.state.framing import read_records

try:  # the offload backend is another module's; the benchmark runs without it
    from recentd.live.offload import MemoryBanBackend
except ImportError:
    MemoryBanBackend = None

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
    later = pairs[split:] + rng.sample(pairs[:split], total // 10)
    for start in range(0, len(later), 1000):
        for family, addr in later[start : start + 1000]:
            for _ in range(STAMPS):
                tick += 1
                table.add(family, addr, tick)
        store.record(tables, WALL + tick * 10**9 // HZ, tick)
    store.close()


def last_wall(directory: Path) -> int:
    """The wall clock of the last record written (the moment of the "crash")."""
    records = read_records(sorted(directory.glob("journal.*"))[-1]).payloads
    return int(records[-1]["wall_ns"])


def reassert_bans(tables: RecentTables, now: int) -> tuple[float, int] | None:
    if MemoryBanBackend is None:
        return None
    backend = MemoryBanBackend()
    window = 60 * HZ
    started = time.perf_counter()
    for entry in tables["SSH"]:
        if len(entry.stamps) >= STAMPS and now - min(entry.stamps) <= window:
            remaining = (min(entry.stamps) + window - now) // HZ + 1
            backend.add(entry.family, entry.addr, remaining)
    return time.perf_counter() - started, len(backend.snapshot())


def main(total: int) -> None:
    with tempfile.TemporaryDirectory(prefix="recentd-bench-") as tmp:
        directory = Path(tmp) / "state"
        write_state(directory, total)
        size = sum(path.stat().st_size for path in directory.iterdir())
        print(f"state files: {size / 1e6:.1f} MB in {sorted(p.name for p in directory.iterdir())}")
        tables = make_tables(total)
        # Rebooted: the monotonic clock restarted; 10 s passed on the wall clock.
        now, wall = 1_000, last_wall(directory) + 10 * 10**9
        started = time.perf_counter()
        report = StateStore(directory).restore(tables, now, wall)
        restore_s = time.perf_counter() - started
        restored = len(tables["SSH"])
        assert restored == total, (restored, total)
        print(f"loaded {report.loaded} entry records, {restored} addresses")
        bans = reassert_bans(tables, now)
        if bans is None:
            print("reassert: excluded (recentd.live.offload not available)")
        else:
            print(f"reassert_s={bans[0]:.3f} bans={bans[1]} (MemoryBanBackend, stand-in policy)")
    print(f"restore_s={restore_s:.3f} addrs={restored}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
