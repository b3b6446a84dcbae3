"""The live queue as a source of packet batches: the conformance suite with real packets,
in a throw-away network namespace (root; the host's firewall is never touched).

In the namespace 192.0.2.0/24 is local on the loopback (AnyIP), so a UDP socket bound to
any of its addresses sends from it; iptables queues those datagrams at INPUT. Each
datagram carries the wall time the suite asked for (8 bytes), which the harness reads
back with the source address. The damaged input is a UDP datagram cut inside its header
(sent through a raw socket): the queue hands it over like any packet, and it says
nothing.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.live.netns import python_in_namespace

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables-legacy") is None,
                       reason="needs root and iptables-legacy (NFQUEUE in a namespace)"),
]  # fmt: skip

INNER = """
import ipaddress, socket, struct, subprocess

from recentd.errors import SourceError
from recentd.live.nfqnl import NF_ACCEPT
from recentd.packets.decode import decode_ip
from recentd.sources import SourceState
from recentd.sources.queue import QueueSource
from recentd.testing.sources import Expected, check_source

QUEUE, SERVER, PORT = 47, "192.0.2.100", 9
for argv in (["ip", "link", "set", "lo", "up"],
             ["ip", "route", "add", "local", "192.0.2.0/24", "dev", "lo"],
             ["iptables-legacy", "-w", "-A", "INPUT", "-s", "192.0.2.0/24", "-d", SERVER,
              "-p", "udp", "-j", "NFQUEUE", "--queue-num", str(QUEUE)]):
    subprocess.run(argv, check=True)


class QueueHarness:
    current = None

    def open(self, checkpoint):
        self.current = QueueSource.of(QUEUE)
        return self.current

    def emit(self, batch):
        for item in batch:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((str(item.address), 0))
                sock.sendto(struct.pack("!Q", item.wall_ns), (SERVER, PORT))

    def emit_garbage(self):
        cut = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 23, 0, 0, 64, socket.IPPROTO_UDP, 0,
                          socket.inet_aton("192.0.2.200"), socket.inet_aton(SERVER))
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
            raw.sendto(cut + b"\\x00\\x01\\x02", (SERVER, 0))


harness = QueueHarness()


def seen(batches):
    # Read at once (a batch lives until the next read), and answered: a reader of the
    # queue owes the kernel a verdict for every packet.
    found = []
    for batch in batches:
        for packet in batch.packets():
            try:
                decoded = decode_ip(packet.payload)
            except SourceError:
                continue
            if decoded.dport == PORT and decoded.length == 36:
                wall_ns = struct.unpack_from("!Q", packet.payload, 28)[0]
                found.append(Expected(None, ipaddress.IPv4Address(decoded.src), wall_ns))
        harness.current.answer(batch, [NF_ACCEPT] * len(batch))
    return found


check_source(harness, seen=seen, keeps=False)
# closed: the kernel unbound the queue; a source over a queue another socket holds is
# degraded, and says why
holder = QueueSource.of(QUEUE)
second = QueueSource.of(QUEUE)
assert second.status().state is SourceState.DEGRADED, second.status()
assert second.read() == [] and second.fileno() is None
print("degraded:", second.status().detail)
holder.close()
assert second.read() == [] and second.status().state is SourceState.OK  # bound on retry
second.close()
print("conforms")
"""


def test_the_queue_conforms_with_real_packets() -> None:
    done = python_in_namespace("rdqsrc", INNER)
    assert done.stdout.splitlines()[-1] == "conforms", done.stdout
    assert "degraded: nfqueue: queue 47: bind queue" in done.stdout
