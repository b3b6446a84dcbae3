"""Benchmark of ``recentd replay``: packets per second through the seed recipe.

A 1M-packet raw-IP pcap of TCP SYNs to port 22 from 5,000 sources, 1 µs apart (so
every source keeps hitting the recipe's 60 s window), is replayed through the seed
recipe exactly as pasted (typographic dashes and all), with connection tracking,
exactly as ``recentd replay CAPTURE --rules FILE`` does it: the capture read in
columns (through its source, :class:`~recentd.sources.capture.CaptureSource`), flood packets decided from remembered decisions by their raw bytes, every
other packet decoded, tracked and walked through the rules (``Replayer.replay``),
with the cycle collector paused as the command pauses it (``collector_paused``).
The capture's source ports repeat every 60,000 packets, so a third of the SYNs
find the connection an earlier SYN of theirs opened: those are tracked one by one.

The reference is ``tcpdump -r CAPTURE -w /dev/null`` on the same file, in the same
run: reading and writing the file with libpcap, no decisions. For context, the line
before the last also gives record-by-record replay (``Replayer.run``, the path of
``--verdicts``, here without writing JSON) and the share of packets decided from
remembered raw bytes.

Run: ``python bench/replay.py [--packets N]``. Last line:
``replay_pps=<N> tcpdump_pps=<M>``, N the median of three replays (each printed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import recentd.replay.columns  # noqa: F401 - imported as the CLI has it, not timed
from recentd.cli.process import collector_paused
from recentd.packets.factory import write_syn_flood_pcap
from recentd.recent import ModuleParams, RecentTables
from recentd.replay import Replayer, ReplaySummary
from recentd.rules import Engine, parse_ruleset_text
from recentd.sources.capture import CaptureSource

SEED_RECIPE = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
"""


#: Replays measured; the median is reported (the machine is noisy, and the first run in
#: a process also pays for growing the allocator's arenas: it is printed with the rest).
RUNS = 3


def _replayer() -> Replayer:
    # ip_list_tot above the 5,000 sources: with the kernel's default of 100 the LRU evicts
    # every rotating source before it returns and nobody is ever dropped (as in the kernel).
    tables = RecentTables(ModuleParams(ip_list_tot=10_000))
    return Replayer(Engine(parse_ruleset_text(SEED_RECIPE, source="seed-recipe").ruleset, tables))


def replay_pps(capture: Path, packets: int) -> tuple[float, ReplaySummary]:
    """``recentd replay``'s path: columns and remembered decisions."""
    replayer = _replayer()
    start = time.perf_counter()
    with collector_paused():
        summary = replayer.replay(CaptureSource(capture).items())
    elapsed = time.perf_counter() - start
    assert summary.packets == packets
    return packets / elapsed, summary


def record_pps(capture: Path, packets: int) -> tuple[float, ReplaySummary]:
    """Record by record (``--verdicts``'s path, without the JSON)."""
    replayer = _replayer()
    start = time.perf_counter()
    for _ in replayer.run(CaptureSource(capture, columns=False).records()):
        pass
    elapsed = time.perf_counter() - start
    return packets / elapsed, replayer.summary


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
        runs = [replay_pps(capture, args.packets) for _ in range(RUNS)]
        ours, summary = sorted(runs, key=lambda run: run[0])[RUNS // 2]  # the median run
        one_by_one, check = record_pps(capture, args.packets)
    if (check.verdicts, check.by_source()) != (summary.verdicts, summary.by_source()):
        raise SystemExit("the two replay paths disagree: a bug")
    print("replay runs (packets/s, fresh tables each, one process): "
          + ", ".join(f"{run[0]:.0f}" for run in runs) + "; the median is reported")
    print(f"verdicts: {summary.verdicts}; replay is {ours / reference:.3f}x tcpdump's rate; "
          f"{summary.remembered / summary.packets:.0%} of packets decided from remembered "
          f"raw bytes; record by record: {one_by_one:.0f} packets/s ({ours / one_by_one:.2f}x "
          "faster in columns)")
    print(f"replay_pps={ours:.0f} tcpdump_pps={reference:.0f}")


if __name__ == "__main__":
    main()
