"""Benchmark of connection tracking: nanoseconds per packet on the common paths.

Each path feeds prebuilt :class:`Packet` values (building them is not timed) to
``ConnTracker.classify`` and, where replay would, ``commit`` — exactly the two calls
``Replayer.feed`` makes. Packets are 1 µs apart in packet time. Paths:

* ``new_syn``: every packet a SYN with a new 5-tuple, never committed (the SYN-flood
  replay: the recipe drops most of them, so no entry is ever created).
* ``new_syn_commit``: the same, each one accepted and committed.
* ``established``: data and ACKs both ways on 1,000 established TCP connections.
* ``udp_known``: datagrams both ways on 1,000 known UDP flows.
* ``udp_new``: every datagram a new UDP flow, committed.

Each figure is the best of five runs of ``--packets`` packets (default 200,000), so
a ``*_commit``/``udp_new`` run ends with 200,000 entries and includes the garbage
collector's work for them.

Before (the module as first written, commit 9ab3d84, 649 lines; 2-core VM, Python
3.11.7), measured with this script on a copy of that module::

    git show 9ab3d84:src/recentd/packets/conntrack.py > /tmp/ct_orig/conntrack_orig.py
    PYTHONPATH=/tmp/ct_orig python bench/conntrack.py --module conntrack_orig

    new_syn          2418 ns/packet
    new_syn_commit   8968 ns/packet
    established      3214 ns/packet
    udp_known        1109 ns/packet
    udp_new          4544 ns/packet

After: run it (``python bench/conntrack.py``); each line shows the speed-up over the
figures above. The last line is the summary:
``conntrack_ns_new_syn=<N> conntrack_ns_established=<M>``.

Run: ``python bench/conntrack.py [--packets N] [--module recentd.packets.conntrack]``
(``--module`` times another implementation with the same API, e.g. the old copy).
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from typing import Any

from recentd.packets.packet import IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_PSH, TCP_SYN, Packet

CLIENTS = 0xC6336400  # 198.51.100.0: clients count up from here
SERVER = 0xC0000201  # 192.0.2.1
US = 1_000
CONNS = 1_000

BEFORE = {"new_syn": 2418, "new_syn_commit": 8968, "established": 3214, "udp_known": 1109,
          "udp_new": 4544}


def tcp(src: int, dst: int, sport: int, dport: int, flags: int, seq: int, ack: int = 0,
        payload: int = 0) -> Packet:
    return Packet(family=4, src=src, dst=dst, ttl=64, proto=IPPROTO_TCP, length=40 + payload,
                  sport=sport, dport=dport, tcp_flags=flags, tcp_seq=seq, tcp_ack=ack,
                  tcp_window=64240, payload_len=payload)


def udp(src: int, dst: int, sport: int, dport: int) -> Packet:
    return Packet(family=4, src=src, dst=dst, ttl=64, proto=IPPROTO_UDP, length=40,
                  sport=sport, dport=dport, payload_len=12)


def run(ct: Any, packets: list[Packet], start_ns: int, commit: bool) -> float:
    """Seconds to classify (and maybe commit) ``packets``, 1 µs apart."""
    classify, commit_ = ct.classify, ct.commit
    now = start_ns
    began = time.perf_counter()
    if commit:
        for packet in packets:
            now += US
            commit_(classify(packet, now).pending)
    else:
        for packet in packets:
            now += US
            classify(packet, now)
    return time.perf_counter() - began


def new_syns(n: int) -> list[Packet]:
    return [tcp(CLIENTS + i // 60000, SERVER, 1024 + i % 60000, 22, TCP_SYN, i) for i in range(n)]


def new_udp(n: int) -> list[Packet]:
    return [udp(CLIENTS + i // 60000, SERVER, 1024 + i % 60000, 53) for i in range(n)]


def handshakes(ct: Any) -> int:
    """Open CONNS connections in ``ct``; return the packet time after them."""
    now = 0
    for c in range(CONNS):
        for packet in (tcp(CLIENTS + c, SERVER, 40000, 22, TCP_SYN, 100),
                       tcp(SERVER, CLIENTS + c, 22, 40000, TCP_SYN | TCP_ACK, 5000, 101),
                       tcp(CLIENTS + c, SERVER, 40000, 22, TCP_ACK, 101, 5001)):
            now += US
            ct.commit(ct.classify(packet, now).pending)
    return now


def established_stream(n: int) -> list[Packet]:
    """Client sends 100-byte segments, the server ACKs each: round robin over CONNS."""
    out: list[Packet] = []
    for i in range(n // 2):
        c, rnd = i % CONNS, i // CONNS
        seq = 101 + rnd * 100
        out.append(tcp(CLIENTS + c, SERVER, 40000, 22, TCP_PSH | TCP_ACK, seq, 5001, 100))
        out.append(tcp(SERVER, CLIENTS + c, 22, 40000, TCP_ACK, 5001, seq + 100))
    return out


def udp_stream(n: int) -> list[Packet]:
    out: list[Packet] = []
    for i in range(n // 2):
        c = i % CONNS
        out.append(udp(CLIENTS + c, SERVER, 5353, 53))
        out.append(udp(SERVER, CLIENTS + c, 53, 5353))
    return out


def best(times: int, once: Callable[[], float]) -> float:
    return min(once() for _ in range(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--module", default="recentd.packets.conntrack")
    args = parser.parse_args()
    tracker: Callable[[], Any] = importlib.import_module(args.module).ConnTracker
    n = args.packets
    syns, udps = new_syns(n), new_udp(n)
    stream, datagrams = established_stream(n), udp_stream(n)

    def with_setup(packets: list[Packet], setup: Callable[[Any], int], commit: bool) -> float:
        ct = tracker()
        return run(ct, packets, setup(ct), commit)

    def nothing(ct: Any) -> int:
        return 0

    def udp_flows(ct: Any) -> int:
        run(ct, datagrams[:2 * CONNS], 0, True)  # both directions seen: known flows
        return 2 * CONNS * US

    paths = {
        "new_syn": lambda: with_setup(syns, nothing, False),
        "new_syn_commit": lambda: with_setup(syns, nothing, True),
        "established": lambda: with_setup(stream, handshakes, True),
        "udp_known": lambda: with_setup(datagrams, udp_flows, True),
        "udp_new": lambda: with_setup(udps, nothing, True),
    }
    result: dict[str, int] = {}
    for name, once in paths.items():
        result[name] = round(best(5, once) / n * 1e9)
        print(f"{name:<16} {result[name]:>5} ns/packet   (before: {BEFORE[name]} ns, "
              f"{BEFORE[name] / result[name]:.1f}x)")
    print(f"conntrack_ns_new_syn={result['new_syn']} "
          f"conntrack_ns_established={result['established']}")


if __name__ == "__main__":
    main()
