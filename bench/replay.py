"""Benchmark of ``recentd replay``: packets per second through the seed recipe.

A 1M-packet raw-IP pcap of TCP SYNs to port 22 from 5,000 sources, 1 µs apart (so
every source keeps hitting the recipe's 60 s window), is replayed through the seed
recipe exactly as pasted (typographic dashes and all) with connection tracking,
exactly as ``recentd replay`` does it (decode → conntrack → rules → verdict).
The reference is ``tcpdump -r CAPTURE -w /dev/null`` on the same file, in the same
run: reading and writing the file with libpcap, no decisions.

Run: ``python bench/replay.py [--packets N]``. Last line:
``replay_pps=<N> tcpdump_pps=<M>``. The line before it breaks the replay down into
µs per packet per stage, each stage run on its own over the same capture: reading
and decoding, connection tracking (on the decoded packets), rule evaluation (with
those packets' conntrack states), and the rest of the replay (the difference).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recentd.packets.capture import read_capture
from recentd.packets.conntrack import ConnTracker
from recentd.packets.factory import write_syn_flood_pcap
from recentd.recent import ModuleParams, RecentTables
from recentd.recent.ticks import DEFAULT_HZ, ns_to_ticks
from recentd.replay import Replayer
from recentd.rules import Engine, Hook, parse_ruleset_text

SEED_RECIPE = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
"""


def replay_pps(capture: Path, packets: int) -> tuple[float, dict[str, int]]:
    # ip_list_tot above the 5,000 sources: with the kernel's default of 100 the LRU evicts
    # every rotating source before it returns and nobody is ever dropped (as in the kernel).
    tables = RecentTables(ModuleParams(ip_list_tot=10_000))
    engine = Engine(parse_ruleset_text(SEED_RECIPE, source="seed-recipe").ruleset, tables)
    replayer = Replayer(engine)
    start = time.perf_counter()
    for _ in replayer.run(read_capture(capture)):
        pass
    elapsed = time.perf_counter() - start
    assert replayer.summary.packets == packets
    return packets / elapsed, replayer.summary.verdicts


def stage_us(capture: Path, packets: int) -> dict[str, float]:
    """µs per packet of each stage, run separately (best of three)."""

    def best(stage: Callable[[], object]) -> float:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            stage()
            runs.append(time.perf_counter() - start)
        return min(runs) * 1e6 / packets

    records = [(r.ts_ns, r.packet) for r in read_capture(capture) if r.packet is not None]
    tracker = ConnTracker()
    decided = [(packet, ns_to_ticks(ts_ns, DEFAULT_HZ), tracker.classify(packet, ts_ns).state)
               for ts_ns, packet in records]

    def read() -> None:
        for _ in read_capture(capture):
            pass

    def conntrack() -> None:
        classify = ConnTracker().classify
        for ts_ns, packet in records:
            classify(packet, ts_ns)

    def rules() -> None:
        tables = RecentTables(ModuleParams(ip_list_tot=10_000))
        engine = Engine(parse_ruleset_text(SEED_RECIPE, source="seed-recipe").ruleset, tables)
        evaluate, hook = engine.evaluate, Hook.INPUT
        for packet, now, state in decided:
            evaluate(packet, hook, now, ctstate=state)

    return {"read+decode": best(read), "conntrack": best(conntrack), "rules": best(rules)}


def tcpdump_pps(capture: Path, packets: int) -> float:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise SystemExit("tcpdump is not installed (apt-get install tcpdump)")
    start = time.perf_counter()
    subprocess.run(
        [tcpdump, "-r", str(capture), "-w", "/dev/null"], check=True, capture_output=True
    )
    return packets / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        capture = Path(scratch) / "flood.pcap"
        write_syn_flood_pcap(capture, args.packets, 5_000)
        reference = tcpdump_pps(capture, args.packets)
        ours, verdicts = replay_pps(capture, args.packets)
        stages = stage_us(capture, args.packets)
    stages["replay loop+summary"] = 1e6 / ours - sum(stages.values())
    print(f"verdicts: {verdicts}; replay is {ours / reference:.3f}x tcpdump's rate")
    print("µs/packet: " + ", ".join(f"{name} {us:.2f}" for name, us in stages.items())
          + f"; total {1e6 / ours:.2f}")
    print(f"replay_pps={ours:.0f} tcpdump_pps={reference:.0f}")


if __name__ == "__main__":
    main()
