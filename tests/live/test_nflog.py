"""The NFLOG consumer: wire format round trip, a batch read as runs of drops (the same as
reading it message by message), and the kernel's log read in a namespace."""

from __future__ import annotations

import itertools
import os
import struct
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.live.nflog import (
    NFULNL_MSG_PACKET,
    _messages,
    header_packet,
    logged_drops,
    logged_payloads,
    packet_message,
    tick_at,
)
from recentd.recent.ticks import ClockReading
from tests.live.netns import python_in_namespace

V4 = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 61, 6, 0, 0x0A000002, 0x0A000001)
V6 = bytes([0x60, 0, 0, 0, 0, 20, 6, 57]) + (1).to_bytes(16, "big") + (2).to_bytes(16, "big")
#: The reading the batches are read at: HZ 250, a clock well after every stamp below.
NOW = ClockReading(1_800_000_000 * 10**9, 10**12, 250)
#: Attributes the kernel puts before the stamp: input interface, hardware address.
IFINDEX = struct.pack("=HHI", 8, 4, 3)
HWADDR = struct.pack("=HHH2x8s", 16, 8, 6, b"\x02" * 6)


def test_logged_headers_round_trip():
    data = packet_message(4717, V4) + packet_message(4717, V6, 1) + packet_message(4717, V4, 2)
    payloads = logged_payloads(data)
    assert payloads == [V4, V6, V4]
    packets = [header_packet(p) for p in payloads]
    assert [(p.family, p.src, p.dst, p.ttl, p.proto) for p in packets if p] == [
        (4, 0x0A000002, 0x0A000001, 61, 6), (6, 1, 2, 57, 6), (4, 0x0A000002, 0x0A000001, 61, 6)]
    assert header_packet(b"\x45\x00") is None


def test_a_one_source_flood_is_one_run_per_tick():
    start = 1_700_000_000 * 10**9 + 1000  # just after a tick begins (NOW's ticks)
    data = b"".join(packet_message(4717, _v4(9, 64, ident=i), i, wall_ns=start + i * 50_000,
                                   before=IFINDEX + HWADDR) for i in range(400))  # fmt: skip
    runs = logged_drops(data, NOW)
    assert [(r.packet.src, r.count, r.tick - tick_at(NOW, start)) for r in runs] == [
        (9, 80, 0), (9, 80, 1), (9, 80, 2), (9, 80, 3), (9, 80, 4)]


def _v4(src: int, ttl: int, *, ident: int = 0, proto: int = 6, length: int = 40) -> bytes:
    header = struct.pack("!BBHHHBBHII", 0x45, 0, length, ident & 0xFFFF, 0, ttl, proto,
                         ident * 7 & 0xFFFF, src, 0x0A000001)  # fmt: skip
    return header + bytes(range(length - 20))


def _v6(src: int, hop: int, *, ident: int = 0) -> bytes:
    return (bytes([0x60 | ident & 0xF, 0, 0, 0, 0, 20, 6, hop]) + src.to_bytes(16, "big")
            + (2).to_bytes(16, "big"))  # fmt: skip


HEADERS = [  # what a drop's replay reads differs between these
    lambda i: _v4(9, 64, ident=i), lambda i: _v4(9, 63, ident=i), lambda i: _v4(10, 64, ident=i),
    lambda i: _v4(9, 64, ident=i, proto=17), lambda i: _v6(9, 64, ident=i),
    lambda i: _v6(1 << 100, 64, ident=i), lambda i: _v4(9, 64, ident=i, length=28),
]


def _one_by_one(data: bytes) -> list[tuple[tuple[int, ...], int, int]]:
    """The reference: each message parsed alone, then grouped per tick, counted in the
    order of each header's last drop."""
    drops = []
    for kind, body in _messages(data):
        if kind != NFULNL_MSG_PACKET:
            continue
        (payload,) = logged_payloads(_whole(body))
        stamp = _stamp_of(body)
        packet = header_packet(payload)
        assert packet is not None
        drops.append((tuple(packet[:5]), tick_at(NOW, stamp)))
    out = []
    for tick, group in itertools.groupby(drops, key=lambda d: d[1]):
        counted = Counter(header for header, _tick in reversed(list(group)))
        out += [(header, n, tick) for header, n in reversed(counted.items())]
    return out


def _whole(body: memoryview) -> bytes:
    """A message again around its body (its header was cut off by _messages)."""
    return struct.pack("=IHHII", 16 + len(body), NFULNL_MSG_PACKET, 0, 0, 0) + bytes(body)


def _stamp_of(body: memoryview) -> int:
    pos = 4
    while pos + 4 <= len(body):
        size, kind = struct.unpack_from("=HH", body, pos)
        if kind & 0x3FFF == 3:
            sec, usec = struct.unpack_from("!QQ", body, pos + 4)
            return sec * 10**9 + usec * 1000
        pos += (size + 3) & ~3
    return 0


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(HEADERS) - 1), st.integers(1, 60),
                          st.sampled_from([0, 0, 1000, 900_000, 4_000_000])), min_size=1,
                max_size=12),
       st.booleans(), st.sampled_from([b"", IFINDEX, IFINDEX + HWADDR]), st.booleans())
def test_a_batch_reads_as_its_messages_one_by_one(bursts, stamped, before, mixed_before):
    """Bursts of one header (a gap in time before each): runs per tick in the order of the
    last drop, whatever the shapes — one layout (the stride), several (message by message),
    both families in one length, stamped or not."""
    messages, wall, i = [], 1_700_000_000 * 10**9, 0
    for header, count, gap in bursts:
        wall += gap
        for _ in range(count):
            extra = before if not mixed_before or i % 5 else b""
            messages.append(packet_message(4717, HEADERS[header](i), i, before=extra,
                                           wall_ns=wall if stamped else 0))  # fmt: skip
            wall += 1000
            i += 1
    data = b"".join(messages) + struct.pack("=IHHIIi", 20, 3, 2, 0, 0, 0)  # NLMSG_DONE
    got = [(tuple(r.packet[:5]), r.count, r.tick) for r in logged_drops(data, NOW)]
    assert got == _one_by_one(data)


@pytest.mark.netns
def test_the_kernel_log_is_read_in_a_namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    code = (
        "import socket, subprocess, time\n"
        "from recentd.live.nflog import NflogReader\n"
        "subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)\n"
        "r = NflogReader(4717)\n"
        "subprocess.run(['nft', '-f', '-'], check=True, text=True, input='table inet t { "
        "chain i { type filter hook input priority 0; udp dport 9 log group 4717 drop; }; }')\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for _ in range(500):\n"
        "    s.sendto(b'x', ('127.0.0.1', 9))\n"
        "time.sleep(0.1)\n"
        "from recentd.recent.ticks import ClockReading\n"
        "runs = r.read_drops(ClockReading(time.time_ns(), 10**6, 1000))  # ms ticks\n"
        "ago = {10**6 - x.tick for x in runs}  # each run's receive stamp, ms before the read\n"
        "print(sum(x.count for x in runs), {(x.packet.family, x.packet.src, x.packet.proto)"
        " for x in runs}, r.lost, r.drops, all(100 <= ms < 1000 for ms in ago))\n"
        "r.close()\n"
    )
    done = python_in_namespace("rdt-nflog", code)
    assert done.stdout.strip() == "500 {(4, 2130706433, 17)} 0 500 True"
