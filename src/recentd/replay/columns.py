"""Replay's fast strategy: a chunk of a flood decided from its columns.

Theory of operation. A chunk (:class:`recentd.packets.columns.Chunk`) holds, for its
fixed records, the header fields and header bytes, read for the whole chunk at once.
A record is decided here, without building a packet, when

1. it is fixed, opens a connection (TCP flags of a SYN, or UDP) whose tuple has
   no entry in the connection table, which has room (conntrack then says NEW and
   changes nothing: ``ConnTracker.has_room``), and the engine remembered, for
   packets with these header bytes in that state (where the rules read:
   :mod:`recentd.rules.rawmemo`), a DROP that still holds at the record's tick
   (``Remembered.holds``) —
   a dropped NEW packet is never confirmed, so the table stays as it was; or
2. it is fixed, its tuple has an entry, and conntrack (which runs, on a packet
   built from the columns) leaves nothing to confirm: then any remembered verdict
   that holds will do.

Nothing but the rules' counters and the summary changes then. And

3. it is fixed, opens a connection whose tuple has no entry (and conntrack can open
   one, early drop included: ``ConnTracker.can_open``), no table knows its source,
   and the engine learnt a template for packets of its shape, keyed here by its
   header bytes but the source's (:mod:`recentd.rules.fresh`, ``RawMemo.get_template``):
   the template's effects are repeated — the tables' entries, the counters — and the
   connection is opened (on ACCEPT) as conntrack would. A run of such records is decided
   at once (:class:`_Run`).

Every other record is replayed exactly as :meth:`Replayer.run` replays it, in order,
and teaches the raw-bytes maps what the engine remembered and learnt.

Rule 1 is decided for many records at once by a *plan* (:class:`_Planner`): made
for the state of the moment — the tables' version and the connection table's
changes (``ConnTracker.changes``) — it looks each distinct key up once and checks
every record's tick in numpy, leaving out the records whose tuple has an entry.
While that state holds, the records it decides need no work at all; the others
are walked one by one, and the first of them that changes the state ends the
plan there. Counters and the summary are then counted per decision and per source
(numpy: packets, drops, first drop by packet number).

So the result is :meth:`Replayer.run`'s — ``tests/test_replay_columns.py`` compares
them on floods and mixed captures — only the flood costs less. The replayer picks
this strategy (:meth:`Replayer.strategy`); it reaches the replayer only through
:class:`~recentd.replay.strategy.Stepper`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from itertools import islice, repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from recentd.packets.columns import I64, Chunk, fixed_packets
from recentd.packets.conntrack import NEW_FLAGS, ConnTracker, CtState
from recentd.packets.layout import HEAD_BYTES
from recentd.packets.packet import IPPROTO_UDP, Packet
from recentd.replay.strategy import RecordByRecord, Stepper
from recentd.rules.evaluate import Engine
from recentd.rules.fresh import Fresh, Template
from recentd.rules.memo import Remembered
from recentd.rules.rawmemo import RawMemo

_NS = 1_000_000_000
_NEW_FLAGS = np.array(sorted(NEW_FLAGS), dtype=np.int64)
_NEW_VALUE = CtState.NEW._value_
#: Ticks below this are exact in numpy's int64 and float64 (2**53 with room to spare).
_EXACT = 1 << 52
#: After a plan that ended within this many records, the next records are walked
#: without one (a plan costs a look-up per distinct key of the chunk).
_REPLAN_GAP = 4096
#: At most this many records walked between two plans, however few plans decide.
_MAX_GAP = 1 << 18
#: The columns a walk reads, in its loop's order.
_WALKED = ("fixed", "opens", "size", "total", "now", "ts_ns")


class ColumnReplay:
    """Decides a replayer's chunks (see the module's rules).

    Args:
        replayer: the replayer (every record it takes: ``local`` addresses would make
            which records traverse the hook depend on their addresses).
        engine: the replayer's engine.
    """

    def __init__(self, replayer: Stepper, engine: Engine) -> None:
        self.replayer = replayer
        self.engine = engine
        self.raw = RawMemo(engine)
        self.hook = replayer.hook_enum
        # Records to walk before the next plan, across chunks, and the stretch that plans
        # deciding nothing (a flood of new sources) leave between them, doubling.
        self._unplanned, self._gap = 0, _REPLAN_GAP

    def replay(self, chunk: Chunk) -> None:
        """Replay every record of ``chunk``, in order: under a plan while one holds,
        walking the records it leaves."""
        if len(chunk) and int(chunk.ts_ns.max()) // _NS * self.replayer.hz >= _EXACT:
            # ticks past what int64 and float64 hold exactly (an extreme --hz): every
            # record the ordinary way, in Python's unbounded integers
            RecordByRecord(self.replayer).replay(chunk)
            return
        self.raw.sync()
        rows = _Rows(chunk, self.raw.mask_bytes, self.replayer.hz, self.raw.fresh_mask_bytes
                     if self.raw.fresh_mask is not None else None)
        planner: _Planner | None = None  # made at the chunk's first plan
        tracker, version = self.replayer.conntrack, self.engine.tables.version
        decided: tuple[list[I64], list[I64]] = ([], [])  # rows decided here: DROP, ACCEPT
        start, count = 0, len(chunk)
        while start < count:
            fast = None
            if self._unplanned <= 0:
                if planner is None:
                    planner = _Planner(rows)
                fast = planner.plan(start, self.raw.get, version[0], tracker)
                if not fast.any():
                    # A plan that decides nothing (a flood of new sources): walk without
                    # one, and plan again later and later while plans keep deciding nothing.
                    fast, self._gap = None, min(2 * self._gap, _MAX_GAP)
                    self._unplanned = self._gap
                else:
                    self._gap = _REPLAN_GAP
            if fast is not None:
                assert planner is not None
                stop = self._walk(rows, fast, start, count, decided)
                decided[0].append(planner.settle(fast, start, stop))
                if stop - start < _REPLAN_GAP:  # it ended early: a stretch without one
                    self._unplanned = _REPLAN_GAP
            else:
                stop = self._walk(rows, fast, start, min(start + max(self._unplanned, 1), count),
                                  decided)
                self._unplanned -= stop - start
            start = stop
        for verdict, done in zip(("DROP", "ACCEPT"), decided, strict=True):
            if done:
                self._count(chunk, np.concatenate(done), verdict)

    def _walk(self, rows: _Rows, fast: npt.NDArray[np.bool_] | None, start: int,  # noqa: PLR0912, PLR0915
              limit: int, decided: tuple[list[I64], list[I64]]) -> int:
        """Walk the records in ``[start, limit)`` that ``fast`` does not decide; return
        where the plan ends: after the first record that changed the state it was made
        for (the tables' version, the connection table's tuples), or ``limit``."""
        replayer, raw, chunk = self.replayer, self.raw, rows.chunk
        tracker, summary = replayer.conntrack, replayer.summary
        known, get, version = tracker.entries, raw.get, self.engine.tables.version
        planned_version, planned_changes = version[0], tracker.changes
        room = tracker.has_room()
        walked = np.arange(start, limit) if fast is None else \
            np.flatnonzero(~fast[start:limit]) + start
        drops: list[int] = []
        accepts: list[int] = []
        column = rows.gather(walked)
        proto, src, dst, sport, dport = (column[name] for name in
                                         ("proto", "src", "dst", "sport", "dport"))
        # Each record's connection tuple, as the tracker keys it, and its packet (what the
        # decoder's fast path makes: columns.fixed_packets), both made in C.
        fresh = self.engine.fresh
        fresh_heads = rows.fresh_heads
        fresh_keys: list[bytes] | None = None if fresh is None or fresh_heads is None else \
            fresh_heads[walked].tolist()
        template_of, open_new = raw.get_template, tracker.open_new
        unknown = fresh.unknown if fresh is not None else _never
        generation = self.engine.generation
        indices = walked.tolist()
        tuples = list(zip(repeat(4), proto, src, dst, sport, dport))
        built: list[list[Packet]] = []  # the packets, made at the first one needed

        def packet_at(position: int) -> Packet:
            if not built:
                built.append(list(fixed_packets(column)))
            return built[0][position]

        records = zip(itertools.count(), indices, *(column[name] for name in _WALKED), tuples,
                      rows.heads[walked].tolist(),
                      repeat(None) if fresh_keys is None else fresh_keys, strict=False)
        run = _Run(walked, rows, column, tuples, known, fresh) \
            if fresh is not None and fast is None and fresh_keys is not None else None
        stop = limit
        for position, index, fixed, opening, size, total, now, ts_ns, tuple_, head, \
                fresh_head in records:
            if not fixed:
                summary.add(replayer.feed(chunk.record(index)))
            else:
                packet = None
                if tuple_ not in known:
                    # Rule 1, one record: NEW, nothing changes — if the verdict is DROP.
                    if opening and room:
                        found = get((_NEW_VALUE, size, head))
                        if found is not None and not found.accepts \
                                and found.holds(version[0], now):
                            found.bump(total)
                            drops.append(index)
                            continue
                    # Rule 3: a source no table knows, of a shape with a template.
                    if opening and fresh_head is not None:
                        template = template_of((_NEW_VALUE, size, fresh_head))
                        if template is not None and template.generation == generation \
                                and unknown(4, tuple_[2]):
                            taken = run.apply(position, template, tracker) \
                                if run is not None and tracker.can_open() else 0
                            if taken:  # this record and the like ones after it, at once
                                (accepts if template.accepts else drops).extend(
                                    indices[position:position + taken])
                                if taken > 1:
                                    next(islice(records, taken - 2, taken - 1), None)
                                room = tracker.has_room()
                                continue
                            packet = packet_at(position)
                            if open_new(tuple_, packet, ts_ns, template.accepts):
                                template.apply(4, tuple_[2], packet[3], now, total)
                                (accepts if template.accepts else drops).append(index)
                                room = tracker.has_room()
                                if fast is not None:
                                    stop = index + 1  # the tables changed: the plan ends here
                                    break
                                continue
                else:
                    # Rule 2: conntrack runs; with nothing to confirm, any verdict will do.
                    packet = packet_at(position)
                    tracked = tracker.classify(packet, ts_ns)
                    if tracked.pending is None and not tracked.dropped:
                        # the state as a plain int: an IntFlag hashes by its name, in Python
                        found = get((tracked.state._value_, size, head))
                        if found is not None and found.holds(version[0], now):
                            found.bump(total)
                            (accepts if found.accepts else drops).append(index)
                            if tracker.changes != planned_changes:  # e.g. an RST closed it
                                stop = index + 1
                                break
                            continue
                if packet is None:
                    packet = packet_at(position)
                    tracked = tracker.classify(packet, ts_ns)
                result = replayer.decide(chunk.first_n + index, ts_ns, packet, tracked)
                summary.add(result)
                if result.hook is not None:  # what the engine remembered, under its state
                    raw.remember((tracked.state._value_, size, head), packet, self.hook,
                                 tracked.state)
                    if fresh_head is not None and tracked.state._value_ == _NEW_VALUE:
                        raw.remember_fresh((tracked.state._value_, size, fresh_head), packet,
                                           self.hook, tracked.state)
            room = tracker.has_room()
            if fast is not None and (version[0] != planned_version
                                     or tracker.changes != planned_changes):
                stop = index + 1  # the plan ends here
                break
        decided[0].append(np.array(drops, dtype=np.int64))
        decided[1].append(np.array(accepts, dtype=np.int64))
        return stop

    def _count(self, chunk: Chunk, rows: I64, verdict: str) -> None:
        """The summary's share of the records decided here, per source (IPv4: fixed)."""
        if not len(rows):
            return
        summary = self.replayer.summary
        rows = np.sort(rows)
        sources, first, counts = np.unique(chunk.src[rows], return_index=True,
                                           return_counts=True)
        numbers = (chunk.first_n + rows[first]).tolist()
        stamps = chunk.ts_ns[rows[first]].tolist()
        dropped = verdict != "ACCEPT"
        kept = summary.sources
        keys = [(4, src) for src in sources.tolist()]
        found = list(map(kept.get, keys))
        counts_list = counts.tolist()
        # The sources kept already first (before any compaction can drop one), then the
        # new ones admitted with their counts, in address order (a flood of new sources:
        # a compaction's worth at a time).
        for stats, count, n, ts_ns in zip(found, counts_list, numbers, stamps, strict=True):
            if stats is None:
                continue
            stats.first_n = min(stats.first_n, n)
            stats.packets += count
            if dropped:
                stats.dropped += count
                if stats.first_drop_n is None or n < stats.first_drop_n:
                    stats.first_drop_n, stats.first_drop_ns = n, ts_ns
        new = [position for position, stats in enumerate(found) if stats is None]
        summary.admit_many([keys[position] for position in new],
                           [numbers[position] for position in new],
                           [counts_list[position] for position in new],
                           [stamps[position] for position in new] if dropped else None)
        summary.packets += len(rows)
        summary.evaluated += len(rows)
        summary.remembered += len(rows)
        summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + len(rows)


class _Run:
    """Rule 3 for a run of records at once: from a record rule 3 decides, the records
    after it that are alike — fixed, opening a connection, of the same shape (so the
    same template), their tuples and their replies' in no entry and distinct, their
    sources unknown to every table and distinct under each table's mask — are decided
    by the template together: the same effects, in the same order, as one by one
    (``RecentTable.place_many4``, ``ConnTracker.open_many``). The state a record is
    checked against is the one before the run plus the run's own additions: the run
    only adds the records' own entries and evicts others, and a record whose tuple or
    source was evicted before its turn ends the run (it is walked after it).

    Tuples and replies are kept apart by asking that no record's source be a
    destination of the run (a reply's source is its packet's destination) — stricter
    than needed, and what a flood to one server always satisfies. The run is looked for
    within a window that doubles while runs fill it (a flood) and shrinks when they end
    early (mixed traffic), so that looking costs about what the run saves."""

    #: Window sizes (records).
    SMALLEST, LARGEST = 64, 1 << 15

    def __init__(self, walked: I64, rows: _Rows, column: dict[str, list[int]],  # noqa: PLR0917
                 tuples: list[tuple[int, ...]],
                 known: Mapping[tuple[int, ...], object], fresh: Fresh) -> None:
        assert rows.fresh_heads is not None
        arrays = rows.columns
        self.alike = (arrays["fixed"] & arrays["opens"])[walked]
        self.shape, self.size = rows.fresh_heads[walked], arrays["size"][walked]
        self.src, self.dst = arrays["src"][walked], arrays["dst"][walked]
        self.column, self.tuples = column, tuples
        self.known, self.fresh = known, fresh
        self.window = self.SMALLEST

    def apply(self, start: int, template: Template, tracker: ConnTracker) -> int:
        """Decide the records from position ``start`` (which rule 3 decides) on; return
        how many it decided (0: none, the first one's reply has an entry)."""
        tuples, known = self.tuples, self.known
        family, proto, src, dst, sport, dport = tuples[start]
        if (family, proto, dst, src, dport, sport) in known:
            return 0  # its reply has an entry: commit keeps that one (open_new does it)
        end = min(start + self.window, len(tuples))
        stop = _first(~(self.alike[start + 1:end] & (self.shape[start + 1:end] == self.shape[start])
                        & (self.size[start + 1:end] == self.size[start])), start + 1, end)
        srcs, dsts = self.src[start:stop], self.dst[start:stop]
        if stop - start > 1:
            stop = _first(np.isin(srcs, dsts) | np.isin(dsts, srcs), start, stop, after=start)
        for mask, entries in self.fresh.index4:
            masked = srcs[:stop - start] & mask
            _, first = np.unique(masked, return_index=True)
            repeated = np.ones(len(masked), dtype=np.bool_)
            repeated[first] = False
            stop = _first(repeated, start, stop)
            hits = list(map(entries.__contains__, masked[1:stop - start].tolist()))
            stop = start + 1 + hits.index(True) if True in hits else stop
        hits = list(map(known.__contains__, tuples[start + 1:stop]))
        stop = start + 1 + hits.index(True) if True in hits else stop
        replies: list[tuple[int, ...]] = [(family, proto, dst, src, dport, sport)
                   for family, proto, src, dst, sport, dport in tuples[start:stop]]
        hits = list(map(known.__contains__, replies))
        if True in hits:
            stop = start + hits.index(True)
            del replies[stop - start:]
        self.window = min(2 * self.window, self.LARGEST) if stop == end else self.SMALLEST
        column = self.column
        syns = (column["flags"][start:stop], column["seq"][start:stop],
                column["window"][start:stop], column["payload"][start:stop])
        tracker.open_many(tuples[start:stop], replies, syns, column["ts_ns"][start:stop],
                          template.accepts)
        srcs_list, ttls, nows = (column[name][start:stop] for name in ("src", "ttl", "now"))
        for table, forwarded, stamps, kept in template.writes:
            table.place_many4(srcs_list, [(ttl + 1) & 0xFF for ttl in ttls] if forwarded
                              else ttls, nows, stamps=stamps, kept=kept)
        taken = stop - start
        length = sum(column["total"][start:stop])
        for counters in template.bumps:
            counters[0] += taken
            counters[1] += length
        return taken


def _first(bad: npt.NDArray[np.bool_], start: int, end: int, *, after: int = -1) -> int:
    """The position of the first true entry of ``bad`` (which covers positions from
    ``start``) after position ``after``, or ``end``."""
    found = np.flatnonzero(bad)
    found = found[found + start > after]
    return start + int(found[0]) if len(found) else end


def _never(_family: int, _src: int) -> bool:
    """No template applies (a rule set without them: no fresh-source keys either)."""
    return False


class _Rows:
    """A chunk's columns as the fast path reads them: ticks, which records open a
    connection, masked header bytes (as one bytes object each, and as key numbers)."""

    def __init__(self, chunk: Chunk, mask: bytes, hz: int, fresh_mask: bytes | None) -> None:
        self.chunk = chunk
        ts = chunk.ts_ns
        self.masked = chunk.head & np.frombuffer(mask, dtype=np.uint8)
        # numpy's fixed-width bytes drop trailing NULs, which keeps equal-length rows
        # apart: still one-to-one
        self.heads = np.ascontiguousarray(self.masked).view(f"S{HEAD_BYTES}").ravel()
        #: the heads under the fresh-source mask (rules.rawmemo), or None (no templates)
        self.fresh_heads = None if fresh_mask is None else np.ascontiguousarray(
            chunk.head & np.frombuffer(fresh_mask, dtype=np.uint8)).view(
                f"S{HEAD_BYTES}").ravel()
        self.columns: dict[str, npt.NDArray[Any]] = {
            "fixed": chunk.fixed, "size": chunk.size, "total": chunk.total, "ts_ns": ts,
            "now": (ts // _NS) * hz + (ts % _NS) * hz // _NS,
            "opens": chunk.fixed & ((chunk.proto == IPPROTO_UDP)
                                    | np.isin(chunk.flags, _NEW_FLAGS)),
            "proto": chunk.proto, "src": chunk.src, "dst": chunk.dst, "ttl": chunk.ttl,
            "sport": chunk.sport, "dport": chunk.dport, "flags": chunk.flags,
            "seq": chunk.seq, "ack": chunk.ack, "window": chunk.window,
            "payload": chunk.payload,
        }  # fmt: skip

    def gather(self, at: I64) -> dict[str, list[int]]:
        """Every column at the records ``at``, as lists."""
        return {name: values[at].tolist() for name, values in self.columns.items()}


class _Planner:
    """Decides rule 1 for many records at once (see the module's theory)."""

    def __init__(self, rows: _Rows) -> None:
        chunk = rows.chunk
        count = len(chunk)
        keyed = np.empty((count, 4 + HEAD_BYTES), dtype=np.uint8)
        keyed[:, :4] = chunk.size.astype(">u4").view(np.uint8).reshape(count, 4)
        keyed[:, 4:] = rows.masked
        first, self.uid = _distinct(keyed)
        heads, sizes = rows.heads[first].tolist(), chunk.size[first].tolist()
        self.keys = [(_NEW_VALUE, size, head) for size, head in zip(sizes, heads, strict=True)]
        self.rows, self.count = rows, count
        self.found: list[Remembered | None] = []

    def plan(self, start: int, get: Callable[[object], Remembered | None], version: int,
             tracker: ConnTracker) -> npt.NDArray[np.bool_]:
        """Which records from ``start`` on rule 1 decides, in the state of the moment."""
        found = self.found = list(map(get, self.keys))
        fast = np.zeros(self.count, dtype=np.bool_)
        if not tracker.has_room() or start >= self.count:
            return fast
        # Remembered.holds in numpy: the version per entry, the span per record. (An
        # entry whose span lies beyond _EXACT cannot be compared in numpy: not used.)
        # Only the keys with an entry are looked at (few, in a flood of new sources).
        usable = np.zeros(len(found), dtype=np.bool_)
        since = np.zeros(len(found), dtype=np.int64)
        until = np.full(len(found), -1.0, dtype=np.float64)
        for key, entry in enumerate(found):
            if entry is not None and not entry.accepts and entry.version == version \
                    and entry.since < _EXACT and not _EXACT <= entry.until < math.inf:
                usable[key], since[key], until[key] = True, entry.since, entry.until
        if not usable.any():
            return fast
        columns = self.rows.columns
        uid, now = self.uid[start:], columns["now"][start:]
        fast[start:] = columns["opens"][start:] & usable[uid] & (since[uid] <= now) & (
            now <= until[uid])
        # records whose tuple has an entry take rule 2, one by one
        candidates = np.flatnonzero(fast)
        chunk, known = self.rows.chunk, tracker.entries
        tuples = zip(repeat(4), *(getattr(chunk, name)[candidates].tolist()
                                  for name in ("proto", "src", "dst", "sport", "dport")))
        fast[candidates[[tuple_ in known for tuple_ in tuples]]] = False
        return fast

    def settle(self, fast: npt.NDArray[np.bool_], start: int, stop: int) -> I64:
        """Count the records the plan decided in ``[start, stop)`` into their decisions'
        counters; return them."""
        rows = np.flatnonzero(fast[start:stop]) + start
        if len(rows):
            uid = self.uid[rows]
            keys, counts = np.unique(uid, return_counts=True)
            lengths = np.zeros(len(self.found), dtype=np.int64)
            np.add.at(lengths, uid, self.rows.chunk.total[rows])
            for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
                found = self.found[key]
                assert found is not None
                found.bump(int(lengths[key]), count)
        return rows


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
