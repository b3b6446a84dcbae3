"""A transcript helper: rule text in, then "packet at t → verdict" lines."""

from __future__ import annotations

import ipaddress

from recentd.packets.packet import IPPROTO_TCP, TCP_SYN, Packet
from recentd.recent import DEFAULT_HZ, RecentTables
from recentd.rules import CtState, Decision, Engine, Hook, parse_ruleset_text


def addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


def syn(src: str, dport: int = 22, *, dst: str = "10.77.0.1", ttl: int = 64, iif: str = "eth0",
        oif: str = "", proto: int = IPPROTO_TCP, length: int = 60) -> Packet:
    family = 6 if ":" in src else 4
    return Packet(family, addr(src), addr(dst), ttl, proto, length, sport=40000, dport=dport,
                  tcp_flags=TCP_SYN, iif=iif, oif=oif)


class Script:
    """An engine plus a clock in seconds (converted to ticks at HZ)."""

    def __init__(self, rules: str, *, hz: int = DEFAULT_HZ) -> None:
        self.hz = hz
        self.tables = RecentTables(hz=hz)
        self.engine = Engine(parse_ruleset_text(rules, source="script").ruleset, self.tables, hz)

    def ticks(self, seconds: float) -> int:
        return round(seconds * self.hz)

    def send(self, seconds: float, packet: Packet, hook: Hook = Hook.INPUT,
             ctstate: CtState = CtState.NEW) -> Decision:
        return self.engine.evaluate(packet, hook, self.ticks(seconds), ctstate=ctstate)

    def verdict(self, seconds: float, packet: Packet, hook: Hook = Hook.INPUT) -> str:
        return self.send(seconds, packet, hook).verdict.name

    def counters(self, table: str, chain: str) -> list[tuple[int, int]]:
        snapshot = self.engine.snapshot()
        found = snapshot.table(4, table)
        assert found is not None
        chain_obj = found.chain(chain)
        assert chain_obj is not None
        return [(rule.packets, rule.bytes) for rule in chain_obj.rules]
