"""Cut connections: an established TCP session from a banned source stops when its
conntrack entries are deleted (the kernel ban set drops only ``ct state new``, and a
mid-stream packet of a forgotten connection is new again); without the cut it goes on.

Real kernel, two throw-away namespaces (tests/live's testbed): the server namespace holds
the nftables ban table and an echo server on port 22, the client namespace two sources
with one established session each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.live.netns import CLIENT4, OTHER4, REPO, SERVER4, Testbed, sh

SERVER = r"""
import ipaddress, socket, sys, threading
from recentd.backends import BanClass
from recentd.backends.nftables import NftBanBackend
from recentd.policy.conntrack import cut_connections
backend = NftBanBackend(BanClass(6, (22,), True))
backend.install()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 22))
srv.listen()
def echo(c):
    while data := c.recv(100):
        c.sendall(data)
def accept():
    while True:
        threading.Thread(target=echo, args=(srv.accept()[0],), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    addr, how = line.split()
    address = ipaddress.ip_address(addr)
    backend.add(4, address, 60)
    print("banned", cut_connections(address) if how == "cut" else 0, flush=True)
backend.uninstall()
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[2], 22), timeout=3, source_address=(sys.argv[1], 0))
s.sendall(b"1")
print("echo", s.recv(10).decode(), flush=True)
sys.stdin.readline()
s.sendall(b"2")
try:
    print("echo", s.recv(10).decode() or "closed", flush=True)
except OSError:
    print("silent", flush=True)
"""


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "nft", "conntrack"):
        if not shutil.which(tool):
            return f"needs the {tool} tool"
    return ""


@pytest.fixture
def bed() -> Iterator[Testbed]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    testbed = Testbed("lvcut").up()
    try:
        yield testbed
    finally:
        for proc in testbed.procs:  # down() closes their stdout; their stdin is ours
            if proc.stdin is not None:
                proc.stdin.close()
        testbed.down()


def _spawn(bed: Testbed, ns: str, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return bed.spawn(ns, sys.executable, "-c", *argv, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, env=env, cwd=REPO)  # fmt: skip


def _say(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


@pytest.mark.netns
def test_a_ban_with_cut_stops_an_established_session(bed):
    if sh(*bed.exec(bed.server, "conntrack", "-L"), check=False).returncode != 0:
        pytest.skip("the kernel lacks conntrack netlink (conntrack -L fails)")
    server = _spawn(bed, bed.server, SERVER)
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    cut, kept = (_spawn(bed, bed.client, CLIENT, src, SERVER4) for src in (CLIENT4, OTHER4))
    for client in (cut, kept):
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "echo 1"  # sessions established

    assert _say(server, f"{CLIENT4} cut").startswith("banned ")
    assert _say(server, f"{OTHER4} nocut") == "banned 0"
    assert _say(cut, "go") == "silent"  # its next packet is new again: the set drops it
    assert _say(kept, "go") == "echo 2"  # banned, not cut: established traffic goes on
    assert bed.connect(OTHER4, SERVER4, 22) == ["fail"]  # and no new connection either
