"""Port ranges as the tcp, udp and multiport matches store, print and test them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

from recentd.packets.packet import Packet

FULL = (0, 65535)


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int
    invert: bool = False

    @property
    def full(self) -> bool:
        return (self.low, self.high) == FULL

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}:{self.high}"


def save_range(option: str, ports: PortRange | None) -> str:
    """`` [!] --dport 22`` or nothing for an absent or full range (as libxt_tcp does)."""
    if ports is None or ports.full:
        return ""
    return f"{' !' if ports.invert else ''} {option} {ports.text()}"


def print_range(label: str, ports: PortRange | None) -> str:
    """`` dpt:22``, `` dpts:1:2``, `` dpt:!5``."""
    if ports is None or (ports.full and not ports.invert):
        return ""
    plural = "" if ports.low == ports.high else "s"
    return f" {label}{plural}:{'!' if ports.invert else ''}{ports.text()}"


def range_test(field: str, ports: PortRange | None) -> Callable[[Packet], bool] | None:
    """A predicate on ``packet.sport``/``dport``; None when it always holds."""
    if ports is None:
        return None
    low, high, invert = ports.low, ports.high, ports.invert
    get: Callable[[Packet], int] = attrgetter(field)
    if low == high and not invert:
        return lambda packet: get(packet) == low
    # A packet without ports (non-first fragment) never matches, inverted or not.
    return lambda packet: get(packet) >= 0 and (low <= get(packet) <= high) != invert


def range_match(index: Literal[6, 7], ports: PortRange) -> Callable[[Packet, object], bool]:
    """:func:`range_test` as a match on ``packet[index]`` (the sport or dport field).

    The cases are separate closures over plain ints, so that the common single port
    costs one comparison per packet.
    """
    low, high, invert = ports.low, ports.high, ports.invert
    if low == high and not invert:
        return lambda packet, state: packet[index] == low
    # A packet without ports (non-first fragment) never matches, inverted or not.
    if invert:
        return lambda packet, state: packet[index] >= 0 and not low <= packet[index] <= high
    return lambda packet, state: packet[index] >= 0 and low <= packet[index] <= high
