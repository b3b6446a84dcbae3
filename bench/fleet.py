"""Benchmark: 10 fleet members (processes) on one Redis (issue 15).

Each member is a process with a real :class:`recentd.daemon.Daemon` (seed recipe, offload
to the in-memory ban backend) whose only source is the fleet
(:class:`recentd.fleet.link.FleetSource`: reader and publisher threads, the outbox in its
own state directory), on one ``redis-server`` started here on a private Unix socket with
one ACL user per member (:mod:`recentd.testing.store`; ``appendonly yes`` with Redis's
default ``appendfsync everysec``). A member runs the daemon's side
of the loop: it waits on the fleet's descriptor and reads what is ready.

Phases (times are wall-clock ns, one machine, so one clock):

1. propagation: member 0 bans 200 addresses, one every 10 ms; for each, the time from
   the moment before the ban was handed to the enforcer (decided) to the moment it is in
   each other member's backend (9 × 200 samples): ``propagation_ms_p50``/``p99``;
2. rate: every member bans 1,000 addresses at once (10,000 in all); ``bans_per_s`` is
   10,000 over the time until every member holds all 9,000 of the others';
3. catch-up: member 9 goes away (its sources closed, checkpoint saved); member 0 bans
   10,000 addresses and publishes them, and members 1-8 apply them; member 9 comes back
   (from its checkpoint): ``catchup_s_10k`` is the time until it holds all 10,000.

On one machine the ten members share its cores, so ``bans_per_s`` is bounded by the
machine, not by a member: every ban is applied by nine members, so the machine does nine
members' work per ban. The rate line says how busy the machine was during the phase
(the members', Redis's and everything else's CPU time, from ``/proc``) and the median
CPU time a member spent, which is what one host of a real fleet (a machine of its own)
spends: its ``one core per host`` figure is the fleet-wide rate such hosts sustain.

Targets (issue 15): p99 ≤ 100 ms, bans_per_s ≥ 5,000, catchup_s_10k ≤ 2.

Run: ``python bench/fleet.py``. The last line is
``propagation_ms_p50=<A> propagation_ms_p99=<B> bans_per_s=<C> catchup_s_10k=<D>``.
"""

from __future__ import annotations

import cProfile
import ipaddress
import multiprocessing
import os
import select
import shutil
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Ban, Command
from recentd.daemon import Daemon, DaemonConfig
from recentd.fleet.link import FLEET_ORIGIN, FleetSource, join
from recentd.fleet.merge import Caps
from recentd.fleet.settings import FleetSettings
from recentd.testing.store import Store

MEMBERS = 10
LIST = "SSH"
RULES = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state --state NEW -m recent --set --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH
iptables -I SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4 --name SSH -j DROP
"""
#: The benchmark's origins ban far faster than the default cap allows.
CAPS = Caps(rate_per_min=10**7, max_count=10**7)


class Member:
    """One member process's daemon and fleet source."""

    def __init__(self, root: Path, url: str, host: str, password: Path) -> None:
        state = root / host
        state.mkdir()
        rules = root / "seed.rules"
        self.settings = FleetSettings(url, host, (LIST,), CAPS, password)
        self.arrived: dict[str, int] = {}
        self.decided: dict[str, int] = {}
        config = DaemonConfig([rules], state_dir=state)
        self.daemon = Daemon(config, runner=lambda argv: (0, ""),
                             backend_factory=lambda case: MemoryBanBackend(time.monotonic))  # fmt: skip
        self.membership = join(self.daemon, self.settings)
        self.daemon.command_listeners.append(self._arrival)
        self.daemon._setup_offload()
        self.daemon.open_sources()

    @property
    def fleet(self) -> FleetSource | None:
        return self.membership.source

    def _arrival(self, command: Command) -> None:
        if isinstance(command, Ban) and command.origin.startswith(FLEET_ORIGIN):
            self.arrived.setdefault(str(command.address), time.time_ns())

    def ban(self, addresses: list[str]) -> None:
        assert self.daemon.enforcer is not None
        now = self.daemon.clock.read()
        decided = time.time_ns()
        bans = [Ban(4, ipaddress.IPv4Address(a), now.tick + 600 * now.hz,
                    now.wall_ns + 600 * 10**9, 600, "bench", "packet") for a in addresses]  # fmt: skip
        self.daemon.enforcer.carry_out_bans(bans, now.tick)
        for address in addresses:
            self.decided[address] = decided

    def pump(self) -> None:
        for watched in self.daemon.sources:
            self.daemon.read_source(watched)

    def fileno(self) -> int | None:
        return self.fleet.fileno() if self.fleet is not None else None


def member_main(root: str, url: str, host: str, password: str, conn: Connection) -> None:
    """A member process: pump the fleet; obey the parent's commands. With
    ``RECENTD_BENCH_PROFILE=FILE`` in the environment, member-1 profiles its loop thread
    (cProfile) and writes the statistics to FILE when it stops."""
    profile_to = os.environ.get("RECENTD_BENCH_PROFILE") if host == "member-1" else None
    if profile_to:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            _serve(root, url, host, password, conn)
        finally:
            profiler.disable()
            profiler.dump_stats(profile_to)
    else:
        _serve(root, url, host, password, conn)


def _serve(root: str, url: str, host: str, password: str, conn: Connection) -> None:
    member = Member(Path(root), url, host, Path(password))
    conn.send("ready")
    #: "notify N": the member says when (monotonic s) it holds N remote bans — told, not
    #: polled, so the parent's waiting costs the members nothing.
    target: int | None = None
    while True:
        fds: list[Any] = [conn]
        fleet = member.fileno()
        if fleet is not None:
            fds.append(fleet)
        readable, _, _ = select.select(fds, [], [], 0.05)
        if fleet is not None and fleet in readable:
            member.pump()
        if target is not None and len(member.arrived) >= target:
            conn.send(time.monotonic())
            target = None
        if conn not in readable:
            continue
        command, argument = conn.recv()
        if command == "ban":
            member.ban(argument)
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "loop cpu":  # this thread's: the daemon's loop, not the fleet's threads
            conn.send(time.thread_time())
        elif command == "notify":
            target = argument
            if len(member.arrived) >= argument:
                conn.send(time.monotonic())
                target = None
        elif command == "published":
            conn.send(member.fleet.published if member.fleet is not None else -1)
        elif command == "report":
            conn.send((member.decided, member.arrived))
            member.decided, member.arrived = {}, {}
        elif command == "away":
            member.daemon.close_sources()
            member.membership.source = None
            conn.send("away")
        elif command == "back":
            member.daemon.open_sources()
            conn.send("back")
        elif command == "stop":
            member.daemon.close_sources()
            conn.send("stopped")
            return


def _addresses(base: int, count: int) -> list[str]:
    return [str(ipaddress.IPv4Address(base + i)) for i in range(count)]


def _wait(conns: list[Connection], command: str, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = []
        for conn in conns:
            conn.send((command, None))
            counts.append(conn.recv())
        if all(count >= done for count in counts):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {command} ≥ {done}: {counts}")
        time.sleep(0.005)


def _reached(conns: list[Connection], done: int, timeout: float = 120) -> float:
    """When (monotonic s) the last of ``conns``' members held ``done`` remote bans."""
    for conn in conns:
        conn.send(("notify", done))
    times: list[float] = []
    for conn in conns:
        if not conn.poll(timeout):
            raise SystemExit(f"timed out waiting for {done} bans")
        times.append(conn.recv())
    return max(times)


def _ask(conns: list[Connection], command: str) -> list[float]:
    for conn in conns:
        conn.send((command, None))
    return [conn.recv() for conn in conns]


def _reports(conns: list[Connection]) -> list[tuple[dict[str, int], dict[str, int]]]:
    for conn in conns:
        conn.send(("report", None))
    return [conn.recv() for conn in conns]


def _busy_s() -> tuple[float, float]:
    """(CPU seconds the whole machine spent busy, seconds it spent at all) so far."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return ((sum(ticks) - idle) / hz, sum(ticks) / hz)


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` spent so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(root: Path, store: Store) -> str:
    ctx = multiprocessing.get_context("spawn")
    conns: list[Connection] = []
    processes = []
    for number in range(MEMBERS):
        host = f"member-{number}"
        parent, child = ctx.Pipe()
        process = ctx.Process(target=member_main, args=(str(root), store.url, host,
                                                        str(store.password_file(host)), child))  # fmt: skip
        process.start()
        processes.append(process)
        conns.append(parent)
    try:
        for conn in conns:
            assert conn.recv() == "ready"
        others = conns[1:]

        # 1. propagation
        sent = _addresses(0x0A000000, 200)
        for address in sent:
            conns[0].send(("ban", [address]))
            time.sleep(0.01)
        _reached(others, len(sent))
        reports = _reports(conns)
        decided = reports[0][0]
        latencies = sorted((arrived[a] - decided[a]) / 1e6
                           for _, arrived in reports[1:] for a in sent)  # fmt: skip
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"propagation: {len(latencies)} samples, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
              f"max {latencies[-1]:.2f} ms")  # fmt: skip

        # 2. fleet-wide rate
        assert store.process is not None
        cpu, store_cpu, machine = _ask(conns, "cpu"), _process_cpu_s(store.process.pid), _busy_s()
        loop_cpu = _ask(conns, "loop cpu")
        load = Path("/proc/loadavg").read_text().split()[0]
        start = time.monotonic()
        for number, conn in enumerate(conns):
            conn.send(("ban", _addresses(0x0B000000 + number * 0x10000, 1000)))
        rate_s = _reached(conns, 9000) - start
        spent = [b - a for a, b in zip(cpu, _ask(conns, "cpu"), strict=True)]
        loop_spent = [b - a for a, b in zip(loop_cpu, _ask(conns, "loop cpu"), strict=True)]
        store_cpu = _process_cpu_s(store.process.pid) - store_cpu
        busy, elapsed = (b - a for a, b in zip(machine, _busy_s(), strict=True))
        used = statistics.median(spent)
        bans_per_s = 10_000 / rate_s
        print(f"rate: 10,000 bans (1,000 from each member) held by all in {rate_s:.3f} s; "
              f"CPU per member (median) {used:.3f} s for 9,000 remote + 1,000 own bans, "
              f"{used / 10_000 * 1e6:.1f} µs per ban (one core per host: "
              f"{10_000 / used:.0f} bans/s); the daemon's loop thread "
              f"{statistics.median(loop_spent) / 10_000 * 1e6:.1f} µs per ban, the fleet's "
              f"reader and publisher threads the rest")  # fmt: skip
        cores = elapsed / rate_s
        print(f"machine: {cores:.0f} cores busy {100 * busy / elapsed:.0f} % during the phase: "
              f"members {sum(spent):.2f} CPU s, redis-server {store_cpu:.2f}, everything else "
              f"{busy - sum(spent) - store_cpu:.2f} (load average before: {load})")  # fmt: skip
        _reports(conns)

        # 3. catch-up
        conns[9].send(("away", None))
        conns[9].recv()
        conns[0].send(("published", None))
        before = conns[0].recv()
        for batch in range(10):
            conns[0].send(("ban", _addresses(0x0C000000 + batch * 1000, 1000)))
        _wait([conns[0]], "published", before + 10_000)
        _reached(conns[1:9], 10_000)  # the others are done: member-9 catches up alone
        start = time.monotonic()
        conns[9].send(("back", None))
        conns[9].recv()
        catchup_s = _reached([conns[9]], 10_000) - start
        print(f"catch-up: member-9 came back to 10,000 new bans, held in {catchup_s:.3f} s")
    finally:
        for conn in conns:
            conn.send(("stop", None))
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return (f"propagation_ms_p50={p50:.2f} propagation_ms_p99={p99:.2f} "
            f"bans_per_s={bans_per_s:.0f} catchup_s_10k={catchup_s:.3f}")  # fmt: skip


def main() -> None:
    program = shutil.which("redis-server") or shutil.which("valkey-server")
    if program is None:
        raise SystemExit("needs redis-server (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="recentd-fleet-") as tmp:
        root = Path(tmp)
        (root / "seed.rules").write_text(RULES)
        users = {f"member-{n}": "recentd" for n in range(MEMBERS)}
        store = Store(program, root / "store", users, appendfsync="everysec")
        store.directory.mkdir()
        store.start()
        try:
            print(f"{MEMBERS} members (processes) on {program} at {store.url}")
            line = run(root, store)
        finally:
            store.stop()
    print(line)


if __name__ == "__main__":
    main()
