"""The replayer: captured traffic through a rule set, in virtual time.

Theory of operation: every captured packet is classified by connection tracking,
evaluated by the rule engine at the hook it would traverse, and — only if the
verdict is ACCEPT — confirmed in the connection table, as the kernel confirms a
connection only for packets that leave the hook alive. The clock is the capture's
own: a packet's timestamp, turned into ticks, is ``now`` for the tables. Nothing
here reads the wall clock or a file; the CLI (``recentd replay``) does the I/O.

Which packets traverse the hook: without ``local`` addresses every packet is
taken to traverse it (a capture taken on the protected host's interface, filtered
to its inbound traffic, is the common case). With ``local`` addresses, INPUT sees
packets addressed to them, OUTPUT packets sent from them, and FORWARD the rest;
the others are only tracked, and reported as ``"hook": null``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from recentd.packets.capture import CapturedPacket
from recentd.packets.conntrack import ConnTracker, CtResult
from recentd.packets.packet import Packet
from recentd.recent.ticks import DEFAULT_HZ
from recentd.replay.strategy import RecordByRecord, Strategy
from recentd.replay.summary import ReplaySummary, ReplayVerdict
from recentd.rules.evaluate import Engine, Verdict
from recentd.rules.model import Hook

if TYPE_CHECKING:
    from recentd.packets.columns import Chunk

HOOKS = ("INPUT", "FORWARD", "OUTPUT")

# tuple.__new__ on the finished field tuple skips a NamedTuple's generated __new__.
_new_tuple: Any = tuple.__new__


class Decision(Protocol):
    @property
    def verdict(self) -> Verdict: ...


class Evaluator(Protocol):
    """What replay needs of the rule engine."""

    def evaluate(self, packet: Packet, hook: Hook, now_ticks: int, *, ctstate: int) -> Decision: ...


class Replayer:
    """Feeds captured packets through an evaluator with the capture's clock.

    Args:
        engine: the rule engine (anything with ``evaluate(packet, hook, now, ctstate=)``).
        hook: the hook to evaluate packets at (INPUT, FORWARD or OUTPUT).
        hz: ticks per second of the tables.
        local: addresses of the protected host, as (family, int) pairs, or None.
        conntrack: connection tracker (a fresh one by default).
    """

    def __init__(
        self,
        engine: Evaluator,
        *,
        hook: str = "INPUT",
        hz: int = DEFAULT_HZ,
        local: Iterable[tuple[int, int]] | None = None,
        conntrack: ConnTracker | None = None,
    ) -> None:
        if hook not in HOOKS:
            raise ValueError(f"hook must be one of {', '.join(HOOKS)}, not {hook!r}")
        self.engine = engine
        self.hook = hook
        self.hook_enum = Hook(hook)
        self.hz = hz
        self.local = None if local is None else frozenset(local)
        # not ``conntrack or …``: an empty tracker is falsy (it has a length)
        self.conntrack = conntrack if conntrack is not None else ConnTracker()
        self.summary = ReplaySummary()

    def run(self, captured: Iterable[CapturedPacket]) -> Iterator[ReplayVerdict]:
        """Replay packets in order, yielding each one's verdict as it is decided."""
        summary = self.summary
        if self.local is not None:
            for record in captured:
                result = self.feed(record)
                summary.add(result)
                yield result
            return
        # Every packet traverses the hook: feed() and summary.add() for an evaluated
        # packet, inline with the attributes they use bound to locals, because this
        # loop runs once per packet. Other packets take feed()'s own paths.
        classify, commit = self.conntrack.classify, self.conntrack.commit
        evaluate, hook, hook_name, hz = self.engine.evaluate, self.hook_enum, self.hook, self.hz
        verdicts, sources, admit = summary.verdicts, summary.sources, summary.admit
        for record in captured:
            n, ts_ns, packet, _ = record
            if packet is None:
                result = self.feed(record)
                summary.add(result)
                yield result
                continue
            tracked = classify(packet, ts_ns)
            ctstate, _, pending, dropped = tracked  # CtResult, unpacked in one step
            if dropped:
                result = self.decide(n, ts_ns, packet, tracked)
                summary.add(result)
                yield result
                continue
            now = ts_ns * hz // 1_000_000_000  # ns_to_ticks(), inlined: per packet
            verdict = evaluate(packet, hook, now, ctstate=ctstate).verdict._name_
            if verdict == "ACCEPT":
                commit(pending)
            result = _new_tuple(ReplayVerdict, (n, ts_ns, verdict, hook_name, packet, ctstate, ""))
            summary.packets += 1
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            summary.evaluated += 1
            source = (packet[0], packet[1])  # (family, src)
            stats = sources.get(source)
            if stats is None:
                stats = admit(source, n)
            stats.packets += 1
            if verdict != "ACCEPT":
                stats.dropped += 1
                if stats.first_drop_ns is None:
                    stats.first_drop_ns, stats.first_drop_n = ts_ns, n
            yield result

    def replay(self, items: Iterable[Chunk | CapturedPacket], *,
               progress: Callable[[int], None] | None = None) -> ReplaySummary:
        """Replay everything, keeping only the totals (no result per packet).

        The same decisions, tables, counters and summary as draining :meth:`run`.
        Chunks of a columnar read (:func:`recentd.packets.columns.read_columns`) are
        replayed by the strategy :meth:`strategy` picks; ``progress`` is called with
        the number of records done after each chunk or record.
        """
        strategy: Strategy | None = None  # picked at the first chunk (columns need numpy)
        for item in items:
            if isinstance(item, CapturedPacket):
                self.summary.add(self.feed(item))
                done = 1
            else:
                if strategy is None:
                    strategy = self.strategy()
                strategy.replay(item)
                done = len(item)
            if progress is not None:
                progress(done)
        return self.summary

    def strategy(self) -> Strategy:
        """How this replayer's chunks are replayed: in columns (:mod:`recentd.replay.
        columns`) with recentd's own engine and no ``local`` addresses (which packets
        traverse the hook then depends on their addresses), else record by record."""
        engine = self.engine
        if not isinstance(engine, Engine) or self.local is not None:
            return RecordByRecord(self)
        from recentd.replay.columns import ColumnReplay  # noqa: PLC0415 - imports numpy

        return ColumnReplay(self, engine)

    def feed(self, record: CapturedPacket) -> ReplayVerdict:
        packet = record.packet
        if packet is None:
            # Not IP, or not decodable: netfilter's IP hooks never see it.
            return ReplayVerdict(
                record.n, record.ts_ns, "ACCEPT", None, None, note=record.error or ""
            )
        return self.decide(record.n, record.ts_ns, packet,
                            self.conntrack.classify(packet, record.ts_ns))

    def decide(self, n: int, ts_ns: int, packet: Packet, tracked: CtResult) -> ReplayVerdict:
        """The verdict of a classified packet (commits its connection on ACCEPT)."""
        if tracked.dropped:
            return ReplayVerdict(
                n, ts_ns, "DROP", None, packet, tracked.state, note="conntrack table full"
            )
        hook = self._hook_of(packet)
        if hook is None:
            self.conntrack.commit(tracked.pending)
            return ReplayVerdict(
                n, ts_ns, "ACCEPT", None, packet, tracked.state,
                note="does not traverse " + self.hook,
            )
        now = ts_ns * self.hz // 1_000_000_000  # ns_to_ticks(), inlined: per packet
        decision = self.engine.evaluate(packet, self.hook_enum, now, ctstate=tracked.state)
        verdict = decision.verdict._name_
        if verdict == "ACCEPT":
            self.conntrack.commit(tracked.pending)
        return ReplayVerdict(n, ts_ns, verdict, hook, packet, tracked.state)

    def _hook_of(self, packet: Packet) -> str | None:
        if self.local is None:
            return self.hook
        to_us = (packet.family, packet.dst) in self.local
        from_us = (packet.family, packet.src) in self.local
        traversed = "INPUT" if to_us else "OUTPUT" if from_us else "FORWARD"
        return self.hook if traversed == self.hook else None
