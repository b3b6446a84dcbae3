"""A transcript helper for the core: rules written as iptables options, packets in, results out.

    net = Net(origin)
    ssh_set = net.rule("--set --name SSH")
    ssh_drop = net.rule("--update --seconds 60 --hitcount 4 --name SSH")
    net.at(0).send("10.77.0.2", ssh_set, ssh_drop)   # -> [True, False]

Times given to ``at`` are ticks relative to the clock origin, so the same
transcript can be replayed with the clock starting anywhere (wrap immunity).
"""

from __future__ import annotations

import ipaddress
import shlex

from recentd.packets import ip_of
from recentd.recent import (
    ModuleParams,
    ProcFile,
    Quirks,
    RecentMatch,
    RecentOption,
    RecentTables,
    parse_recent,
    render_listing,
)

HZ = 250


def options(text: str) -> list[RecentOption]:
    """``"! --update --seconds 60"`` -> RecentOption list, as the rule parser would give."""
    out: list[RecentOption] = []
    words = shlex.split(text)
    inverted = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            inverted = True
            i += 1
            continue
        takes_value = word in ("--seconds", "--hitcount", "--name", "--mask")
        value = words[i + 1] if takes_value and i + 1 < len(words) else None
        out.append(RecentOption(word, value, inverted))
        inverted = False
        i += 2 if takes_value else 1
    return out


def match(text: str, family: int = 4) -> RecentMatch:
    return parse_recent(options(text), family)


def addr(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


class Net:
    """One namespace's tables, a clock with a chosen origin, and helpers to drive them."""

    def __init__(
        self, origin: int = 0, *, params: ModuleParams | None = None, quirks: Quirks | None = None
    ) -> None:
        self.origin = origin
        self.now = origin
        self.tables = RecentTables(params, hz=HZ, quirks=quirks)

    def rule(self, text: str, family: int = 4) -> RecentMatch:
        rule = match(text, family)
        self.tables.acquire(rule)
        return rule

    def at(self, ticks: int) -> Net:
        self.now = self.origin + ticks
        return self

    def send(self, src: str, *rules: RecentMatch, ttl: int = 64) -> list[bool]:
        """One packet from ``src`` through ``rules`` in order, every rule evaluated
        (like matches in separate rules that all see the packet)."""
        family, value = addr(src)
        return [
            self.tables[rule.name].evaluate(rule, family, value, ttl, self.now) for rule in rules
        ]

    def proc(self, name: str, line: bytes) -> int:
        return ProcFile(self.tables[name]).write(line, self.now)

    def stamps(self, name: str, src: str) -> tuple[int, ...] | None:
        entry = self.tables[name].get(*addr(src))
        return None if entry is None else tuple(s - self.origin for s in entry.stamps)

    def nstamps(self, name: str, src: str) -> int:
        stamps = self.stamps(name, src)
        return 0 if stamps is None else len(stamps)

    def listed(self, name: str) -> list[str]:
        """Addresses in the table, least recently refreshed first."""
        return [str(ip_of(entry.family, entry.addr)) for entry in self.tables[name]]

    def listing(self, name: str) -> str:
        return render_listing(self.tables[name])
