"""What a replay reports: each packet's fate (:class:`ReplayVerdict`) and the totals
(:class:`ReplaySummary`, per source in :class:`SourceStats`).

Rules: a summary counts every record once, whichever strategy decided it
(:mod:`recentd.replay.strategy`); sources are keyed by ``(family, address)`` as
integers and turned into text only when printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from recentd.packets.conntrack import CtState
from recentd.packets.packet import Packet, ip_of


class ReplayVerdict(NamedTuple):
    """The fate of one captured packet.

    Attributes:
        n: 1-based packet number in the capture.
        ts_ns: its timestamp.
        verdict: ``"ACCEPT"``, ``"DROP"`` or ``"REJECT"``.
        hook: the hook it traversed, or ``None`` when it traversed none.
        packet: the decoded packet (``None`` for undecodable records).
        ctstate: its connection-tracking state.
        note: why it was not evaluated, when it was not.
    """

    n: int
    ts_ns: int
    verdict: str
    hook: str | None
    packet: Packet | None
    ctstate: CtState | None = None
    note: str = ""

    def as_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "n": self.n,
            "ts": f"{self.ts_ns // 1_000_000_000}.{self.ts_ns % 1_000_000_000:09d}",
            "verdict": self.verdict,
            "hook": self.hook,
        }
        if self.packet is not None:
            record["src"] = str(ip_of(self.packet.family, self.packet.src))
            record["dst"] = str(ip_of(self.packet.family, self.packet.dst))
            record["proto"] = self.packet.proto
        if self.ctstate is not None and self.ctstate.name:
            record["ctstate"] = self.ctstate.name
        if self.note:
            record["note"] = self.note
        return record


@dataclass
class SourceStats:
    """One source's totals. ``first_n``: its first packet's number (ties in rankings
    keep first-seen order); ``first_drop_n``/``first_drop_ns``: its first drop's."""

    first_n: int
    packets: int = 0
    dropped: int = 0
    first_drop_ns: int | None = None
    first_drop_n: int | None = None


@dataclass
class ReplaySummary:
    """Totals of a replay, per source address and overall."""

    packets: int = 0
    evaluated: int = 0
    undecodable: int = 0
    #: packets decided from remembered decisions by their raw bytes (replay's fast path)
    remembered: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    #: per source, keyed by (family, address): turned into text only when printed
    sources: dict[tuple[int, int], SourceStats] = field(default_factory=dict)

    def add(self, result: ReplayVerdict) -> None:
        self.packets += 1
        self.verdicts[result.verdict] = self.verdicts.get(result.verdict, 0) + 1
        packet = result.packet
        if packet is None:
            self.undecodable += 1
            return
        if result.hook is None:
            return
        self.evaluated += 1
        stats = self.sources.get((packet.family, packet.src))
        if stats is None:
            stats = self.sources[(packet.family, packet.src)] = SourceStats(result.n)
        stats.packets += 1
        if result.verdict != "ACCEPT":
            stats.dropped += 1
            if stats.first_drop_ns is None:
                stats.first_drop_ns, stats.first_drop_n = result.ts_ns, result.n

    def by_source(self) -> list[tuple[str, SourceStats]]:
        """Sources as text, most dropped first."""
        ranked = sorted(self.sources.items(),
                        key=lambda item: (-item[1].dropped, -item[1].packets, item[1].first_n))
        return [(str(ip_of(family, addr)), stats) for (family, addr), stats in ranked]
