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

from collections.abc import Callable
from itertools import repeat

import numpy as np
import numpy.typing as npt

from recentd.packets.columns import HEAD_BYTES, I64, Chunk, fixed_packet
from recentd.packets.conntrack import NEW_FLAGS, CtState
from recentd.packets.packet import IPPROTO_UDP
from recentd.replay import Replayer, SourceStats
from recentd.rules.evaluate import Engine, Verdict
from recentd.rules.memo import Remembered
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

    def replay(self, chunk: Chunk) -> None:  # noqa: PLR0912, PLR0915 - one loop, per packet
        """Replay every record of ``chunk``, in order."""
        raw, replayer, engine = self.raw, self.replayer, self.engine
        raw.sync()
        masked = chunk.head & np.frombuffer(raw.mask_bytes, dtype=np.uint8)
        # Each row's masked header bytes as one bytes object (numpy's fixed-width bytes
        # drop trailing NULs, which keeps equal-length rows apart: still one-to-one).
        heads = np.ascontiguousarray(masked).view(f"S{HEAD_BYTES}").ravel().tolist()
        ts = chunk.ts_ns
        hz = replayer.hz
        now_ticks = (ts // _NS) * hz + (ts % _NS) * hz // _NS
        nows = now_ticks.tolist()
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
        sizes = chunk.size.tolist()
        planner = _Planner(opens, chunk.size, masked, now_ticks, chunk.total, heads, sizes)
        plan = planner.plan(0, get, version[0], room)
        no_plan, planned = planner.none(), plan.fast
        next_plan, raw_size = _REPLAN_GAP, len(raw)
        # Each row's connection tuple, as the tracker keys it, and its packet's fields (the
        # packet is built only when needed): tuples made by zip, in C.
        rows = zip(chunk.fixed.tolist(), opens.tolist(),
                   zip(repeat(4), proto, src, dst, sport, dport), zip(*columns, strict=True),
                   sizes, heads, chunk.total.tolist(), nows, ts.tolist(), strict=True)
        for index, (fixed, opening, tuple_, fields, size, head, total, now, ts_ns) in \
                enumerate(rows):
            if planned[index] and tuple_ not in known:  # rule 1, decided by the plan
                plan.rows.append(index)
                continue
            if not fixed:
                summary.add(replayer.feed(chunk.record(index)))
            else:
                if tuple_ not in known:
                    # Rule 1, one row: NEW, nothing changes — if the verdict is DROP.
                    if opening and room:
                        found = get((_NEW_VALUE, size, head))
                        # Engine.reuse(), inline
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
                if result.hook is not None:  # what the engine remembered, under its state
                    raw.remember((tracked.state._value_, size, head), packet, self.hook,
                                 tracked.state)
            # The tables or the connection table may have changed: the plan then no
            # longer holds (dropped at once); what was learned makes a better one.
            room = tracker.has_room()
            if plan is not no_plan and (plan.version != version[0] or plan.room != room):
                drops += plan.settle()
                plan = no_plan
                planned = plan.fast
            if index >= next_plan and (plan is no_plan or len(raw) != raw_size):
                drops += plan.settle()
                plan = planner.plan(index + 1, get, version[0], room)
                planned = plan.fast
                next_plan, raw_size = index + _REPLAN_GAP, len(raw)
        drops += plan.settle()
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


#: Rows between two plans at most (a plan costs a look-up per distinct key of the chunk).
_REPLAN_GAP = 4096


class _Plan:
    """Rule 1 decided at once for the rows of a chunk from ``start`` on (see
    :class:`_Planner`), for the tables' ``version`` and the connection table's
    ``room`` of the moment: valid while both stay so (whether a row's tuple is in
    the connection table is still asked per row).

    Attributes:
        fast: per row of the chunk, whether the plan decides it (DROP).
        rows: the rows it decided; their counters are counted by :meth:`settle`.
    """

    def __init__(self, fast: list[bool], found: list[Remembered | None], uid: npt.NDArray[np.intp],
                 total: I64, *, version: int, room: bool) -> None:
        self.fast, self.found, self.uid, self.total = fast, found, uid, total
        self.version, self.room = version, room
        self.rows: list[int] = []

    def settle(self) -> list[int]:
        """Count the decided rows into their decisions' counters; return the rows."""
        rows, self.rows = self.rows, []
        if rows:
            at = np.array(rows, dtype=np.int64)
            keys, counts = np.unique(self.uid[at], return_counts=True)
            sizes = np.zeros(len(self.found), dtype=np.int64)
            np.add.at(sizes, self.uid[at], self.total[at])
            for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
                found = self.found[key]
                assert found is not None
                length = int(sizes[key])
                for counters in found[1]:
                    counters[0] += count
                    counters[1] += length
        return rows


class _Planner:
    """Makes :class:`_Plan` objects for one chunk: each distinct key (length and
    masked header bytes) is looked up once per plan, and every row's tick checked
    against its entry's span in numpy."""

    def __init__(self, opens: npt.NDArray[np.bool_], size: I64,  # noqa: PLR0917
                 masked: npt.NDArray[np.uint8], now: I64, total: I64, heads: list[bytes],
                 sizes: list[int]) -> None:
        count = len(size)
        keyed = np.empty((count, 4 + HEAD_BYTES), dtype=np.uint8)
        keyed[:, :4] = size.astype(">u4").view(np.uint8).reshape(count, 4)
        keyed[:, 4:] = masked
        first, self.uid = _distinct(keyed)
        self.keys = [(_NEW_VALUE, sizes[row], heads[row]) for row in first.tolist()]
        self.opens, self.now = opens, now
        self.total, self.count = total, count

    def none(self) -> _Plan:
        """A plan that decides nothing."""
        return _Plan([False] * self.count, [], self.uid, self.total, version=-1, room=False)

    def plan(self, start: int, get: Callable[[object], Remembered | None], version: int,
             room: bool) -> _Plan:
        found = [get(key) for key in self.keys]
        fast = np.zeros(self.count, dtype=np.bool_)
        if room and start < self.count:
            usable = np.fromiter((entry is not None and not entry[5] and entry[4] == version
                                  for entry in found), dtype=np.bool_, count=len(found))
            since = np.fromiter((entry[2] if entry is not None else 0 for entry in found),
                                dtype=np.int64, count=len(found))
            until = np.fromiter((entry[3] if entry is not None else -1 for entry in found),
                                dtype=np.float64, count=len(found))
            uid, now = self.uid[start:], self.now[start:]
            fast[start:] = self.opens[start:] & usable[uid] & (since[uid] <= now) & (
                now <= until[uid])
        return _Plan(fast.tolist(), found, self.uid, self.total, version=version, room=room)


def _distinct(rows: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For byte rows of a width that is a multiple of 8: the first row of each distinct
    value, and each row's value number (``np.unique``'s ``return_index`` and
    ``return_inverse``). Sorted by a 64-bit mix of each row's words, which is much
    faster than sorting the rows; rows that share a mix but differ (never seen, but
    possible) make it sort the rows themselves."""
    words = np.ascontiguousarray(rows).view(np.uint64)
    mix = np.zeros(len(rows), dtype=np.uint64)
    for column in range(words.shape[1]):
        mix = (mix ^ words[:, column]) * np.uint64(0x9E3779B97F4A7C15)
    _, first, uid = np.unique(mix, return_index=True, return_inverse=True)
    uid = uid.ravel()
    if not np.array_equal(rows, rows[first[uid]]):
        blob = np.ascontiguousarray(rows).view(f"V{rows.shape[1]}").ravel()
        _, first, uid = np.unique(blob, return_index=True, return_inverse=True)
        uid = uid.ravel()
    return first, uid
