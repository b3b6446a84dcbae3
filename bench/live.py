"""Live path benchmark: a SYN flood from many sources against recentd in namespaces (root).

Testbed (the shared kit's, with unique ``lvb-…`` names): server namespace
10.66.0.1, client namespace 10.66.0.2 with all of 10.66.1.0/24 local (AnyIP),
joined by a veth pair; ``pktgen_syn.c`` (compiled with gcc into a temp dir at run
time) floods TCP SYNs to port 22 from 64 sources. Nothing outside the two
namespaces is touched.

Phases, in one run, each an inner process in the server namespace fed by a flood (the
flood and the consumer pinned to separate cores where there are two):

1. bare: recentd's hooks and raw-netlink queue (5 state queues, recvmmsg batches, 128-byte
   copy range, coalesced verdicts), a handler that accepts everything — the cost of the
   queue machinery alone (and, reported beside it, the same handler dropping everything:
   the engine drops nearly all of the flood, which costs the kernel less than accepting);
2. engine: the full daemon loop (``Daemon.on_queue``: real rule engine, seed recipe, no
   offload): every packet is decided by the rules;
3. netfilterqueue (if installed): the same accept-all on NetfilterQueue 1.x (queue N+3);
4. offload: the full daemon with nftables offload, 64 sources at 50k pps, then 5 probes.

*Leak* (``offload_leak_pkts``): packets of a banned source that reached user space although
the kernel received them *after* the ban was committed. The commit time is the wall clock
right after libnftables returned from the transaction adding the ban; a packet's receive
time is its NFQA_TIMESTAMP (the kernel stamps received packets, before any netfilter hook,
while some socket asks for receive stamps: the inner process holds one with
SO_TIMESTAMPNS). The ban rule runs at priority -10, before the iptables hooks, so such a
packet must have been dropped by the kernel: the target is 0. Packets stamped at or before
the commit had already passed the ban rule — they were in the queue or on their way when
the ban landed — and are reported separately (``offload_queued_before_ban_pkts``, the line
before the last); the pipeline drops them without asking the rules. The deciding packet
itself is not counted; a packet without a stamp is counted as "unstamped".

*Ban latency*: for 5 fresh single sources flooding at 20k pps, the time from the push of
the ban (the pipeline pushes the moment the engine's DROP plans it, before the rest of the
batch) to the first packet the kernel drops for it, seen by polling the ban rule's
``counter`` (libnftables, ~0.2 ms per poll) in a spin right after the commit; the median is
reported (with each probe's libnftables transaction time beside it). It includes the
transaction and one poll interval, and is bounded below by the 50 µs packet spacing. The
counter baseline is read at each probe's first packet.

verdicts/s = verdicts the consumer sent / time between its first and last packet.
5. update: the --update SSH recipe under one source's 50k pps flood, decided in user space,
   then with stamping offload (the kernel drops and logs each packet to NFLOG; user space
   replays the logged drops' stamps and re-times the ban): ``update_flood_user_cost_pct``
   is the second's user-space CPU as a percentage of the first's (printed beside it: per
   packet, a logged drop's CPU against a decided packet's — user space alone decides only
   part of the flood when the machine is busy, fail-open passing the rest).
   ``--only update`` runs this phase alone (the figure, for iterating).

Last line: ``engine_vps=<N> bare_vps=<M> offload_leak_pkts=<L> ban_latency_ms=<T>
update_flood_user_cost_pct=<P>``.
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

from recentd.live.netns import make_veth_pair, sh

HERE = Path(__file__).resolve().parent
SERVER, CLIENT, SOURCES = "10.66.0.1", "10.66.0.2", "10.66.1.0/24"
QUEUE = 30
FLOOD_S = 3.0
# The flood and the consumer each get a core of their own (where there are two): left to
# the scheduler they sometimes share one, and the flood then stalls for milliseconds.
_CPUS = sorted(os.sched_getaffinity(0))
FLOOD_CPU, CONSUMER_CPU = (_CPUS[0], _CPUS[-1]) if len(_CPUS) >= 2 else (None, None)
SEED = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
"""


#: The most common SSH recipe: --set, then --update … -j DROP inline in INPUT.
UPDATE_RECIPE = """\
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name SSH
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP
"""


# ---- inner processes (run inside the server namespace) --------------------------------------


class Stop(Exception):
    pass


def _on_term(_s: int, _f: object) -> None:
    raise Stop


def inner(mode: str, rules: Path) -> None:
    logging.getLogger("recentd").setLevel(
        logging.ERROR
    )  # the recipe's dash notices, once is enough
    signal.signal(signal.SIGTERM, _on_term)
    result = {"bare": _inner_bare, "bare-drop": _inner_bare, "engine": _inner_engine,
              "offload": _inner_engine, "nfq": _inner_nfq, "update-user": _inner_update,
              "update-offload": _inner_update}[mode](mode, rules)  # fmt: skip
    print(json.dumps(result), flush=True)


def _hooks() -> Any:
    from recentd.live.hooks import Hooks, QueueFilter  # noqa: PLC0415

    return Hooks([QueueFilter(4, "INPUT", 6, ((22, 22),), 8)], QUEUE)


def _inner_bare(mode: str, _rules: Path) -> dict[str, Any]:
    from recentd.live.nfqnl import NF_ACCEPT, NF_DROP  # noqa: PLC0415
    from recentd.live.nfqueue import RawQueue  # noqa: PLC0415

    verdict = NF_DROP if mode == "bare-drop" else NF_ACCEPT
    queue, hooks = RawQueue(QUEUE, count=5), _hooks()
    hooks.install()
    span = _Span()
    print("ready", flush=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(queue.fileno(), selectors.EVENT_READ)
        while True:
            sel.select(1.0)
            span.add(queue.process(lambda batch: [verdict] * len(batch)))
    except Stop:
        pass
    finally:
        hooks.remove()
        queue.close()
    return span.result()


def _inner_nfq(_mode: str, _rules: Path) -> dict[str, Any]:
    from netfilterqueue import NetfilterQueue  # noqa: PLC0415

    hooks, span, nfq = _hooks(), _Span(), NetfilterQueue()

    def accept(packet: Any) -> None:
        packet.accept()
        span.add(1)

    nfq.bind(QUEUE + 3, accept, max_len=4096)  # queue N+3 carries NEW
    hooks.install()
    print("ready", flush=True)
    try:
        nfq.run()
    except Stop:
        pass
    finally:
        hooks.remove()
        nfq.unbind()
    return span.result()


class _Span:
    def __init__(self) -> None:
        self.count, self.first, self.last = 0, 0, 0

    def add(self, n: int) -> None:
        if n:
            now = time.monotonic_ns()
            self.first = self.first or now
            self.last, self.count = now, self.count + n

    def result(self) -> dict[str, Any]:
        seconds = (self.last - self.first) / 1e9
        return {"verdicts": self.count, "seconds": seconds,
                "vps": self.count / seconds if seconds > 0 else 0.0}  # fmt: skip


PROBE_BASE = 0x0A4201C8  # 10.66.1.200: the latency probes' sources
SO_TIMESTAMPNS = 35


def _inner_engine(mode: str, rules: Path) -> dict[str, Any]:
    import socket  # noqa: PLC0415

    from recentd.cli.run import nft_backend  # noqa: PLC0415
    from recentd.daemon import Daemon, DaemonConfig  # noqa: PLC0415

    offload = mode == "offload"
    daemon = Daemon(
        DaemonConfig([rules], queue_num=QUEUE, offload=offload), backend_factory=nft_backend
    )
    # Any socket asking for receive stamps makes the kernel stamp every received
    # packet, and NFQUEUE then passes the stamp on (NFQA_TIMESTAMP).
    stamper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stamper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    span, leak = _Span(), _Leak()
    daemon.start()
    assert daemon.queue is not None
    if offload:
        assert daemon.enforcer is not None
        leak.attach(daemon)
    print("ready", flush=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(daemon.queue.fileno(), selectors.EVENT_READ)
        while True:
            sel.select(1.0)
            span.add(daemon.on_queue())
    except Stop:
        pass
    finally:
        daemon.stop()
        stamper.close()
    return {**span.result(), **leak.result(), "banned_drops": daemon.pipeline.counters.banned_drops}


def _inner_update(mode: str, rules: Path) -> dict[str, Any]:
    """The --update recipe under one banned source's flood: user-space CPU seconds, with
    every packet decided in user space, or with stamping offload (the kernel drops and
    logs; user space replays the logged drops' stamps)."""
    from recentd.cli.run import nft_backend  # noqa: PLC0415
    from recentd.daemon import Daemon, DaemonConfig  # noqa: PLC0415
    from recentd.live.nflog import NflogReader  # noqa: PLC0415

    offload = mode == "update-offload"
    daemon = Daemon(DaemonConfig([rules], queue_num=QUEUE, offload=offload),
                    backend_factory=nft_backend, stamp_reader=NflogReader)  # fmt: skip
    daemon.start()
    assert daemon.queue is not None
    if offload:
        assert daemon.planner is not None and daemon.planner.case.recipe, "no stamping offload"
    span = _Span()
    sel = selectors.DefaultSelector()
    sel.register(daemon.queue.fileno(), selectors.EVENT_READ, "queue")
    if daemon.stamp_reader is not None:
        sel.register(daemon.stamp_reader.fileno(), selectors.EVENT_READ, "stamps")
    cpu, times = time.process_time(), os.times()
    print("ready", flush=True)
    try:
        while True:
            for key, _mask in sel.select(1.0):
                if key.data == "queue":
                    span.add(daemon.on_queue())
                else:
                    daemon.on_stamps()
    except Stop:
        pass
    finally:
        cpu, end = time.process_time() - cpu, os.times()
        stamps = daemon.stamps_read
        lost = 0 if daemon.stamp_reader is None else daemon.stamp_reader.lost
        daemon.stop()
    return {**span.result(), "cpu_s": cpu, "stamps": stamps, "lost": lost,
            "user_s": end.user - times.user, "sys_s": end.system - times.system}


class _Leak:
    """Packets of banned sources that reached user space, split by the kernel's stamp.

    ``committed[src]`` is the wall clock right after libnftables returned from the
    transaction adding the source's ban: from then on the ban rule (priority -10,
    before the iptables hooks) drops the source. A packet's NFQA_TIMESTAMP is taken
    when the kernel received it, before any netfilter hook. So a packet of a banned
    source reaching user space is either

    - *before*: stamped at or before the commit — it had passed the ban rule and
      was queued (or on its way) when the ban landed; unavoidable, and the pipeline
      drops it without asking the rules;
    - *after* (the leak): stamped after the commit — the kernel should have dropped
      it; this must be 0;
    - *unstamped*: no NFQA_TIMESTAMP (the kernel did not stamp it): cannot tell.

    The deciding packet itself (the DROP that planned the ban) is not counted.
    """

    def __init__(self) -> None:
        self.committed: dict[int, int] = {}
        self.deciding: set[int] = set()
        self.before = self.after = self.unstamped = 0
        self.probe_base: dict[int, int] = {}
        self.latencies: list[int] = []
        #: Of each probe's latency, the libnftables transaction's part.
        self.commits: list[int] = []

    def attach(self, daemon: Any) -> None:
        backend = daemon.enforcer.backend
        add_many = backend.add_many

        def timed_add_many(bans: list[Any]) -> None:
            start = time.monotonic_ns()  # the engine's DROP verdict was microseconds ago
            add_many(bans)
            committed = time.monotonic_ns()
            wall = time.time_ns()
            for ban in bans:
                self.committed[int(ban.addr)] = wall
                self.deciding.add(int(ban.addr))
            probes = [int(b.addr) for b in bans if int(b.addr) in self.probe_base]
            if len(bans) == 1 and probes:
                first = _first_kernel_drop(backend, self.probe_base[probes[0]])
                self.latencies.append(first - start)
                self.commits.append(committed - start)

        backend.add_many = timed_add_many
        daemon.pipeline.on_verdict = self.on_verdict
        self.backend = backend

    def on_verdict(self, packet: Any, _verdict: int, queued: Any) -> None:
        src = packet.src
        commit = self.committed.get(src)
        if commit is None:
            if src >= PROBE_BASE and src not in self.probe_base:  # a probe's first packet
                self.probe_base[src] = self.backend.dropped()
        elif src in self.deciding:
            self.deciding.discard(src)
        elif not queued.timestamp_ns:
            self.unstamped += 1
        elif queued.timestamp_ns > commit:
            self.after += 1
        else:
            self.before += 1

    def result(self) -> dict[str, Any]:
        return {"leak": self.after, "before": self.before, "unstamped": self.unstamped,
                "bans": len(self.committed),
                "latency_ms": [ns / 1e6 for ns in self.latencies],
                "commit_ms": [ns / 1e6 for ns in self.commits]}  # fmt: skip


def _first_kernel_drop(backend: Any, baseline: int, limit_s: float = 1.0) -> int:
    deadline = time.monotonic_ns() + int(limit_s * 1e9)
    while time.monotonic_ns() < deadline:
        if backend.dropped() > baseline:
            return time.monotonic_ns()
    return deadline


# ---- the orchestrator ------------------------------------------------------------------------


class Bed:
    def __init__(self) -> None:
        tag = os.urandom(3).hex()
        self.server, self.client = f"lvb-{tag}-s", f"lvb-{tag}-c"
        self.vs, self.vc = f"lvb{tag}s", f"lvb{tag}c"

    def up(self) -> None:
        s, c = self.server, self.client
        make_veth_pair(s, c, self.vs, self.vc)
        sh("ip", "-n", s, "addr", "add", f"{SERVER}/24", "dev", self.vs)
        sh("ip", "-n", c, "addr", "add", f"{CLIENT}/24", "dev", self.vc)
        for ns, dev in ((s, self.vs), (c, self.vc)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
        sh("ip", "-n", c, "route", "add", "local", SOURCES, "dev", "lo")
        sh("ip", "-n", s, "route", "add", SOURCES, "via", CLIENT, "dev", self.vs)
        self.mac_s = self._mac(s, self.vs)
        sh(
            "ip",
            "-n",
            s,
            "neigh",
            "replace",
            CLIENT,
            "lladdr",
            self._mac(c, self.vc),
            "dev",
            self.vs,
            "nud",
            "permanent",
        )
        sh(
            "ip",
            "-n",
            c,
            "neigh",
            "replace",
            SERVER,
            "lladdr",
            self.mac_s,
            "dev",
            self.vc,
            "nud",
            "permanent",
        )

    def _mac(self, ns: str, dev: str) -> str:
        return sh("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/address").stdout.strip()

    def down(self) -> None:
        for ns in (self.server, self.client):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)

    def flood(self, pktgen: Path, *args: str) -> dict[str, Any]:
        out = sh(
            "ip", "netns", "exec", self.client, *_pin(FLOOD_CPU), str(pktgen), "-i", self.vc,
            "-m", self.mac_s, *args,
        ).stdout  # fmt: skip
        return dict(json.loads(out.strip().splitlines()[-1]))

    def phase(
        self, mode: str, rules: Path, floods: list[list[str]], pktgen: Path
    ) -> dict[str, Any]:
        return self.inner_phase(Path(__file__).resolve(), ["--inner", mode, "--rules", str(rules)],
                                floods, pktgen, what=mode, timeout=20)  # fmt: skip

    def inner_phase(self, script: Path, inner: list[str], floods: list[list[str]],
                    pktgen: Path, *, what: str, timeout: float = 30) -> dict[str, Any]:
        """Run ``script inner…`` in the server namespace on the consumer's CPU; once it
        prints a line starting ``ready``, send ``floods`` from the client, then SIGTERM it:
        its last line of output is JSON, returned (the consumer's own figures)."""
        argv = ["ip", "netns", "exec", self.server, *_pin(CONSUMER_CPU), sys.executable,
                str(script), *inner]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        try:
            assert proc.stdout is not None
            if not proc.stdout.readline().startswith("ready"):
                raise RuntimeError(f"{what}: inner process failed")
            for args in floods:
                self.flood(pktgen, *args)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return dict(json.loads(out.strip().splitlines()[-1]))


def _update_flood(bed: Bed, workdir: Path, seconds: float, pktgen: Path) -> float:
    """User-space CPU for one banned source's flood against the --update recipe, with
    stamping offload, as a percentage of deciding it in user space (same run)."""
    rules = workdir / "update.rules"
    rules.write_text(UPDATE_RECIPE)
    flood = [["-s", "10.66.1.9", "-n", "1", "-t", str(seconds), "-r", "50000"]]
    user = bed.phase("update-user", rules, flood, pktgen)
    kernel = bed.phase("update-offload", rules, flood, pktgen)
    pct = 100.0 * kernel["cpu_s"] / max(user["cpu_s"], 1e-9)
    # Beside it, per packet: a logged drop's cost against a decided packet's (user space
    # alone decides only part of the flood when the machine is busy; fail-open passes the rest).
    per_drop = kernel["cpu_s"] / max(kernel["stamps"], 1) * 1e6
    per_decision = user["cpu_s"] / max(user["verdicts"], 1) * 1e6
    print(f"--update flood, 50k pps from one source for {seconds:.0f} s: user space "
          f"{user['cpu_s']:.3f} CPU s deciding {user['verdicts']} packets; with offload "
          f"{kernel['cpu_s']:.3f} CPU s ({kernel['verdicts']} decided, {kernel['stamps']} "
          f"logged drops replayed, {kernel['lost']} log overflows) = {pct:.1f}%; "
          f"per packet {per_drop:.2f} µs logged vs {per_decision:.1f} µs decided "
          f"({100 * per_drop / max(per_decision, 1e-9):.1f}%); user/sys {user['user_s']:.2f}/"
          f"{user['sys_s']:.2f} s vs {kernel['user_s']:.2f}/{kernel['sys_s']:.2f} s",
          flush=True)  # fmt: skip
    return pct


def _pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


def compile_pktgen(workdir: Path) -> Path:
    binary = workdir / "pktgen_syn"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(binary), str(HERE / "pktgen_syn.c")], check=True
    )
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--inner",
        choices=("bare", "bare-drop", "engine", "offload", "nfq", "update-user", "update-offload"),
        help=argparse.SUPPRESS
    )
    parser.add_argument("--rules", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=FLOOD_S, help="flood length per phase")
    parser.add_argument("--only", choices=("update",),
                        help="run only this phase (its figure alone; for iterating)")
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.rules)
        return 0
    if os.geteuid() != 0:
        print("bench/live.py needs root (network namespaces)", file=sys.stderr)
        return 1
    workdir, bed = Path(tempfile.mkdtemp(prefix="recentd-bench-")), Bed()
    try:
        if args.only == "update":
            pktgen = compile_pktgen(workdir)
            bed.up()
            pct = _update_flood(bed, workdir, args.seconds, pktgen)
            print(f"update_flood_user_cost_pct={pct:.1f}")
            return 0
        return _measure(bed, workdir, args.seconds)
    finally:
        bed.down()
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(bed: Bed, workdir: Path, seconds: float) -> int:
    pktgen = compile_pktgen(workdir)
    rules = workdir / "seed.rules"
    rules.write_text(SEED)
    bed.up()
    flood = [["-s", "10.66.1.1", "-n", "64", "-t", str(seconds)]]
    bare = bed.phase("bare", rules, flood, pktgen)
    print(
        f"bare:   {bare['verdicts']} verdicts in {bare['seconds']:.2f} s = {bare['vps']:.0f}/s",
        flush=True,
    )
    engine = bed.phase("engine", rules, flood, pktgen)
    print(
        f"engine: {engine['verdicts']} verdicts in {engine['seconds']:.2f} s = {engine['vps']:.0f}/s",
        flush=True,
    )
    # The engine drops nearly all of this flood, and a dropped packet costs the kernel less
    # than an accepted one (no reply to send): the bare consumer dropping everything is
    # the stricter reference, reported beside the (bare_vps, accepting).
    dropping = bed.phase("bare-drop", rules, flood, pktgen)
    print(f"bare, dropping all: {dropping['vps']:.0f}/s; engine/bare = "
          f"{engine['vps'] / max(bare['vps'], 1):.2f} (accepting), "
          f"{engine['vps'] / max(dropping['vps'], 1):.2f} (dropping)", flush=True)
    try:
        import netfilterqueue  # noqa: F401, PLC0415

        nfq = bed.phase("nfq", rules, flood, pktgen)
        print(f"NetfilterQueue accept-all: {nfq['vps']:.0f}/s vs raw batched consumer {bare['vps']:.0f}/s "
              f"(x{bare['vps'] / max(nfq['vps'], 1):.2f})", flush=True)  # fmt: skip
    except ImportError:
        print("NetfilterQueue not installed: comparison skipped")
    probes = [
        ["-s", f"10.66.1.{200 + i}", "-n", "1", "-r", "20000", "-c", "4000"] for i in range(5)
    ]
    offload = bed.phase(
        "offload",
        rules,
        [["-s", "10.66.1.1", "-n", "64", "-t", str(seconds), "-r", "50000"], *probes],
        pktgen,
    )
    latency = statistics.median(offload["latency_ms"]) if offload["latency_ms"] else float("nan")
    print(f"offload: {offload['bans']} bans; packets of banned sources reaching user space: "
          f"{offload['before']} queued before the ban (dropped unevaluated: "
          f"{offload['banned_drops']}), {offload['leak']} arriving after it, "
          f"{offload['unstamped']} unstamped; ban latency per probe (ms): "
          f"{[round(x, 2) for x in offload['latency_ms']]}, of which the nft transaction "
          f"{[round(x, 2) for x in offload['commit_ms']]}")  # fmt: skip
    pct = _update_flood(bed, workdir, seconds, pktgen)
    print(f"offload_queued_before_ban_pkts={offload['before']}")
    print(f"engine_vps={engine['vps']:.0f} bare_vps={bare['vps']:.0f} "
          f"offload_leak_pkts={offload['leak']} ban_latency_ms={latency:.2f} "
          f"update_flood_user_cost_pct={pct:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
