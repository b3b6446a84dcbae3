"""Benchmark of the recent core: evaluations/s, bytes per tracked address, and scaling.

What it measures (issue 2):

1. ``evals_per_s``: `-m recent` evaluations per second for the seed recipe, ``--set``
   then ``--update --seconds 60 --hitcount 4``, over 1M distinct IPv4 addresses,
   one core: a first pass creates every entry, a second pass finds each again
   (stamp, then a window count). Two evaluations per packet.
2. ``bytes_per_addr``: resident memory (RSS, from /proc/self/statm) per tracked address
   at 1M entries, after the two passes (two stamps per entry).
3. ``kernel_bytes_per_addr``: the kernel's own allocation request per entry at the same
   ring size: ``sizeof(struct recent_entry)`` (56 bytes on x86_64) plus 8 bytes per ring
   slot (the recipe's ``--set`` makes a 32-slot ring). kmalloc rounds that 312 up to its
   512-byte slab, and the hash buckets add more; 312 is the kernel's best case, which
   makes the ratio conservative.
4. Scaling: insert-with-eviction and lookup rates in full tables of 1k, 10k, 100k and 1M
   entries, as ratios to the 1k table in the same run.

Run: ``python bench/core.py`` (about a minute). The last line is the summary.
"""

from __future__ import annotations

import gc
import random
import resource
import time
from pathlib import Path

from recentd.recent import Command, ModuleParams, RecentMatch, RecentTables

N = 1_000_000
KERNEL_ENTRY_HEADER = 56  # struct recent_entry without its stamps, x86_64, Linux 6.11+
HZ = 250


def rss_bytes() -> int:
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def seed_recipe(tot: int) -> tuple[RecentTables, RecentMatch, RecentMatch]:
    tables = RecentTables(ModuleParams(ip_list_tot=tot), hz=HZ)
    set_ = RecentMatch(Command.SET, name="SSH")
    update = RecentMatch(Command.UPDATE, name="SSH", seconds=60, hitcount=4)
    tables.acquire(set_)
    tables.acquire(update)
    return tables, set_, update


def recipe_pass(
    tables: RecentTables, set_: RecentMatch, update: RecentMatch, addrs: list[int], now: int
) -> float:
    evaluate = tables["SSH"].evaluate
    start = time.perf_counter()
    for addr in addrs:
        evaluate(set_, 4, addr, 64, now)
        evaluate(update, 4, addr, 64, now)
    return time.perf_counter() - start


def main_figures() -> tuple[float, float, int]:
    rng = random.Random(1)
    addrs = rng.sample(range(1 << 24, 1 << 32), N)
    gc.collect()
    before = rss_bytes()
    tables, set_, update = seed_recipe(N)
    first = recipe_pass(tables, set_, update, addrs, 10_000)
    second = recipe_pass(tables, set_, update, addrs, 10_000 + HZ)
    gc.collect()
    used = rss_bytes() - before
    assert len(tables["SSH"]) == N
    ring = tables["SSH"].ring
    evals_per_s = 4 * N / (first + second)
    print(
        f"pass 1 (create): {2 * N / first:,.0f} evals/s; pass 2 (stamp+count): {2 * N / second:,.0f} evals/s"
    )
    return evals_per_s, used / N, KERNEL_ENTRY_HEADER + 8 * ring


def scaling() -> None:
    rng = random.Random(2)
    reference: tuple[float, float] | None = None
    ops = 200_000
    for size in (1_000, 10_000, 100_000, 1_000_000):
        tables, set_, _ = seed_recipe(size)
        table = tables["SSH"]
        base = rng.randrange(1 << 24, 1 << 31)
        for i in range(size):
            table.evaluate(set_, 4, base + i, 64, 0)
        check = RecentMatch(Command.CHECK, name="SSH", seconds=60, hitcount=1)
        probes = [base + rng.randrange(size) for _ in range(ops)]
        start = time.perf_counter()
        for addr in probes:
            table.evaluate(check, 4, addr, 64, 1)
        lookup = ops / (time.perf_counter() - start)
        fresh = range(base + size, base + size + ops)  # every one evicts the LRU head
        start = time.perf_counter()
        for addr in fresh:
            table.evaluate(set_, 4, addr, 64, 2)
        insert = ops / (time.perf_counter() - start)
        assert len(table) == size
        reference = reference or (lookup, insert)
        print(
            f"table of {size:>9,}: lookup {lookup:>12,.0f}/s ({lookup / reference[0]:.2f}x of 1k), "
            f"insert+evict {insert:>12,.0f}/s ({insert / reference[1]:.2f}x of 1k)"
        )
        del tables, table
        gc.collect()


if __name__ == "__main__":
    scaling()
    evals, per_addr, kernel = main_figures()
    print(f"bytes/addr ratio to the kernel's entry: {per_addr / kernel:.2f}x (kernel slab: 512 B)")
    print(f"evals_per_s={evals:.0f} bytes_per_addr={per_addr:.0f} kernel_bytes_per_addr={kernel}")
