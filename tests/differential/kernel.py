"""The real kernel as the judge: a private pair of network namespaces running xt_recent.

A :class:`KernelBed` makes two namespaces joined by a veth pair (unique names, so
parallel runs cannot collide) and deletes them on exit, also when a test fails.
Only addresses inside them are used: 10.88.0.1 / fd88::1 is the server, and
crafted packets come from 10.88.64.0/18 and fd88:1::/64 (routed back through the
client, so the server's replies are really transmitted and captured).

:meth:`KernelBed.run` loads a rule set into the server's kernel with
``iptables-legacy-restore``, captures the server's interface with tcpdump while
the client namespace sends a plan of frames, and reports which packets the kernel
accepted: UDP datagrams a socket received, TCP SYNs (to a closed port) the kernel
answered with a RST. Then it reads ``/proc/net/xt_recent/*`` and the kernel's
jiffies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from recentd.packets.capture import read_capture

HERE = Path(__file__).resolve().parent
SERVER4, CLIENT4 = "10.88.0.1", "10.88.0.2"
SERVER6, CLIENT6 = "fd88::1", "fd88::2"
UDP_PORT = 5353
#: Every UDP port a scenario sends to: a socket listens on each, so delivery is seen.
UDP_PORTS = (UDP_PORT, 7000, 7001)
TCP_PORT = 2222  # nothing listens: an accepted SYN is answered with a RST


def _run(argv: Sequence[str], *, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(
        list(argv), check=False, input=stdin, capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def kernel_jiffies() -> int:
    with open("/proc/timer_list") as timers:
        for line in timers:
            if line.startswith("jiffies:"):
                return int(line.split()[1])
    raise RuntimeError("no jiffies line in /proc/timer_list")


@dataclass
class KernelRun:
    accepted: set[int]
    capture: Path
    tables: dict[str, str]
    jiffies: int
    realtime_ns: int


class KernelBed:
    def __init__(self, workdir: Path) -> None:
        tag = secrets.token_hex(3)
        self.server, self.client = f"kd{tag}s", f"kd{tag}c"
        self.server_if, self.client_if = f"kd{tag}vs", f"kd{tag}vc"
        self.workdir = workdir
        self.server_mac = self.client_mac = b""

    def ns(self, namespace: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def up(self) -> None:
        s, c = self.server, self.client
        _run(["ip", "netns", "add", s])
        _run(["ip", "netns", "add", c])
        _run(
            [
                "ip",
                "link",
                "add",
                self.server_if,
                "netns",
                s,
                "type",
                "veth",
                "peer",
                "name",
                self.client_if,
                "netns",
                c,
            ]
        )
        for namespace, ifname, v4, v6 in (
            (s, self.server_if, SERVER4, SERVER6),
            (c, self.client_if, CLIENT4, CLIENT6),
        ):
            _run(self.ns(namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_ra=0"))
            _run(self.ns(namespace, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"))
            _run(self.ns(namespace, "sysctl", "-q", "-w", f"net.ipv4.conf.{ifname}.rp_filter=0"))
            _run(self.ns(namespace, "ip", "addr", "add", f"{v4}/24", "dev", ifname))
            _run(self.ns(namespace, "ip", "addr", "add", f"{v6}/64", "dev", ifname, "nodad"))
            _run(self.ns(namespace, "ip", "link", "set", "lo", "up"))
            _run(self.ns(namespace, "ip", "link", "set", ifname, "up"))
        self.server_mac = self._mac(s, self.server_if)
        self.client_mac = self._mac(c, self.client_if)
        mac = ":".join(f"{b:02x}" for b in self.client_mac)
        smac = ":".join(f"{b:02x}" for b in self.server_mac)
        # Static neighbours: no ARP/ND chatter, and replies to crafted sources leave at once.
        for namespace, family, neighbour, lladdr, ifname in (
            (s, "-4", CLIENT4, mac, self.server_if),
            (s, "-6", CLIENT6, mac, self.server_if),
            (c, "-4", SERVER4, smac, self.client_if),
        ):
            _run(self.ns(namespace, "ip", family, "neigh", "replace", neighbour, "lladdr",
                         lladdr, "dev", ifname, "nud", "permanent"))  # fmt: skip
        _run(self.ns(s, "ip", "route", "add", "10.88.64.0/18", "via", CLIENT4))
        _run(self.ns(s, "ip", "-6", "route", "add", "fd88:1::/64", "via", CLIENT6))

    def down(self) -> None:
        for namespace in (self.server, self.client):
            _run(["ip", "netns", "del", namespace], check=False)

    def _mac(self, namespace: str, ifname: str) -> bytes:
        text = _run(self.ns(namespace, "cat", f"/sys/class/net/{ifname}/address")).strip()
        return bytes.fromhex(text.replace(":", ""))

    def frame(self, ip_packet: bytes) -> bytes:
        ethertype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
        return self.server_mac + self.client_mac + struct.pack("!H", ethertype) + ip_packet

    def load(self, rules4: str, rules6: str) -> None:
        """Replace the server's rules: flush first, so every recent table starts empty,
        and forget every tracked connection, so no scenario inherits another's state."""
        _run(self.ns(self.server, "conntrack", "-F"), check=False)
        restores = (("iptables-legacy-restore", rules4), ("ip6tables-legacy-restore", rules6))
        # Both families first: a table lives while any rule of either family names it
        # (spec §4), so flushing one family at a time would hand the old entries on.
        for restore, _ in restores:
            _run(self.ns(self.server, restore), stdin="*filter\nCOMMIT\n")
        for restore, text in restores:
            _run(self.ns(self.server, restore), stdin=text)

    def run(
        self, rules4: str, rules6: str, plan: list[tuple[float, bytes]], name: str
    ) -> KernelRun:
        self.load(rules4, rules6)
        capture = self.workdir / f"{name}.pcap"
        received = self.workdir / f"{name}.udp.json"
        plan_path = self.workdir / f"{name}.plan.json"
        plan_path.write_text(json.dumps([[delay, self.frame(p).hex()] for delay, p in plan]))
        with (
            self._process(
                self.ns(
                    self.server,
                    sys.executable,
                    str(HERE / "receiver.py"),
                    ",".join(map(str, UDP_PORTS)),
                    str(received),
                ),
                ready=b"ready",
            ) as receiver,
            self._process(
                self.ns(
                    self.server,
                    "tcpdump",
                    "-i",
                    self.server_if,
                    "-w",
                    str(capture),
                    "-U",
                    "-n",
                    "--immediate-mode",
                    "-s",
                    "256",
                    "-B",
                    "16384",
                    "ip or ip6",
                ),
                ready=b"listening on",
                stream="stderr",
            ) as tcpdump,
        ):
            _run(
                self.ns(
                    self.client,
                    sys.executable,
                    str(HERE / "sender.py"),
                    self.client_if,
                    str(plan_path),
                )
            )
            time.sleep(0.3)
            tables = self._tables()
            jiffies, realtime_ns = kernel_jiffies(), time.time_ns()
            for process in (tcpdump, receiver):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
        accepted = set(json.loads(received.read_text())) | self._answered_syns(capture)
        return KernelRun(accepted, capture, tables, jiffies, realtime_ns)

    def _tables(self) -> dict[str, str]:
        names = _run(self.ns(self.server, "ls", "/proc/net/xt_recent")).split()
        return {
            name: _run(self.ns(self.server, "cat", f"/proc/net/xt_recent/{name}")) for name in names
        }

    @contextlib.contextmanager
    def _process(
        self, argv: list[str], *, ready: bytes, stream: str = "stdout"
    ) -> Iterator[subprocess.Popen[bytes]]:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            pipe = process.stdout if stream == "stdout" else process.stderr
            assert pipe is not None
            deadline = time.monotonic() + 10
            seen = b""
            while ready not in seen:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{argv} did not start: {seen!r}")
                seen += os.read(pipe.fileno(), 4096)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    @staticmethod
    def _answered_syns(capture: Path) -> set[int]:
        """Ids (sequence numbers) of SYNs the server answered with a RST."""
        answered = set()
        for record in read_capture(capture):
            packet = record.packet
            if packet is None or packet.proto != 6 or packet.sport != TCP_PORT:
                continue
            if packet.tcp_flags & 0x04:
                answered.add((packet.tcp_ack - 1) & 0xFFFFFFFF)
        return answered


def parse_proc_listing(text: str) -> dict[str, tuple[int, int, int, list[int]]]:
    """address -> (ttl, last_seen, oldest_pkt, stamps)."""
    out = {}
    pattern = re.compile(r"src=(\S+) ttl: (\d+) last_seen: (\d+) oldest_pkt: (\d+) (.*)")
    for line in text.splitlines():
        found = pattern.fullmatch(line)
        assert found, line
        stamps = [int(s) for s in found.group(5).split(", ")]
        out[found.group(1)] = (
            int(found.group(2)),
            int(found.group(3)),
            int(found.group(4)),
            stamps,
        )
    return out
