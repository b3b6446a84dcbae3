"""The split's cost: queueing at the jump into recentd's chain vs the whole-INPUT hook (root).

Same testbed and SYN generator as ``bench/live.py`` (namespaces ``lvb-…``, pktgen_syn.c,
64 sources in 10.66.1.0/24). Two rule files that decide the same way:

- *whole*: the host's filter rules recentd evaluates whole — the queue hooks send every
  INPUT packet (the chain's policy is DROP) to user space;
- *split*: the same host with nat, mangle and an ipset match (``rules/split.py``): the
  kernel runs INPUT and queues only at the jump into the recipe's ``SSH`` chain.

Two floods each, at a fixed rate, against the full daemon loop (``Daemon.on_queue``, no
offload): SYNs to port 80 (web traffic the recipe never looks at) and SYNs to port 22
(every one reaches the recipe in both). Reported per phase: packets decided in user space
and the daemon's CPU seconds (user + system) for the flood.

Each phase runs ``--repeat`` times (the two ways alternating); the last line has medians:
``web_cpu_split_s=<A> web_cpu_whole_s=<B> web_cpu_ratio=<A/B> ssh_us_per_pkt_split=<C>
ssh_us_per_pkt_whole=<D> ssh_cost_ratio=<C/D>``.
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from live import Bed, compile_pktgen  # noqa: E402  (bench/live.py: the testbed)

QUEUE = 40
RATE = 20000
FILTER = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
{block_chain}-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
{block}-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j SSH
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -j LOG --log-prefix "dropped: "
-A INPUT -j REJECT --reject-with icmp-host-prohibited
{block_rule}-A SSH -m recent --set --name SSH --mask 255.255.255.255 --rsource
-A SSH -m recent --update --seconds 60 --hitcount 4 --name SSH --mask 255.255.255.255 --rsource -j DROP
COMMIT
"""
WHOLE = FILTER.format(block_chain="", block="", block_rule="")
SPLIT = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill
COMMIT
""" + FILTER.format(block_chain=":BLOCK - [0:0]\n",
                    block="-A INPUT -m set --match-set bl src -j BLOCK\n",
                    block_rule="-A BLOCK -j DROP\n")


class Stop(Exception):
    pass


def _on_term(_s: int, _f: object) -> None:
    raise Stop


def inner(rules: Path) -> None:
    """In the server namespace: the daemon's loop until SIGTERM; prints JSON."""
    from recentd.daemon import Daemon, DaemonConfig  # noqa: PLC0415

    logging.getLogger("recentd").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _on_term)
    daemon = Daemon(DaemonConfig([rules], queue_num=QUEUE, offload=False))
    daemon.start()
    assert daemon.queue is not None
    print(f"ready {daemon.plan.mode}", flush=True)
    start = os.times()
    try:
        sel = selectors.DefaultSelector()
        sel.register(daemon.queue.fileno(), selectors.EVENT_READ)
        while True:
            sel.select(1.0)
            daemon.on_queue()
    except Stop:
        pass
    end = os.times()
    counters = daemon.pipeline.counters
    daemon.stop()
    cpu = (end.user - start.user) + (end.system - start.system)
    print(json.dumps({"decided": counters.accepted + counters.dropped, "cpu_s": cpu,
                      "mode": daemon.plan.mode}), flush=True)  # fmt: skip


def phase(bed: Bed, rules: Path, pktgen: Path, port: int, seconds: float) -> dict[str, Any]:
    flood = ["-s", "10.66.1.1", "-n", "64", "-p", str(port), "-t", str(seconds), "-r", str(RATE)]
    return bed.inner_phase(Path(__file__).resolve(), ["--inner", "--rules", str(rules)],
                           [flood], pktgen, what=str(rules))  # fmt: skip


def measure(bed: Bed, workdir: Path, seconds: float, repeat: int) -> int:
    pktgen = compile_pktgen(workdir)
    whole, split = workdir / "whole.rules", workdir / "split.rules"
    whole.write_text(WHOLE)
    split.write_text(SPLIT)
    bed.up()
    subprocess.run(["ip", "netns", "exec", bed.server, "ipset", "create", "bl", "hash:ip"],
                   check=True)  # fmt: skip
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for port in (80, 22):
        for _ in range(repeat):
            for name, rules in (("whole", whole), ("split", split)):
                got = phase(bed, rules, pktgen, port, seconds)
                results.setdefault((port, name), []).append(got)
                print(f"port {port}, {RATE} pps for {seconds:.0f} s, {name} ({got['mode']}): "
                      f"{got['decided']} packets decided in user space, {got['cpu_s']:.2f} "
                      "CPU s", flush=True)  # fmt: skip

    def web(name: str) -> float:
        return statistics.median(got["cpu_s"] for got in results[(80, name)])

    def per_packet(name: str) -> float:
        return statistics.median(1e6 * got["cpu_s"] / max(got["decided"], 1)
                                 for got in results[(22, name)])  # fmt: skip

    web_split, web_whole = web("split"), web("whole")
    ssh_split, ssh_whole = per_packet("split"), per_packet("whole")
    print(f"web_cpu_split_s={web_split:.2f} web_cpu_whole_s={web_whole:.2f} "
          f"web_cpu_ratio={web_split / max(web_whole, 1e-9):.3f} "
          f"ssh_us_per_pkt_split={ssh_split:.1f} ssh_us_per_pkt_whole={ssh_whole:.1f} "
          f"ssh_cost_ratio={ssh_split / max(ssh_whole, 1e-9):.2f}", flush=True)  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rules", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help="flood length per phase")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase (medians)")
    args = parser.parse_args()
    if args.inner:
        inner(args.rules)
        return 0
    if os.geteuid() != 0:
        print("bench/split.py needs root (network namespaces)", file=sys.stderr)
        return 1
    workdir, bed = Path(tempfile.mkdtemp(prefix="recentd-bench-")), Bed()
    try:
        return measure(bed, workdir, args.seconds, args.repeat)
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
