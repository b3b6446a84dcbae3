"""Metrics overhead: live engine verdicts/s with ``--metrics`` on against off, same run (root).

The machinery is bench/live.py's (its namespaces, SYN flood generator and verdict span):
an inner process in the server namespace runs the full daemon loop (``Daemon.on_queue``,
real rule engine, the seed recipe, no offload, as live.py's ``engine`` phase) while
``pktgen_syn`` floods it from 64 sources; with metrics on, the daemon also serves the
exposition on 127.0.0.1 and a scraper in the namespace fetches ``/metrics`` every
``--scrape-s`` seconds during the flood (default 1 s, 15 times Prometheus' default rate;
0.5 s is stricter still). The scraper is a process of its own, started before each phase in both
modes (see :func:`phase`): on this 2-core machine its interpreter's start-up alone,
during a flood, costs the pinned flood or consumer tens of percent, which is the
bench's load, not the daemon's. Phases alternate (off/on, then
on/off: in trials the second phase of a pair ran faster, whichever it was),
``--rounds`` times, and the median of each mode is compared, so the drift of the shared
machine falls on both.

Verdicts are counted per wall second (live.py's measure) and per CPU second of the daemon
process (all its threads, so the scrapes' work is in it). On the shared machine the
first swings by tens of percent between identical phases with the other programs' load;
the second is the daemon's own cost, and is the one the last line compares.

Last line: ``overhead_pct=<P>`` = (1 - median on / median off) × 100 of verdicts per CPU
second. Target P ≤ 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import live  # bench/live.py, beside this file

METRICS_PORT = 9818


class CpuSpan(live._Span):
    """live.py's span, plus the process's CPU time (every thread: the scrapes' too) over
    the same packets: verdicts per CPU-second barely move when other programs load the
    machine, where verdicts per wall-second do."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu_first = self.cpu_last = 0.0

    def add(self, n: int) -> None:
        if n:
            cpu = time.process_time()
            self.cpu_first = self.cpu_first or cpu
            self.cpu_last = cpu
        super().add(n)

    def result(self) -> dict[str, Any]:
        cpu = self.cpu_last - self.cpu_first
        return {**super().result(), "cpu_s": cpu, "vpcs": self.count / cpu if cpu > 0 else 0.0}


def _inner(mode: str, rules: Path) -> None:
    from recentd.daemon import Daemon, DaemonConfig  # noqa: PLC0415

    logging.getLogger("recentd").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, live._on_term)
    metrics = f"127.0.0.1:{METRICS_PORT}" if mode == "on" else None
    daemon = Daemon(DaemonConfig([rules], queue_num=live.QUEUE, offload=False, metrics=metrics))
    span = CpuSpan()
    daemon.start()
    assert daemon.queue is not None
    print("ready", flush=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(daemon.queue.fileno(), selectors.EVENT_READ)
        while True:
            sel.select(1.0)
            span.add(daemon.on_queue())
    except live.Stop:
        pass
    finally:
        daemon.stop()
    print(json.dumps(span.result()), flush=True)


SCRAPER = """
import sys, time, urllib.request
period, scrapes = float(sys.argv[1]), 0
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=5).read()
        scrapes += 1
    except OSError:
        pass
    print(scrapes, flush=True)
    time.sleep(period)
""".replace("{port}", str(METRICS_PORT))


def phase(bed: live.Bed, mode: str, rules: Path, flood: list[str], pktgen: Path,
          scrape_s: float) -> dict[str, Any]:
    """One flood against the daemon with metrics ``mode``. The scraper runs in both modes
    (started, and its interpreter loaded, before the daemon): with metrics off its
    connections are refused, so both phases share the same outside load and the difference
    is the daemon's serving of the scrapes."""
    scraper = None
    if scrape_s > 0:
        scraper = subprocess.Popen(
            ["ip", "netns", "exec", bed.server, sys.executable, "-c", SCRAPER, str(scrape_s)],
            stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert scraper.stdout is not None
        scraper.stdout.readline()  # loaded, first attempt made
    argv = ["ip", "netns", "exec", bed.server, *live._pin(live.CONSUMER_CPU), sys.executable,
            str(Path(__file__).resolve()), "--inner", mode, "--rules", str(rules)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=live.HERE.parent)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"metrics {mode}: inner process failed")
        bed.flood(pktgen, *flood)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        for child in (proc, scraper):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
    result = dict(json.loads(out.strip().splitlines()[-1]))
    if scraper is not None and scraper.stdout is not None:
        counts = scraper.stdout.read().split()
        result["scrapes"] = int(counts[-1]) if counts else 0
    return result


def measure(rounds: int, seconds: float, scrape_s: float) -> int:
    workdir, bed = Path(tempfile.mkdtemp(prefix="recentd-bench-metrics-")), live.Bed()
    try:
        pktgen = live.compile_pktgen(workdir)
        rules = workdir / "seed.rules"
        rules.write_text(live.SEED)
        bed.up()
        flood = ["-s", "10.66.1.1", "-n", "64", "-t", str(seconds)]
        vps: dict[str, list[float]] = {"off": [], "on": []}
        vpcs: dict[str, list[float]] = {"off": [], "on": []}
        for round_ in range(1, rounds + 1):
            for mode in ("off", "on") if round_ % 2 else ("on", "off"):  # no order bias
                result = phase(bed, mode, rules, flood, pktgen, scrape_s)
                vps[mode].append(result["vps"])
                vpcs[mode].append(result["vpcs"])
                scrapes = f", {result['scrapes']} scrapes" if "scrapes" in result else ""
                print(f"round {round_} metrics {mode:>3}: {result['verdicts']} verdicts in "
                      f"{result['seconds']:.2f} s = {result['vps']:.0f}/s; "
                      f"{result['cpu_s']:.2f} CPU-s = {result['vpcs']:.0f}/CPU-s{scrapes}",
                      flush=True)  # fmt: skip
        off, on = statistics.median(vps["off"]), statistics.median(vps["on"])
        cpu_off, cpu_on = statistics.median(vpcs["off"]), statistics.median(vpcs["on"])
        print(f"median verdicts per wall second: metrics off {off:.0f}, on {on:.0f} "
              f"(overhead {(1 - on / off) * 100:.1f} %: the shared machine's load moves it)")
        print(f"median verdicts per CPU second: metrics off {cpu_off:.0f}, on {cpu_on:.0f} "
              f"(scrape every {scrape_s:g} s)")
        print(f"overhead_pct={(1 - cpu_on / cpu_off) * 100:.1f}")
        return 0
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inner", choices=("off", "on"), help=argparse.SUPPRESS)
    parser.add_argument("--rules", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="off/on pairs (default 5)")
    parser.add_argument("--seconds", type=float, default=live.FLOOD_S,
                        help="flood length per phase")
    parser.add_argument("--scrape-s", type=float, default=1.0,
                        help="seconds between scrapes while metrics are on (default 1; "
                        "0: serve, never scrape)")
    args = parser.parse_args()
    if args.inner:
        _inner(args.inner, args.rules)
        return 0
    if os.geteuid() != 0:
        print("bench/metrics.py needs root (network namespaces)", file=sys.stderr)
        return 1
    return measure(args.rounds, args.seconds, args.scrape_s)


if __name__ == "__main__":
    sys.exit(main())
