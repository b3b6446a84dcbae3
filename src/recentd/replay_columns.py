"""Replay's fast path: a chunk of a flood decided from its columns, packet by packet.

Theory of operation. A chunk (:class:`recentd.packets.columns.Chunk`) holds, for its
fixed records, the header fields and header bytes, read for the whole chunk at once.
A record is decided here, without building a packet, when all of this holds:

1. it is fixed, opens a connection (TCP flags of a SYN, or UDP) whose tuple has
   no entry in the connection table, which has room (conntrack then says NEW and
   changes nothing: ``ConnTracker.has_room``), and the engine remembered, for
   packets with these header bytes in that state (where the rules read:
   :mod:`recentd.rules.rawmemo`), a DROP that still holds at the record's tick —
   a dropped NEW packet is never confirmed, so the table stays as it was; or
2. it is fixed, its tuple has an entry, and conntrack (which runs, decoding the
   packet) leaves nothing to confirm: then any remembered verdict that holds
   will do.

Nothing but the rules' counters and the summary changes then: the counters are
counted at once (:meth:`recentd.rules.Engine.reuse`'s check, inline), the summary
per chunk (numpy, per source: packets, drops, first drop by packet number). Every
other record is replayed exactly as :meth:`Replayer.run` replays it, in order,
and teaches the raw-bytes map what the engine remembered.

So the result is :meth:`Replayer.run`'s — ``tests/test_replay_columns.py`` compares
them on floods and mixed captures — only the flood costs less.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np

from recentd.packets.columns import HEAD_BYTES, Chunk, fixed_packet
from recentd.packets.conntrack import NEW_FLAGS, CtState
from recentd.packets.packet import IPPROTO_UDP
from recentd.replay import Replayer, SourceStats
from recentd.rules.evaluate import Engine, Verdict
from recentd.rules.rawmemo import RawMemo

_NS = 1_000_000_000
_NEW_FLAGS = np.array(sorted(NEW_FLAGS), dtype=np.int64)
_ACCEPT = Verdict.ACCEPT
_NEW_VALUE = CtState.NEW._value_


class ColumnReplay:
    """Decides a replayer's chunks (see the module's rules)."""

    def __init__(self, replayer: Replayer, engine: Engine) -> None:
        self.replayer = replayer
        self.engine = engine
        self.raw = RawMemo(engine)
        self.hook = replayer.hook_enum

    @classmethod
    def for_replayer(cls, replayer: Replayer) -> ColumnReplay | None:
        """The fast path for this replayer, or None where it does not apply: an engine
        other than recentd's, or ``local`` addresses (which packets traverse the hook
        then depends on their addresses)."""
        engine = replayer.engine
        if not isinstance(engine, Engine) or replayer.local is not None:
            return None
        return cls(replayer, engine)

    def replay(self, chunk: Chunk) -> None:  # noqa: PLR0912 - one loop, run per packet
        """Replay every record of ``chunk``, in order."""
        raw, replayer, engine = self.raw, self.replayer, self.engine
        raw.sync()
        mask = np.frombuffer(raw.mask_bytes, dtype=np.uint8)
        # Each row's masked header bytes as one bytes object (numpy's fixed-width bytes
        # drop trailing NULs, which keeps equal-length rows apart: still one-to-one).
        heads = np.ascontiguousarray(chunk.head & mask).view(f"S{HEAD_BYTES}").ravel().tolist()
        ts = chunk.ts_ns
        hz = replayer.hz
        nows = ((ts // _NS) * hz + (ts % _NS) * hz // _NS).tolist()
        opens = chunk.fixed & ((chunk.proto == IPPROTO_UDP) | np.isin(chunk.flags, _NEW_FLAGS))
        tracker = replayer.conntrack
        known, room = tracker.entries, tracker.has_room()
        get, version, summary = raw.get, engine.tables.version, replayer.summary
        decided: tuple[list[int], list[int]] = ([], [])  # rows decided here: DROP, ACCEPT
        drops = decided[0]
        columns = [column.tolist() for column in (
            chunk.proto, chunk.src, chunk.dst, chunk.ttl, chunk.total, chunk.sport, chunk.dport,
            chunk.flags, chunk.seq, chunk.ack, chunk.window, chunk.payload)]
        proto, src, dst, _, _, sport, dport = columns[:7]
        # Each row's connection tuple, as the tracker keys it, and its packet's fields (the
        # packet is built only when needed): tuples made by zip, in C.
        rows = zip(chunk.fixed.tolist(), opens.tolist(),
                   zip(repeat(4), proto, src, dst, sport, dport), zip(*columns, strict=True),
                   chunk.size.tolist(), heads, chunk.total.tolist(), nows, ts.tolist(),
                   strict=True)
        for index, (fixed, opening, tuple_, fields, size, head, total, now, ts_ns) in \
                enumerate(rows):
            if not fixed:
                summary.add(replayer.feed(chunk.record(index)))
                room = tracker.has_room()
                continue
            if tuple_ not in known:
                # Rule 1: NEW, nothing changes — if the verdict is DROP. The flood's path.
                if opening and room:
                    found = get((_NEW_VALUE, size, head))
                    # Engine.reuse(), inline: this runs for most packets of a flood
                    if found is not None and not found[5] and found[4] == version[0] \
                            and found[2] <= now <= found[3]:
                        for counters in found[1]:
                            counters[0] += 1
                            counters[1] += total
                        drops.append(index)
                        continue
                packet = fixed_packet(*fields)
                tracked = tracker.classify(packet, ts_ns)
            else:
                # Rule 2: conntrack runs; with nothing to confirm, any verdict will do.
                packet = fixed_packet(*fields)
                tracked = tracker.classify(packet, ts_ns)
                if tracked.pending is None and not tracked.dropped:
                    # the state as a plain int: an IntFlag hashes by its name, in Python
                    found = get((tracked.state._value_, size, head))
                    if found is not None and found[4] == version[0] \
                            and found[2] <= now <= found[3]:
                        for counters in found[1]:
                            counters[0] += 1
                            counters[1] += total
                        decided[found[5]].append(index)
                        continue
            result = replayer.decide(chunk.first_n + index, ts_ns, packet, tracked)
            summary.add(result)
            room = tracker.has_room()
            if result.hook is not None:  # what the engine remembered, under the true state
                raw.remember((tracked.state._value_, size, head), packet, self.hook,
                             tracked.state)
        for verdict, done in zip(("DROP", "ACCEPT"), decided, strict=True):
            if done:
                self._count(chunk, done, verdict)

    def _count(self, chunk: Chunk, done: list[int], verdict: str) -> None:
        """The summary's share of the rows decided here, per source (IPv4: fixed rows)."""
        summary = self.replayer.summary
        rows = np.array(done, dtype=np.int64)
        sources, first, counts = np.unique(chunk.src[rows], return_index=True,
                                           return_counts=True)
        numbers = (chunk.first_n + rows[first]).tolist()
        stamps = chunk.ts_ns[rows[first]].tolist()
        dropped = verdict != "ACCEPT"
        for src, count, n, ts_ns in zip(sources.tolist(), counts.tolist(), numbers, stamps,
                                        strict=True):
            stats = summary.sources.get((4, src))
            if stats is None:
                stats = summary.sources[(4, src)] = SourceStats(n)
            stats.first_n = min(stats.first_n, n)
            stats.packets += count
            if dropped:
                stats.dropped += count
                if stats.first_drop_n is None or n < stats.first_drop_n:
                    stats.first_drop_n, stats.first_drop_ns = n, ts_ns
        summary.packets += len(done)
        summary.evaluated += len(done)
        summary.remembered += len(done)
        summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + len(done)
