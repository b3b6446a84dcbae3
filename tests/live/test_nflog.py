"""The NFLOG consumer: wire format round trip, and the kernel's log read in a namespace."""

from __future__ import annotations

import os
import struct

import pytest

from recentd.live.nflog import header_packet, logged_payloads, packet_message
from tests.live.netns import python_in_namespace

V4 = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 61, 6, 0, 0x0A000002, 0x0A000001)
V6 = bytes([0x60, 0, 0, 0, 0, 20, 6, 57]) + (1).to_bytes(16, "big") + (2).to_bytes(16, "big")


def test_logged_headers_round_trip():
    data = packet_message(4717, V4) + packet_message(4717, V6, 1) + packet_message(4717, V4, 2)
    payloads = logged_payloads(data)
    assert payloads == [V4, V6, V4]
    packets = [header_packet(p) for p in payloads]
    assert [(p.family, p.src, p.dst, p.ttl, p.proto) for p in packets if p] == [
        (4, 0x0A000002, 0x0A000001, 61, 6), (6, 1, 2, 57, 6), (4, 0x0A000002, 0x0A000001, 61, 6)]
    assert header_packet(b"\x45\x00") is None


@pytest.mark.netns
def test_the_kernel_log_is_read_in_a_namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    code = (
        "import socket, subprocess, time\n"
        "from recentd.live.nflog import NflogReader, header_packet\n"
        "subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)\n"
        "r = NflogReader(4717)\n"
        "subprocess.run(['nft', '-f', '-'], check=True, text=True, input='table inet t { "
        "chain o { type filter hook output priority 0; udp dport 9 log group 4717 drop; }; }')\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for _ in range(5):\n"
        "    try: s.sendto(b'x', ('127.0.0.1', 9))\n"
        "    except OSError: pass\n"
        "time.sleep(0.1)\n"
        "got = [header_packet(p) for p in r.read()]\n"
        "print(len(got), {(p.family, p.src, p.proto) for p in got if p}, r.lost)\n"
        "r.close()\n"
    )
    done = python_in_namespace("rdt-nflog", code)
    assert done.stdout.strip() == "5 {(4, 2130706433, 17)} 0"
