"""The adapter between one host and the store: a :class:`~recentd.sources.Source` of remote
bans, and the publisher of its own.

Rules of this module:

1. Two threads, each with its own connection, do all the talking to Redis, so the
   daemon's loop never waits on the network: the *reader* blocks in ``XREAD`` and hands
   what it read over a queue, waking the loop through a pipe (the source's ``fileno``);
   the *publisher* writes the events :meth:`FleetSource.publish` handed it into the
   outbox (fsynced), sends them, and keeps doing the first while the store is away.
   The loop's side — :meth:`FleetSource.read` and :meth:`FleetSource.publish` — only
   moves values.
2. Redis errors are translated here, once: a refused command (ACL, wrong password) is
   ``refused: why``; anything else is ``down: why``; both are retried with a backoff that
   doubles up to 30 s, and show in ``ctl status`` through :meth:`FleetSource.status`.
3. Where a host stands is the id of the last stream entry it applied and the last time
   its reader was connected (its checkpoint, saved by the daemon with the other
   sources'). Without one, or behind the stream's trim, it first reads the snapshot
   hash; replays are harmless (latest expiry wins, a repeat changes nothing).
4. Only commands both Redis ≥ 6.2 and Valkey have: XADD (MINID ~), XREAD, XRANGE,
   XREVRANGE, HSET, HGETALL, HSCAN, HDEL, MULTI/EXEC, PING.
6. Each publisher sweeps its own fields out of the snapshot hash once an hour (ended
   bans, unbans older than any ban allowed): only the host writes its fields, so a sweep
   never races a newer event.
5. A bad message is counted and skipped (``skipped`` in the status), never fatal.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import re
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from recentd.clock import wall_now_ns
from recentd.commands import Ban, Command, Unban
from recentd.daemon import Daemon, SourceSpec
from recentd.errors import ConfigError, StateFileError
from recentd.fleet.events import (
    FIELD,
    FleetEvent,
    FleetMessageError,
    Op,
    decode,
    encode,
    printable,
    snapshot_field,
)
from recentd.fleet.merge import Decision, Merge, Outcome, ended
from recentd.fleet.outbox import Outbox
from recentd.fleet.settings import FleetSettings, read_password
from recentd.live.policy import find_offload_case
from recentd.observation import Evidence, Observation, Origin
from recentd.sources import Checkpoint, SourceState, SourceStatus

log = logging.getLogger("recentd.fleet")

#: A ban adopted from the fleet carries an origin starting with this (``ctl why``), and the
#: publisher never sends such a ban back.
FLEET_ORIGIN = "fleet "
BACKOFF_S = (0.2, 30.0)
BLOCK_MS = 1000
BATCH = 1000
#: How far the hosts' and the store's clocks may disagree (the trim horizon's margin).
SKEW_MS = 60_000
#: How often the merge's memory of ended bans is swept.
EXPIRE_EVERY_MS = 60_000
#: A stream entry id (a checkpoint's ``last_id`` is checked against it).
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
#: How often a publisher sweeps its own ended events out of the snapshot.
SWEEP_EVERY_MS = 3_600_000
#: The outbox's file name in the state directory.
OUTBOX = "fleet-outbox.txt"

#: What the reader hands the loop: ("entries", [(id, text)…]) or ("snapshot", [the stream
#: position it stands for, [text…]]).
_Item = tuple[str, list[Any]]


def _raw(response: Any, **_options: Any) -> Any:
    """XREAD's reply as the parser (hiredis) built it — redis-py's own callback would
    build a dict per entry, for its one field."""
    return response


def _entries(reply: Any) -> list[tuple[str, object]]:
    """(entry id, text) of each entry of a raw XREAD ``reply`` (RESP3: ``{stream:
    [[id, [field, value]]…]}``; RESP2: ``[[stream, [[id, [field, value]]…]]]``); an entry
    of another shape keeps its fields, for :func:`~recentd.fleet.events.decode` to refuse."""
    streams = reply.values() if isinstance(reply, dict) else [s[1] for s in reply or ()]
    return [(entry, fields[1] if len(fields) == 2 and fields[0] == FIELD else fields)
            for entries in streams for entry, fields in entries]  # fmt: skip


@dataclass
class _Link:
    """One thread's view of its connection (read by the loop for the status)."""

    #: Who asks for what, said with a refusal: "user H on keys K1, K2".
    context: str
    state: str = "connecting"
    backoff_s: float = BACKOFF_S[0]

    def failed(self, exc: redis.RedisError) -> float:
        refused = isinstance(exc, redis.AuthenticationError | redis.exceptions.NoPermissionError)
        if not refused and "NOPERM" in str(exc):
            refused = True
        wait, self.backoff_s = self.backoff_s, min(self.backoff_s * 2, BACKOFF_S[1])
        what = f"refused ({self.context}): {exc}" if refused else f"down: {exc}"
        self.state = f"{what}; retrying in {wait:g} s"
        return wait

    def ok(self, *, proven: bool = True) -> None:
        """Connected; ``proven``: a real command succeeded too (the backoff starts over)."""
        self.state = "ok"
        if proven:
            self.backoff_s = BACKOFF_S[0]


class FleetSource:
    """One host's membership in the fleet. See the module rules.

    Args:
        settings: the ``[fleet]`` table.
        outbox_path: the outbox file (in the state directory).
        list_name: the local list whose bans are shared (the offloaded rule's list).
        wall_ms: the wall clock, in ms (a fake in tests).
    """

    def __init__(
        self, settings: FleetSettings, outbox_path: Path, list_name: str,
        wall_ms: Callable[[], int] = lambda: wall_now_ns() // 1_000_000,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.name = f"fleet {settings.url}"
        self.list_name = list_name
        self.wall_ms = wall_ms
        self.merge = Merge(settings.host, settings.lists, settings.caps, settings.protect)
        self.outbox = Outbox(outbox_path)
        self.password = read_password(settings.password_file) if settings.password_file else None
        self.skipped = 0
        self.outcomes: Counter[str] = Counter()
        self.published = 0
        self.applied_id = ""
        #: Wall ms when the reader was last seen connected: nothing published before it
        #: (less the clocks' skew) can be missing after a restart, whatever the trim.
        self.seen_ms = 0
        self._next_expiry_ms = 0
        context = f"user {settings.host} on keys {settings.stream}, {settings.snapshot}"
        self.reader, self.publisher = _Link(context), _Link(context)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = threading.Event()
        self._send = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reading: redis.Redis | None = None
        #: Events handed over by :meth:`publish`, not yet in the outbox file.
        self._handed: deque[str] = deque()
        self._seq = itertools.count(1)

    # ---- the Source side (the daemon's thread) ---------------------------------------------

    def start(self, checkpoint: Checkpoint | None) -> FleetSource:
        """Start reading after ``checkpoint`` (``None``: a cold start, from the snapshot)."""
        last = checkpoint.get("last_id") if checkpoint else None
        seen = checkpoint.get("seen_ms") if checkpoint else None
        self.applied_id = last if isinstance(last, str) and STREAM_ID.fullmatch(last) else ""
        self.seen_ms = seen if isinstance(seen, int) else 0
        for target, name in ((self._read_loop, "reader"), (self._publish_loop, "publisher")):
            thread = threading.Thread(target=target, name=f"fleet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._send.set()
        return self

    def fileno(self) -> int | None:
        return self._wake_r

    def read(self) -> list[Observation]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        out: list[Observation] = []
        now_ms = self.wall_ms()
        if self.reader.state == "ok":
            self.seen_ms = now_ms
        if now_ms >= self._next_expiry_ms:  # the merge forgets ended bans once a minute
            self.merge.expire(now_ms)
            self._next_expiry_ms = now_ms + EXPIRE_EVERY_MS
        while True:
            try:
                kind, items = self._queue.get_nowait()
            except queue.Empty:
                return out
            if kind == "snapshot":
                position, snapshot = items
                out += self._apply_snapshot(snapshot, now_ms)
                self.applied_id = position
                continue
            self._apply(items, now_ms, out)
            if items:
                self.applied_id = items[-1][0]

    def _apply_snapshot(self, items: list[str], now_ms: int) -> list[Observation]:
        out: list[Observation] = []
        self._apply([("snapshot", text) for text in sorted(items, key=_decided)], now_ms, out)
        return out

    def _apply(self, entries: list[tuple[str, object]], now_ms: int,
               out: list[Observation]) -> None:  # fmt: skip
        """Decode, merge and (if adopted or lifted) append the observation to ``out``, for
        each of ``entries`` (an XREAD reply: up to 1,000): the receiver's hot path, once
        per ban of the fleet (bench/fleet.py). The outcomes are counted once per reply."""
        events: list[FleetEvent] = []
        read: list[str] = []
        for entry, text in entries:
            try:
                events.append(decode(entry, text))
            except FleetMessageError as exc:
                self.skipped += 1
                log.warning("fleet message skipped: %s", exc)
                continue
            read.append(entry)
        observation, adopt = self._observation, Outcome.ADOPT
        #: outcome → count; adoptions apart (the usual one: an enum hashes in Python)
        outcomes: dict[Outcome, int] = {}
        adopted = not_enforced = 0
        for entry, decision in zip(read, self.merge.receive_many(events, now_ms), strict=True):
            event, outcome = decision.event, decision.outcome
            if outcome is adopt:
                adopted += 1
            else:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome is adopt or outcome is Outcome.LIFT:
                if event.is_host:
                    out.append(observation(decision, entry))
                else:
                    not_enforced += 1
            elif outcome is Outcome.REFUSED:
                log.warning("fleet ban refused: %s from %s: %s", event.network, event.host,
                            decision.why)  # fmt: skip
        if adopted:
            outcomes[adopt] = adopted
        for outcome, count in outcomes.items():
            self.outcomes[outcome.value] += count
        if not_enforced:
            self.outcomes["network_not_enforced"] += not_enforced

    @staticmethod
    def _observation(decision: Decision, entry: str) -> Observation:
        event = decision.event
        evidence = Evidence.FLEET_BAN if decision.outcome is Outcome.ADOPT else Evidence.FLEET_UNBAN
        return Observation(
            evidence, event.address, event.at_ms * 1_000_000,
            Origin("fleet", event.host, f"{entry} {event.eid}"), kind=event.list_name,
            detail=decision.why, until_ns=decision.until_ms * 1_000_000,
        )  # fmt: skip

    def status(self) -> SourceStatus:
        reader, publisher = self.reader.state, self.publisher.state
        state = SourceState.OK
        if reader != "ok" or publisher != "ok":
            state = SourceState.DEGRADED
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items()))
        detail = (f"reader {reader}; publisher {publisher}; outbox {len(self.outbox)}; "
                  f"published {self.published}; {outcomes or 'nothing received'}")
        return SourceStatus(state, detail, self.skipped)

    def checkpoint(self) -> Checkpoint:
        if not self.applied_id:
            return {}
        return {"last_id": self.applied_id, "seen_ms": self.seen_ms}

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._send.set()
        reading = self._reading
        if reading is not None:  # wakes the reader out of its XREAD BLOCK at once
            reading.connection_pool.disconnect()
        for thread in self._threads:
            thread.join(timeout=BLOCK_MS / 1000 + 5)
        try:
            self._persist()
        finally:
            self.outbox.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # ---- the publishing side: an enforcer listener --------------------------------------------

    def publish(self, command: Command) -> None:
        """Share a local ban (or an operator's unban) with the fleet, through the outbox.

        Bans adopted from the fleet are never sent back; an unban is shared only when an
        operator asked for it (origin ``control …``): an entry that changed locally says
        nothing about the other hosts.
        """
        if command.origin.startswith(FLEET_ORIGIN):
            return
        if isinstance(command, Unban) and not command.origin.startswith("control"):
            return
        if self.list_name not in self.settings.lists:
            return
        now_ms = self.wall_ms()
        address = command.address
        op, until = (Op.BAN, command.expiry_wall_ns // 1_000_000) if isinstance(
            command, Ban) else (Op.UNBAN, 0)  # fmt: skip
        eid = f"{self.settings.host}:{now_ms}.{next(self._seq)}"
        event = FleetEvent(op, address, address.max_prefixlen, self.list_name, now_ms, until,
                           self.settings.host, printable(command.reason), eid)  # fmt: skip
        self._handed.append(encode(event))
        self._send.set()

    # ---- the threads ------------------------------------------------------------------------

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.url, username=self.settings.host, password=self.password,
            decode_responses=True, socket_connect_timeout=2,
            socket_timeout=BLOCK_MS / 1000 + 4,
        )  # fmt: skip

    def _hand_over(self, item: _Item) -> None:
        self._queue.put(item)
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"!")

    def _catch_up(self, client: redis.Redis, position: str) -> str:
        """Where to read from; hands the snapshot over first when needed (rule 3)."""
        stream = self.settings.stream
        if position and not self._behind(client, position):
            return position
        last: Any = client.xrevrange(stream, count=1)
        snapshot: Any = client.hgetall(self.settings.snapshot)
        items = [str(text) for text in snapshot.values()]
        position = str(last[0][0]) if last else "0-0"
        self._hand_over(("snapshot", [position, items]))  # one item: applied, then moved
        return position

    def _behind(self, client: redis.Redis, position: str) -> bool:
        """Whether entries after ``position`` may have been trimmed away: the stream now
        starts after it, and both it and the last time the reader was connected are older
        than the trim's horizon (``MINID`` is ``now − max_duration_s``, and a trim never
        removes an entry at or after its MINID), less :data:`SKEW_MS`."""
        first: Any = client.xrange(self.settings.stream, count=1)
        if not first or _id_key(first[0][0]) <= _id_key(position):
            return False
        horizon_ms = self.wall_ms() - self.settings.caps.max_duration_s * 1000 + SKEW_MS
        return max(_id_key(position)[0], self.seen_ms) < horizon_ms

    def _read_loop(self) -> None:
        position = self.applied_id
        while not self._stop.is_set():
            client = self._reading = self._client()
            client.set_response_callback("XREAD", _raw)
            try:
                client.ping()
                self.reader.ok(proven=False)
                position = self._catch_up(client, position)
                self.reader.ok()
                while not self._stop.is_set():
                    reply: Any = client.xread({self.settings.stream: position}, count=BATCH,
                                              block=BLOCK_MS)  # fmt: skip
                    entries = _entries(reply)
                    if entries:
                        self._hand_over(("entries", entries))
                        position = entries[-1][0]
            except redis.RedisError as exc:  # the reader's one guard (rule 2)
                self._stop.wait(self.reader.failed(exc))
            finally:
                client.close()

    def _persist(self) -> None:
        """Move the events handed over into the outbox file, fsynced (rule 1)."""
        events: list[str] = []
        while self._handed:
            events.append(self._handed.popleft())
        if events:
            try:
                self.outbox.append(events)
                self.outbox.sync()  # group commit: one fsync for the whole burst
            except StateFileError:
                self._handed.extendleft(reversed(events))
                raise

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` (or until stopped), persisting what is handed over meanwhile."""
        for _slice in range(max(1, round(seconds / 0.1))):
            if self._stop.is_set():
                return
            if self._send.wait(0.1):
                self._send.clear()
                self._persist()

    def sweep(self, client: redis.Redis) -> int:
        """Delete this host's ended events from the snapshot (rule 6). Returns how many."""
        now_ms, mine, deleted = self.wall_ms(), f"|{self.settings.host}", 0
        cursor: Any = 0
        while True:
            reply: Any = client.hscan(self.settings.snapshot, cursor, count=1000)
            cursor, items = reply
            stale = [f for f, value in items.items() if f.endswith(mine)
                     and self._ended(f, value, now_ms)]  # fmt: skip
            if stale:
                deleted += int(client.hdel(self.settings.snapshot, *stale))
            if not cursor:
                return deleted

    def _ended(self, field: str, value: str, now_ms: int) -> bool:
        try:
            return ended(decode(field, value), now_ms, self.settings.caps)
        except FleetMessageError:
            return True  # damaged: no host can use it either

    def _publish_loop(self) -> None:
        client: redis.Redis | None = None
        next_sweep_ms = 0
        while not self._stop.is_set():
            try:
                if client is not None and self.wall_ms() >= next_sweep_ms:
                    self.sweep(client)
                    next_sweep_ms = self.wall_ms() + SWEEP_EVERY_MS
                self._persist()
                batch = self.outbox.pending(BATCH)
                client = client or self._client()
                if not batch:  # idle: keep the link's state known (an outage shows in 1 s)
                    if self.publisher.state != "ok" or not self._send.wait(1.0):
                        client.ping()
                        self.publisher.ok(proven=False)
                    self._send.clear()
                    continue
                self._send_batch(client, batch)
                self.outbox.acknowledge(len(batch))
            except redis.RedisError as exc:  # the publisher's one guard (rule 2)
                if client is not None:
                    client.close()
                client = None
                wait = self.publisher.failed(exc)
            except StateFileError as exc:  # the outbox's disk: kept in memory meanwhile
                self.publisher.state = f"degraded: {exc}"
                wait = BACKOFF_S[1]
            else:
                self.published += len(batch)
                self.publisher.ok()
                continue
            with contextlib.suppress(StateFileError):
                self._wait(wait)
        if client is not None:
            client.close()

    def _send_batch(self, client: redis.Redis, batch: list[str]) -> None:
        """One round trip, one MULTI/EXEC: an XADD per event (trimmed to the longest ban)
        and one HSET of the snapshot for the whole batch (a later event of an origin
        replaces its earlier one, as it would field by field)."""
        minid = max(0, self.wall_ms() - self.settings.caps.max_duration_s * 1000)
        stream = self.settings.stream
        pipe = client.pipeline(transaction=True)
        latest: dict[str, str] = {}
        for text in batch:
            pipe.xadd(stream, {FIELD: text}, minid=minid, approximate=True)
            latest[snapshot_field(text)] = text
        latest.pop("", None)  # not an event (the outbox only holds events)
        if latest:
            pipe.hset(self.settings.snapshot, mapping=latest)  # type: ignore[arg-type]
        pipe.execute()


def _decided(text: str) -> tuple[int, str]:
    """A snapshot event's decision time (``at``), to apply the snapshot in order."""
    at = text.split("|", 5)[4:5]
    return (len(at[0]), at[0]) if at else (0, "")


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))


class Membership:
    """A daemon's place in the fleet (see :func:`join`): the source while it is open."""

    def __init__(self, settings: FleetSettings, state_dir: Path, list_name: str) -> None:
        self.settings = settings
        self.outbox_path = state_dir / OUTBOX
        self.list_name = list_name
        self.source: FleetSource | None = None

    def open(self, checkpoint: Checkpoint | None) -> FleetSource:
        """The daemon's :data:`~recentd.daemon.SourceFactory`."""
        self.source = FleetSource(self.settings, self.outbox_path, self.list_name)
        return self.source.start(checkpoint)

    def publish(self, command: Command) -> None:
        """The enforcer's listener (a command before the source opened: none can be)."""
        if self.source is not None and not command.origin.startswith(FLEET_ORIGIN):
            self.source.publish(command)  # (a fleet ban, never sent back, stops here)


def join(daemon: Daemon, settings: FleetSettings) -> Membership:
    """Make ``daemon`` (not started yet) a fleet member: the fleet becomes one of its
    sources (checkpoint ``fleet``) and hears every command its enforcer carries out.

    Raises:
        ConfigError: no state directory (the outbox and the checkpoint live there), or
            the rules offload no list (the fleet shares offloaded bans), or that list is
            not among ``lists``.
    """
    if daemon.config.state_dir is None:
        raise ConfigError("the fleet needs a state directory (outbox, checkpoint)",
                          key="fleet")  # fmt: skip
    case = find_offload_case(daemon.ruleset) if daemon.config.offload else None
    if case is None:
        raise ConfigError("the fleet shares kernel bans, and these rules (or --no-offload) "
                          "have none", key="fleet")  # fmt: skip
    if case.name not in settings.lists:
        log.warning("fleet: the offloaded list %s is not in fleet.lists %s: local bans are "
                    "not shared", case.name, list(settings.lists))  # fmt: skip
    membership = Membership(settings, daemon.config.state_dir, case.name)
    daemon.config.sources.append(SourceSpec("fleet", membership.open, ()))
    daemon.command_listeners.append(membership.publish)
    return membership
