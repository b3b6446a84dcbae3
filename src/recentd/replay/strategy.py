"""How a replayer decides a chunk of records: the strategies it chooses between.

Rules:

1. A strategy replays every record of a chunk, in order, into the replayer's summary,
   tables, counters and connection table — exactly what replaying the records one by
   one (:meth:`Stepper.feed`) does; only the cost differs.
2. A strategy reaches the replayer only through :class:`Stepper` (its state and its
   one-record steps), so strategies never import the replayer, and the replayer picks
   one (:meth:`recentd.replay.Replayer.replay`) without being imported by them.
3. :class:`RecordByRecord` applies everywhere; the columns strategy
   (:mod:`recentd.replay.columns`, numpy) where the replayer says it applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from recentd.packets.capture import CapturedPacket
    from recentd.packets.columns import Chunk
    from recentd.packets.conntrack import ConnTracker, CtResult
    from recentd.packets.packet import Packet
    from recentd.replay.summary import ReplaySummary, ReplayVerdict
    from recentd.rules.model import Hook


class Stepper(Protocol):
    """What a strategy uses of its replayer."""

    summary: ReplaySummary
    conntrack: ConnTracker
    hz: int
    hook_enum: Hook

    def feed(self, record: CapturedPacket) -> ReplayVerdict:
        """One record, tracked and decided (not counted into the summary)."""
        ...

    def decide(self, n: int, ts_ns: int, packet: Packet, tracked: CtResult) -> ReplayVerdict:
        """One tracked packet, decided (not counted into the summary)."""
        ...


class Strategy(Protocol):
    """A way to replay a chunk (rule 1)."""

    def replay(self, chunk: Chunk) -> None:
        """Replay every record of ``chunk``, in order."""
        ...


class RecordByRecord:
    """Every record decoded and fed on its own: what every other strategy must equal."""

    def __init__(self, stepper: Stepper) -> None:
        self.stepper = stepper

    def replay(self, chunk: Chunk) -> None:
        feed, add = self.stepper.feed, self.stepper.summary.add
        for index in range(len(chunk)):
            add(feed(chunk.record(index)))
