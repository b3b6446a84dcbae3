"""Benchmark: floods from many sources — no collapse, bounded memory, attacker caught.

Replay (in this process, the seed recipe as pasted, ``ip_list_tot`` 10,000 as
``bench/replay.py`` sets it, the capture read in columns with the cycle collector
paused, exactly as ``recentd replay CAPTURE --config FILE`` replays):

* ``spoofed_pps``: a 10M-packet (``--packets``) SYN flood to port 22, every packet
  from a new source (198.18.0.0 onwards, 1 µs apart), written streaming by
  :func:`~recentd.packets.factory.write_syn_flood_pcap`;
* ``repeated_pps``: ``bench/replay.py``'s flood (1M packets from 5,000 sources), same run;
* ``rss_mb_1m`` / ``rss_mb_10m``: the process's resident set (VmRSS) once 1M and once
  all 10M distinct sources are replayed (the capture is read in 1 MB chunks: its
  size does not count);
* ``attacker_caught``: a real attacker making one attempt every 10 s inside a spoofed
  flood of 100k new sources per second (``--attack-seconds`` of it), replayed with
  ``--config``'s table size (``--list-tot``, default 1,200,000) over ``--attack-seconds``
  (default 50: five attempts, 5 s to 45 s): 1 if its fifth attempt is dropped (the
  recipe accepts four new connections within 60 s), else 0. With the kernel's LRU a list holds the attacker only if it has
  room for every spoofed source between two attempts (1M here): see docs/deviations.md.

Live (root, network namespaces, bench/live.py's testbed): ``live_spoofed_vps`` is the
full daemon (seed recipe, no offload) under a flood from 65,536 distinct sources
(pktgen_syn's ``-w`` mode, sources 10.67.0.0/16 inside the namespaces), against
``live_bare_vps``, the accept-all raw-netlink consumer under the same flood.

Live memory (no kernel): ``live_rss_mb_1m`` / ``live_rss_mb_10m``, the resident set of
a child process holding the daemon's pipeline (``Daemon`` built from the seed recipe,
not started) after 1M and after 10M (``--live-sources``) queued SYNs from as many
distinct sources, fed as raw netlink batches of 64: printed on the line before the last.

Run: ``python bench/flood.py [--packets N] [--no-live] [--no-replay]``. Last line:
``spoofed_pps=<A> repeated_pps=<B> live_spoofed_vps=<L> live_bare_vps=<M>
rss_mb_1m=<C> rss_mb_10m=<D> attacker_caught=<K>``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import recentd.replay.columns  # noqa: F401 - imported as the CLI has it, not timed
from recentd.cli.process import collector_paused
from recentd.packets.columns import read_columns
from recentd.packets.factory import PacketFactory, write_syn_flood_pcap
from recentd.recent import ModuleParams, RecentTables
from recentd.replay import Replayer, ReplaySummary
from recentd.rules import Engine, parse_ruleset_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # bench/live.py, beside this file

SEED_RECIPE = live.SEED
T0 = 1_700_000_000_000_000_000
ATTACKER, SERVER = "203.0.113.66", "192.0.2.1"
MILLION = 1_000_000
WIDE_SOURCES = "10.67.0.0/16"  # pktgen_syn -w: one source per frame of its pool


def _replayer(list_tot: int = 10_000) -> Replayer:
    tables = RecentTables(ModuleParams(ip_list_tot=list_tot))
    return Replayer(Engine(parse_ruleset_text(SEED_RECIPE, source="seed-recipe").ruleset, tables))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def replay(capture: Path, packets: int, *, list_tot: int = 10_000,
           rss_at: int = 0) -> tuple[float, ReplaySummary, float, float]:
    """Packets per second, the summary, and VmRSS once ``rss_at`` records were done and
    at the end, while the replayer (its tables) is still alive."""
    replayer, done, rss = _replayer(list_tot), [0], [float("nan")]

    def progress(count: int) -> None:
        before = done[0]
        done[0] += count
        if before < rss_at <= done[0]:
            rss[0] = rss_mb()

    start = time.perf_counter()
    with collector_paused():
        summary = replayer.replay(read_columns(capture), progress=progress)
    elapsed = time.perf_counter() - start
    at_end = rss_mb()
    assert summary.packets == packets, (summary.packets, packets)
    return packets / elapsed, summary, rss[0], at_end


def attacker_caught(scratch: Path, seconds: int, list_tot: int) -> tuple[int, str]:
    """1 if the attacker's attempts from the third on are dropped, and a description."""
    rate = 100_000
    pf = PacketFactory()
    attempts = [(T0 + 5 * 10**9 + k * 10 * 10**9,
                 pf.tcp(ATTACKER, SERVER, sport=40000 + k, dport=22, flags="S"))
                for k in range(seconds // 10)]
    capture = write_syn_flood_pcap(scratch / "attack.pcap", seconds * rate, seconds * rate,
                                   dst=SERVER, start_ns=T0, interval_ns=10**9 // rate,
                                   extra=attempts)
    packets = seconds * rate + len(attempts)
    pps, summary, _, rss = replay(capture, packets, list_tot=list_tot)
    capture.unlink()
    # Every spoofed source sends one SYN, which the recipe accepts: the drops are the
    # attacker's. (Not his summary row: among 5M sources it may well be evicted from
    # the summary's bounded heavy hitters, as any source sending 5 packets may.)
    dropped = summary.verdicts.get("DROP", 0)
    # The recipe accepts four attempts within 60 s and drops the fifth and later ones.
    caught = int(len(attempts) >= 5 and dropped == len(attempts) - 4)
    return caught, (f"attacker: {len(attempts)} attempts in a {seconds} s flood of {rate} "
                    f"new sources/s, ip_list_tot={list_tot}: {dropped} dropped "
                    f"(replayed at {pps:.0f} packets/s, RSS {rss:.0f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10 * MILLION)
    parser.add_argument("--attack-seconds", type=int, default=50)
    parser.add_argument("--list-tot", type=int, default=1_200_000)
    parser.add_argument("--no-live", action="store_true", help="replay parts only")
    parser.add_argument("--no-replay", action="store_true", help="live parts only")
    parser.add_argument("--seconds", type=float, default=live.FLOOD_S,
                        help="live flood length per phase")
    parser.add_argument("--live-sources", type=int, default=MILLION,
                        help="the live pipeline's memory: after N and 10 N new sources")
    parser.add_argument("--live-memory", type=int, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.live_memory:
        _live_memory_child(args.live_memory)
        return 0
    began = time.monotonic()
    # The cheaper parts first: on a busy machine the 10M replay may not finish.
    live_spoofed = live_bare = float("nan")
    if not args.no_live:
        live_spoofed, live_bare = live_floods(args.seconds)
    live_1m, live_10m = live_memory(args.live_sources)
    print(f"live pipeline memory: {live_1m:.0f} MB after {args.live_sources} new sources, "
          f"{live_10m:.0f} MB after {10 * args.live_sources}", flush=True)
    live_rss = f"live_rss_mb_1m={live_1m:.0f} live_rss_mb_10m={live_10m:.0f}"
    if args.no_replay:
        print(f"live_spoofed_vps={live_spoofed:.0f} live_bare_vps={live_bare:.0f} {live_rss}")
        return 0
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        caught, line = attacker_caught(scratch, args.attack_seconds, args.list_tot)
        print(line, flush=True)
        repeated_capture = scratch / "repeated.pcap"
        write_syn_flood_pcap(repeated_capture, MILLION, 5_000)
        repeated, *_ = replay(repeated_capture, MILLION)
        repeated_capture.unlink()
        print(f"repeated (bench/replay.py's flood): {repeated:.0f} packets/s", flush=True)
        capture = scratch / "spoofed.pcap"
        written = time.monotonic()
        write_syn_flood_pcap(capture, args.packets, args.packets)
        print(f"wrote {args.packets} spoofed SYNs in {time.monotonic() - written:.0f} s",
              flush=True)
        spoofed, summary, rss_1m, rss_10m = replay(capture, args.packets, rss_at=MILLION)
        capture.unlink()
        print(f"spoofed: {spoofed:.0f} packets/s; {summary.verdicts}; summary keeps "
              f"{len(summary.sources)} of {summary.admitted} sources (floor "
              f"{summary.floor}); RSS {rss_1m:.0f} MB after 1M sources, {rss_10m:.0f} MB "
              f"after {args.packets}", flush=True)
    print(f"bench/flood.py took {time.monotonic() - began:.0f} s")
    print(live_rss)
    print(f"spoofed_pps={spoofed:.0f} repeated_pps={repeated:.0f} "
          f"live_spoofed_vps={live_spoofed:.0f} live_bare_vps={live_bare:.0f} "
          f"rss_mb_1m={rss_1m:.0f} rss_mb_10m={rss_10m:.0f} attacker_caught={caught}")
    return 0


def live_memory(sources: int) -> tuple[float, float]:
    """The daemon's pipeline (built by :class:`~recentd.daemon.Daemon` from the seed
    recipe, not started: no kernel) fed queued SYNs from ``10 * sources`` distinct
    sources, in batches of 64 raw netlink messages: VmRSS after ``sources`` and after
    ``10 * sources``. Run in a child process of its own, so that nothing else counts."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--live-memory",
                          str(sources)], capture_output=True, text=True, check=True)
    first, last = json.loads(out.stdout.strip().splitlines()[-1])
    return float(first), float(last)


def _live_memory_child(sources: int) -> None:
    from recentd.daemon import Daemon, DaemonConfig  # noqa: PLC0415
    from recentd.live.nfqnl import QueuedPacket, packet_message  # noqa: PLC0415
    from recentd.live.nfqueue import Batch  # noqa: PLC0415

    logging.getLogger("recentd").setLevel(logging.ERROR)  # the recipe's dash notices
    batch_size, first_source = 64, 0x0B000000  # 11.0.0.0/8: room for 16.7M sources
    with tempfile.TemporaryDirectory() as scratch:
        rules = Path(scratch) / "seed.rules"
        rules.write_text(SEED_RECIPE)
        daemon = Daemon(DaemonConfig([rules], queue_num=live.QUEUE))
    pipeline, pf = daemon.pipeline, PacketFactory()
    messages, offsets, start = bytearray(), [], 0
    for k in range(batch_size):
        marker = 0x0AFF0000 + k  # found again below: where each message's source lies
        payload = pf.tcp(str(ipaddress.IPv4Address(marker)), SERVER, sport=1024 + k,
                         dport=22, flags="S")
        message = packet_message(QueuedPacket(k + 1, 1, payload, queue=live.QUEUE + 3,
                                              indev=2), live.QUEUE + 3)
        offsets.append(start + message.index(marker.to_bytes(4, "big")))
        messages += message
        start += len(message)
    rss = []
    for done in range(0, 10 * sources, batch_size):
        for k, offset in enumerate(offsets):
            messages[offset:offset + 4] = (first_source + done + k).to_bytes(4, "big")
        verdicts = pipeline(Batch.of(bytes(messages)))
        assert verdicts == [1] * batch_size, verdicts  # every new source's SYN is accepted
        if done < sources <= done + batch_size or done + batch_size >= 10 * sources:
            rss.append(rss_mb())
    counters = pipeline.counters
    print(f"live memory: {counters.accepted} accepted, {counters.remembered} decided "
          f"without the rules", file=sys.stderr)
    print(json.dumps(rss))


def live_floods(seconds: float) -> tuple[float, float]:
    """The daemon and the bare consumer under a flood of 65,536 distinct sources."""
    if os.geteuid() != 0:
        print("live part skipped: needs root (network namespaces)", file=sys.stderr)
        return float("nan"), float("nan")
    workdir, bed = Path(tempfile.mkdtemp(prefix="recentd-flood-")), live.Bed()
    try:
        pktgen = live.compile_pktgen(workdir)
        rules = workdir / "seed.rules"
        rules.write_text(SEED_RECIPE)
        bed.up()
        # Replies to the spoofed sources go back to the client namespace (which drops them).
        live.sh("ip", "-n", bed.server, "route", "add", WIDE_SOURCES, "via", live.CLIENT,
                "dev", bed.vs)
        flood = [["-w", "-t", str(seconds)]]
        bare = bed.phase("bare", rules, flood, pktgen)
        engine = bed.phase("engine", rules, flood, pktgen)
        print(f"live, 65,536 sources: engine {engine['verdicts']} verdicts = "
              f"{engine['vps']:.0f}/s, bare {bare['verdicts']} = {bare['vps']:.0f}/s", flush=True)
        return engine["vps"], bare["vps"]
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
