"""Throughput of the seed recipe on a stream of SYN packets (reported, loosely bounded)."""

from __future__ import annotations

import time

import pytest

from recentd.packets.packet import IPPROTO_TCP, TCP_SYN, Packet
from recentd.rules import CtState, Engine, Hook, parse_ruleset_text
from tests.rules.test_transcripts import SSH_RECIPE

pytestmark = pytest.mark.slow


def test_seed_recipe_packets_per_second() -> None:
    engine = Engine(parse_ruleset_text(SSH_RECIPE).ruleset)
    packets = [Packet(4, 0x0A000000 + i % 5000, 0x0A000001, 64, IPPROTO_TCP, 60, sport=40000,
                      dport=22, tcp_flags=TCP_SYN) for i in range(100_000)]
    evaluate, new = engine.evaluate, CtState.NEW
    start = time.perf_counter()
    for i, packet in enumerate(packets):
        evaluate(packet, Hook.INPUT, 1000 + i // 100, ctstate=new)
    rate = len(packets) / (time.perf_counter() - start)
    print(f"seed recipe: {rate:,.0f} SYN packets/s")
    assert rate > 20_000  # a regression guard only; typical is ~200 000/s
