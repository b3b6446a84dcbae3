"""Two throw-away network namespaces joined by a veth pair: the live tests, ``recentd
demo`` and ``bench/live.py`` run recentd in them, never in the host's own firewall.

Names are ``<prefix>-<random>`` (prefix ``lv…``) so parallel runs never collide;
:meth:`Testbed.down` kills what runs inside and deletes both namespaces, and is
safe to call twice. Every command is an argv list (no shell).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from typing import Any

SERVER4, CLIENT4, OTHER4 = "10.77.0.1", "10.77.0.2", "10.77.0.3"
SERVER6, CLIENT6, OTHER6 = "fd77::1", "fd77::2", "fd77::3"

#: argv: SRC DST PORT N GAP [TIMEOUT] — N connects, one "ok"/"fail" line each (N=0: forever).
CONNECT = r"""
import socket, sys, time
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
n, gap = int(sys.argv[4]), float(sys.argv[5])
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 1.5
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
i = 0
while n == 0 or i < n:
    i += 1
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    s.bind((src, 0))
    try:
        s.connect((dst, port)); print("ok", flush=True)
    except OSError:
        print("fail", flush=True)
    s.close()
    time.sleep(gap)
"""

SERVE = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def make_veth_pair(server: str, client: str, server_if: str, client_if: str) -> None:
    """Create namespaces ``server`` and ``client`` joined by a veth pair (nothing more)."""
    sh("ip", "netns", "add", server)
    sh("ip", "netns", "add", client)
    sh("ip", "-n", server, "link", "add", server_if, "type", "veth",
       "peer", "name", client_if, "netns", client)  # fmt: skip


class Testbed:
    """A server and a client namespace; the client holds two v4 and two v6 sources."""

    __test__ = False

    def __init__(self, prefix: str = "lvt") -> None:
        if not prefix.startswith("lv"):
            raise ValueError(f"namespace prefix must start with 'lv', got {prefix!r}")
        tag = secrets.token_hex(3)
        self.server, self.client = f"{prefix}-{tag}-s", f"{prefix}-{tag}-c"
        self.veth_s, self.veth_c = f"{prefix}{tag}s", f"{prefix}{tag}c"
        self.procs: list[subprocess.Popen[str]] = []

    def up(self) -> Testbed:
        """Create both namespaces (deleting them again if any step fails)."""
        try:
            self._up()
        except (OSError, subprocess.CalledProcessError):
            self.down()
            raise
        return self

    def _up(self) -> None:
        s, c = self.server, self.client
        make_veth_pair(s, c, self.veth_s, self.veth_c)
        for ns, dev, addrs in (
            (s, self.veth_s, (SERVER4, SERVER6)),
            (c, self.veth_c, (CLIENT4, OTHER4, CLIENT6, OTHER6)),
        ):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for addr in addrs:
                plen = "64" if ":" in addr else "24"
                sh("ip", "-n", ns, "addr", "add", f"{addr}/{plen}", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # warm the neighbour caches, so no first connect waits on ARP/ND
        for src, dst in (
            (CLIENT4, SERVER4),
            (OTHER4, SERVER4),
            (CLIENT6, SERVER6),
            (OTHER6, SERVER6),
        ):
            sh(*self.exec(c, "ping", "-c1", "-W2", "-I", src, dst), check=False)

    def exec(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def spawn(self, ns: str, *argv: str, **kw: Any) -> subprocess.Popen[str]:
        proc: subprocess.Popen[str] = subprocess.Popen(self.exec(ns, *argv), text=True, **kw)
        self.procs.append(proc)
        return proc

    def serve(self, port: int) -> None:
        """A TCP listener on ``port`` (both families) in the server namespace."""
        self.spawn(self.server, sys.executable, "-c", SERVE, str(port))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if f":{port} " in sh(*self.exec(self.server, "ss", "-ltnH")).stdout:
                return
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def connect(self, src: str, dst: str, port: int, n: int = 1, gap: float = 0.0) -> list[str]:
        argv = self.exec(
            self.client, sys.executable, "-c", CONNECT, src, dst, str(port), str(n), str(gap)
        )
        return sh(*argv).stdout.split()

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()
        for ns in (self.server, self.client):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)  # only processes inside our namespace
            sh("ip", "netns", "del", ns, check=False)

    def exists(self) -> bool:
        names = sh("ip", "netns", "list", check=False).stdout.split()
        return self.server in names or self.client in names
