"""The raw consumer against the kernel, in a namespace: recvmmsg batches, the copy range,
kernel stamps, and coalesced verdicts that accept and drop the right packets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.live.netns import CLIENT4, REPO, SERVER4, Testbed, sh

pytestmark = [pytest.mark.netns]

QUEUE = 40
#: In the server namespace: queue UDP to port 9999, drop odd ids, accept even ones,
#: and report what the consumer saw and what the UDP socket then received.
INNER = f"""
import json, selectors, socket, subprocess, sys, time
from recentd.live.nfqueue import RawQueue
from recentd.packets.decode import decode_ip
queue = RawQueue({QUEUE}, count=2, copy_range=128)
if sys.argv[2] == "recv_into":
    queue._mmsg = None  # the fallback without recvmmsg
rule = ["-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", "{QUEUE + 1}"]
subprocess.run(["iptables-legacy", "-w", "-I", "INPUT", *rule], check=True)
stamper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
stamper.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS: the kernel stamps packets
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("{SERVER4}", 9999))
rx.settimeout(0.5)
print("ready", flush=True)
seen, want = [], int(sys.argv[1])
sel = selectors.DefaultSelector()
sel.register(queue.fileno(), selectors.EVENT_READ)
deadline = time.monotonic() + 10
while len(seen) < want and time.monotonic() < deadline:
    sel.select(0.5)
    def decide(batch):
        out = []
        for p in batch.packets():
            d = decode_ip(p.payload)
            seen.append([p.packet_id, p.queue, len(p.payload), d.length, d.dport,
                         p.timestamp_ns > 0, p.indev > 0])
            out.append(p.packet_id % 2)  # odd ids: NF_ACCEPT (1)
        return out
    queue.process(decide)
got = []
try:
    while True:
        got.append(len(rx.recv(4096)))
except OSError:
    pass
subprocess.run(["iptables-legacy", "-w", "-D", "INPUT", *rule], check=True)
queue.close()
print(json.dumps({{"seen": seen, "got": got}}), flush=True)
"""
SEND = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{CLIENT4}", 0))
for i in range(20):
    s.sendto(bytes(1000), ("{SERVER4}", 9999))
"""


@pytest.mark.parametrize("receive", ["recvmmsg", "recv_into"])
def test_raw_queue_batches_cuts_stamps_and_verdicts(testbed: Testbed, receive: str) -> None:
    inner = testbed.spawn(
        testbed.server, sys.executable, "-c", INNER, "20", receive, cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert inner.stdout is not None
    assert inner.stdout.readline().strip() == "ready", inner.stderr.read() if inner.stderr else ""
    sh(*testbed.exec(testbed.client, sys.executable, "-c", SEND))
    out, err = inner.communicate(timeout=20)
    result = json.loads(out.strip().splitlines()[-1])
    seen = result["seen"]
    assert len(seen) == 20, err
    ids = [row[0] for row in seen]
    assert ids == sorted(ids) and len(set(ids)) == 20
    # queue N+1, 128 bytes copied of a 1028-byte IP packet whose length the decoder keeps
    assert {tuple(row[1:]) for row in seen} == {(QUEUE + 1, 128, 1028, 9999, True, True)}
    assert len(result["got"]) == sum(1 for i in ids if i % 2) == 10
    assert set(result["got"]) == {1000}
