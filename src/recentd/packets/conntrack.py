"""Connection tracking for replay: what ``-m state`` / ``-m conntrack --ctstate`` see.

A sans-I/O model of the kernel's nf_conntrack, fed one decoded packet at a time
with the packet's own timestamp (integer nanoseconds) as ``now``. It never reads
a clock and holds no references to the outside.

Rules (the kernel's, from ``nf_conntrack_core.c`` and ``nf_conntrack_proto_*.c``):

* A packet's state: a reply-direction packet of a tracked connection is
  ESTABLISHED; an original-direction one is NEW until a reply has been seen, then
  ESTABLISHED; an ICMP/ICMPv6 error quoting a tracked connection is RELATED; a
  packet the protocol tracker refuses is INVALID; ICMPv6 neighbour discovery and
  MLD messages are UNTRACKED (as ``icmpv6_error`` leaves them).
* Two-step API, because the kernel *confirms* a new entry only when the packet
  that created it leaves the hook accepted: :meth:`ConnTracker.classify` returns
  the state and, for a would-be new connection, an opaque :class:`Pending`;
  call :meth:`ConnTracker.commit` with it only when the verdict is ACCEPT. A
  dropped NEW packet therefore leaves no entry, and its retransmission is NEW
  again. Updates to an *existing* entry (TCP state, windows, timeouts) happen in
  ``classify`` whatever the verdict, exactly as in the kernel, where conntrack
  runs in PREROUTING/OUTPUT before the filter table.
* TCP follows the kernel's ``tcp_conntracks`` table (below, as data), its flag
  validity table, and with ``tcp_loose`` (nf_conntrack_tcp_loose, default 1) a
  non-SYN packet whose flags map to ACK (no SYN, FIN or RST) picks up a mid-stream
  connection as NEW; a bare FIN, a FIN/ACK or an RST without an entry is INVALID.
  A SYN in TIME_WAIT/CLOSE after a close or reset reopens the connection (NEW).
* UDP: first packet NEW, reply ESTABLISHED; 30 s unreplied, 120 s (and assured)
  once replies keep coming more than 2 s after the first packet.
* ICMP: echo/timestamp/info/address-mask requests (ICMPv6 echo and node-info
  queries) may create entries; their replies are ESTABLISHED; other non-error
  types with no entry are INVALID. Other protocols use the generic tracker
  (addresses only, 600 s).
* The table holds at most ``max_entries`` connections (default 262144, the
  kernel's nf_conntrack_max on a 64-bit host with more than 4 GiB of RAM). When
  full, the oldest non-assured connection is dropped early to make room; if every
  entry is assured, expired entries are swept, and failing that the packet is
  dropped by conntrack itself (``CtResult.dropped``), as the kernel does
  ("nf_conntrack: table full, dropping packet").

Simplifications (documented deviations from the kernel):

* TCP window tracking is the kernel's ``tcp_in_window`` (checks I-IV, same
  updates), but :class:`Packet` carries no TCP options, so window-scale and SACK
  are unknown: every non-SYN window is taken at the largest scale (2^14). Checks
  I, II and IV are therefore as loose as they can be; check III (an ACK for data
  never sent) is exact. We never call a packet out-of-window that the kernel
  accepts on window grounds. The retransmission and unacknowledged-data timeout
  caps (``tcp_timeout_max_retrans``, ``tcp_timeout_unacknowledged``) are not
  modelled; RST still shortens the timeout to ``tcp_close``.
* ICMP echo entries are keyed by addresses, type, code and the echo identifier, as
  the kernel's are, so concurrent pings between the same two hosts are separate
  connections. The other query types (timestamp, information, address mask, node
  information) are keyed without their identifier (``Packet`` carries only the
  echo one), so concurrent queries of those between two hosts share an entry.
* The kernel reassembles fragments before conntrack; replay cannot (no IP id),
  so the first fragment is classified as the whole packet and non-first
  fragments are UNTRACKED and change nothing.
* Checksums are not verified (nf_conntrack_checksum only applies in PREROUTING).

Layout and cost: the TCP state machine and window tracking are in
:mod:`recentd.packets.tcp_conntrack`, the value types in
:mod:`recentd.packets.conntrack_model`, tuples and ICMP rules in
:mod:`recentd.packets.conntrack_keys`; every public name is re-exported here. Replay
needs well under a microsecond per packet here, so the common paths (a new TCP SYN or
UDP flow, a packet of a known TCP or UDP connection) are inline in :meth:`classify`,
results that carry no entry are preallocated, and a would-be connection's entry is
only built by :meth:`commit` (a SYN flood's dropped SYNs never need one). Expiry is
lazy, as before: an expired entry is removed when a packet looks it up, when the
table is full (at most one sweep per second of packet time), or by :meth:`expire`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from recentd.packets.conntrack_keys import (
    ICMP_ERRORS,
    ICMP_REQUESTS,
    ICMPV6_UNTRACKED,
    invert_key,
    packet_key,
)
from recentd.packets.conntrack_model import (
    DEFAULT_MAX_ENTRIES,
    NS,
    Conn,
    CtDir,
    CtResult,
    CtState,
    Key,
    Pending,
    Timeouts,
)
from recentd.packets.packet import (
    ABSENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_SYN,
    Packet,
)
from recentd.packets.tcp_conntrack import (
    TCP_INVALID,
    TCP_OK,
    TCP_REMOVE,
    TCP_REOPEN,
    TCP_STEPS,
    TCP_TRANSITIONS,
    TCP_VALID_FLAGS,
    TcpState,
    open_syn_sent,
    sIV,
    sNO,
    sSS,
    syn_sent_conns,
    tcp_packet,
)

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "ConnTracker",
    "CtDir",
    "CtResult",
    "CtState",
    "Pending",
    "TcpState",
    "Timeouts",
]
# Public names of the module before it was split, still importable from here.
_REEXPORTED = (Key, TCP_TRANSITIONS, TCP_VALID_FLAGS, ICMP_REQUESTS)

# ---------------------------------------------------------------------------
# Results: everything but a NEW packet's is the same value every time, so it is
# built once here (building a NamedTuple per packet costs a fifth of a microsecond).

_ORIGINAL, _REPLY = CtDir.ORIGINAL, CtDir.REPLY
_NEW = CtState.NEW
_INVALID = CtResult(CtState.INVALID)
_UNTRACKED = CtResult(CtState.UNTRACKED)
_DROPPED = CtResult(CtState.INVALID, dropped=True)
_NEW_UNREPLIED = CtResult(_NEW, _ORIGINAL)
_ESTABLISHED_ORIGINAL = CtResult(CtState.ESTABLISHED, _ORIGINAL)
_ESTABLISHED_REPLY = CtResult(CtState.ESTABLISHED, _REPLY)
_RELATED = (CtResult(CtState.RELATED, _ORIGINAL), CtResult(CtState.RELATED, _REPLY))

# tuple.__new__ on the finished field tuple skips the NamedTuple's generated __new__
# (and Pending's tuple subclass call): half the cost of the NEW path's two objects.
_new_tuple: Any = tuple.__new__

_PORT_PROTOS = frozenset({IPPROTO_TCP, IPPROTO_UDP})  # the protocols classify does inline
_UDP_STREAM_AFTER_NS = 2 * NS
#: Stale entries the unassured deque may hold beyond as many as live ones.
_STALE_SLACK = 4096  # replies more than 2 s after the first packet: a stream


def _seen(conn: Conn, direction: int) -> CtResult:
    """A tracked packet's result: ESTABLISHED, or NEW while no reply has been seen."""
    if direction:
        conn.seen_reply = True
        return _ESTABLISHED_REPLY
    return _ESTABLISHED_ORIGINAL if conn.seen_reply else _NEW_UNREPLIED


# ---------------------------------------------------------------------------
# The tracker


#: TCP flag bytes with which a packet without an entry opens a connection (SYN_SENT):
#: the others are INVALID or a mid-stream pick-up.
NEW_FLAGS = frozenset(flags for flags, step in TCP_STEPS[0].items() if step[1][sNO] == sSS)


class ConnTracker:
    """The conntrack table.

    Args:
        max_entries: nf_conntrack_max.
        timeouts: per-protocol timeouts.
        tcp_loose: nf_conntrack_tcp_loose: pick up mid-stream TCP connections.
        tcp_be_liberal: nf_conntrack_tcp_be_liberal: only RSTs can be out of window.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        timeouts: Timeouts | None = None,
        tcp_loose: bool = True,
        tcp_be_liberal: bool = False,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self.timeouts = timeouts or Timeouts()
        self.tcp_loose = tcp_loose
        self.tcp_be_liberal = tcp_be_liberal
        # Both tuples of every connection map to it; a packet's direction is whether
        # its tuple is the entry's reply tuple.
        self._table: dict[Key, Conn] = {}
        # Unassured entries in insertion order = age, for early drop: a deque, whose head
        # is a pointer away (a dict's first item is found by scanning past the slots of
        # every entry deleted from its head since its last resize: O(deleted) per early
        # drop, and a full table under a flood of new sources collapsed), and which
        # costs no hashing. An entry assured or removed stays in it, stale (see
        # _is_unassured), until it reaches the head or the deque is compacted (when
        # stale entries outnumber live ones: amortised O(1) per entry).
        self._unassured: deque[Conn] = deque()
        self._live_unassured = 0
        self._count = 0
        #: Connections added plus removed, ever: while it stays, so does the set of
        #: tuples in :attr:`entries` (replay's fast path plans on that).
        self.changes = 0
        #: Remember segments that change nothing but a timeout (see _tcp_repeat); off
        #: only to compare.
        self.remember_repeats = True
        self._last_sweep_ns: int | None = None

    @property
    def timeouts(self) -> Timeouts:
        """Per-protocol timeouts (may be replaced; takes effect for the next packet)."""
        return self._timeouts

    @timeouts.setter
    def timeouts(self, timeouts: Timeouts) -> None:
        self._timeouts = timeouts
        # In nanoseconds, so that a packet costs one addition, not a multiplication.
        self._tcp_ns = tuple(timeouts.tcp(state) for state in TcpState)
        self._udp_ns = timeouts.udp * NS
        self._udp_stream_ns = timeouts.udp_stream * NS
        self._icmp_ns = timeouts.icmp * NS
        self._generic_ns = timeouts.generic * NS

    def __len__(self) -> int:
        """Number of connections in the table (expired ones not yet removed included)."""
        return self._count

    # -- public API -----------------------------------------------------------

    def classify(self, packet: Packet, now_ns: int) -> CtResult:  # noqa: PLR0911, PLR0912 - inlined
        """Classify ``packet`` seen at ``now_ns`` and update existing entries.

        Returns:
            The :class:`CtResult`. If its ``pending`` is set, call :meth:`commit`
            with it when (and only when) the packet's verdict is ACCEPT.
        """
        # TCP and UDP are inline here, lookup and UDP update included: this runs for
        # every replayed packet and each helper call would cost about 5% of it.
        if packet.frag_offset:
            return _UNTRACKED
        proto = packet.proto
        if proto not in _PORT_PROTOS:
            return self._classify_other(packet, proto, now_ns)
        sport = packet.sport
        if sport == ABSENT:
            return _INVALID
        key = (packet.family, proto, packet.src, packet.dst, sport, packet.dport)
        conn = self._table.get(key)
        if conn is None or conn.expires_ns <= now_ns:
            if conn is not None:
                self._remove(conn)
            return self._new(packet, key, now_ns)
        direction = 1 if key == conn.reply else 0
        if proto == IPPROTO_TCP:
            if packet.tcp_flags & TCP_SYN and not packet.payload_len and self.remember_repeats:
                outcome = self._tcp_repeat(conn, direction, packet, now_ns)
            else:
                outcome = tcp_packet(conn, direction, packet, now_ns, self._tcp_ns,
                                     be_liberal=self.tcp_be_liberal)
            if outcome:  # not TCP_OK: the rare cases
                unusual = self._tcp_outcome(conn, outcome, packet, now_ns)
                if unusual is not None:
                    return unusual
        elif conn.seen_reply and now_ns > conn.created_ns + _UDP_STREAM_AFTER_NS:
            conn.expires_ns = now_ns + self._udp_stream_ns
            if not conn.assured:
                self._assure(conn)
        else:
            conn.expires_ns = now_ns + self._udp_ns
        if direction:
            conn.seen_reply = True
            return _ESTABLISHED_REPLY
        return _ESTABLISHED_ORIGINAL if conn.seen_reply else _NEW_UNREPLIED

    @property
    def entries(self) -> Mapping[Key, Conn]:
        """The table, read-only: each connection under its original and reply tuple
        (expired ones not yet removed included)."""
        return self._table

    def has_room(self) -> bool:
        """Whether a new connection fits without making room. Then a packet whose tuple
        is not in :attr:`entries` and that opens a connection (:data:`NEW_FLAGS`, or
        UDP) is NEW and :meth:`classify` changes nothing for it: dropped, it leaves
        the table as it was (replay's fast path relies on this)."""
        return self._count < self.max_entries

    def commit(self, pending: Pending | None) -> None:
        """Confirm the connection a NEW packet would create: call on ACCEPT only.

        ``None`` is accepted and ignored, so ``commit(result.pending)`` is always
        safe. If an entry for the same tuple appeared meanwhile, the existing one
        is kept (the kernel resolves this clash the same way for the winner).
        """
        if pending is None:
            return
        original, packet, now_ns, conn = pending
        if conn is None:
            conn = self._build(original, packet, now_ns)
            if conn is None:  # pragma: no cover - classify only lets ICMP requests through
                return
        # _lookup of both tuples and _insert, inline: this runs per accepted new flow.
        table = self._table
        for key in (conn.original, conn.reply):
            existing = table.get(key)
            if existing is not None:
                if existing.expires_ns > now_ns:
                    return  # a live entry has either tuple: keep it
                self._remove(existing)
        if self._count >= self.max_entries and not self._make_room(now_ns):
            return
        table[conn.original] = table[conn.reply] = conn
        self._unassured.append(conn)  # a new entry is never assured
        self._live_unassured += 1
        if len(self._unassured) > 2 * self._live_unassured + _STALE_SLACK:
            self._compact_unassured()
        self._count += 1
        self.changes += 1

    def can_open(self) -> bool:
        """Whether a new connection can be added, if need be by an early drop (then
        :meth:`open_new` and :meth:`open_many` act)."""
        return self._count < self.max_entries or self._live_unassured > 0

    def open_new(self, key: Key, packet: Packet, now_ns: int, confirm: bool) -> bool:
        """:meth:`classify` then, if ``confirm`` (the verdict is ACCEPT), :meth:`commit`,
        for a TCP or UDP packet whose tuple ``key`` has no entry and that opens a
        connection (:data:`NEW_FLAGS`, or UDP): its state is NEW. Returns False, having
        done nothing, when the table is full with nothing to drop early (then
        :meth:`classify` sweeps, and may drop the packet: take that path)."""
        if self._count >= self.max_entries:
            if not self._live_unassured:
                return False
            self._remove(self._oldest_unassured())  # _make_room's early drop
        if confirm:
            self.commit(_new_tuple(Pending, (key, packet, now_ns, None)))
        return True

    def open_many(self, keys: list[Key], replies: list[Key],
                  syns: tuple[list[int], list[int], list[int], list[int]],
                  nows: list[int], confirm: bool) -> None:
        """:meth:`open_new` for each packet in turn — all TCP SYNs (``syns``: their flags,
        sequence numbers, windows and payload lengths) or all UDP, ``replies`` the tuples
        of their replies — when their tuples and their replies' are distinct, none has
        an entry, and the first can open (:meth:`can_open`): the same entries, order and
        counts, with the early drops taken at once."""
        if not confirm:  # nothing is added: only the first can find the table full
            if keys and self._count >= self.max_entries:
                self._remove(self._oldest_unassured())
            return
        count = len(keys)
        unassured, table = self._unassured, self._table
        evict = self._count + count - self.max_entries  # one per entry added to a full table
        skip = 0
        if evict > 0:
            old = min(evict, self._live_unassured)
            pop, get, popleft, removed = table.pop, table.get, unassured.popleft, 0
            while removed < old:  # _oldest_unassured and _remove, inline (per packet)
                gone = popleft()
                if not gone.assured and get(gone.original) is gone:
                    pop(gone.original)
                    pop(gone.reply, None)
                    removed += 1
            self._count -= removed
            self._live_unassured -= removed
            self.changes += removed
            skip = evict - old  # the first new entries go too, dropped early for later ones
        # _build, for many: TCP opens in SYN_SENT, UDP unreplied
        keys, replies, nows = keys[skip:], replies[skip:], nows[skip:]
        if keys and keys[0][1] == IPPROTO_TCP:
            flags, seqs, windows, payloads = (field[skip:] for field in syns)
            conns = syn_sent_conns(keys, replies, (flags, seqs, windows, payloads), nows,
                                   self._tcp_ns[sSS])
        else:
            udp_ns = self._udp_ns
            conns = [Conn(key, reply, now_ns, now_ns + udp_ns)
                     for key, reply, now_ns in zip(keys, replies, nows, strict=True)]
        table.update(zip(keys, conns, strict=True))
        table.update(zip(replies, conns, strict=True))
        unassured.extend(conns)
        self._live_unassured += len(conns)
        self._count += len(conns)
        if len(unassured) > 2 * self._live_unassured + _STALE_SLACK:
            self._compact_unassured()
        self.changes += count + skip  # every one added; the skipped ones removed again

    def expire(self, now_ns: int) -> int:
        """Remove every entry expired at ``now_ns``; return how many were removed."""
        # Each entry once: under its original tuple (the dict keeps that key object).
        dead = [conn for key, conn in self._table.items()
                if key is conn.original and conn.expires_ns <= now_ns]
        for conn in dead:
            self._remove(conn)
        self._last_sweep_ns = now_ns
        return len(dead)

    def state_of(self, packet: Packet, now_ns: int) -> TcpState | None:
        """The TCP state of the connection ``packet`` belongs to (inspection only)."""
        key = packet_key(packet)
        conn = self._lookup(key, now_ns) if key else None
        if conn is None or conn.state < 0:
            return None
        return TcpState(conn.state)

    # -- table ----------------------------------------------------------------

    def _lookup(self, key: Key, now_ns: int) -> Conn | None:
        conn = self._table.get(key)
        if conn is not None and conn.expires_ns <= now_ns:
            self._remove(conn)
            return None
        return conn

    def _remove(self, conn: Conn) -> None:
        if self._table.pop(conn.original, None) is not None:
            self._table.pop(conn.reply, None)
            if not conn.assured:
                self._live_unassured -= 1  # its place in the deque is stale now
            self._count -= 1
            self.changes += 1

    def _assure(self, conn: Conn) -> None:
        if not conn.assured:
            conn.assured = True
            self._live_unassured -= 1  # its place in the deque is stale now

    def _is_unassured(self, conn: Conn) -> bool:
        """Whether a deque entry is live: in the table (not removed) and unassured."""
        return not conn.assured and self._table.get(conn.original) is conn

    def _oldest_unassured(self) -> Conn:
        """Take the oldest live unassured entry off the deque (there is one)."""
        unassured, live = self._unassured, self._is_unassured
        while True:
            conn = unassured.popleft()
            if live(conn):
                return conn

    def _compact_unassured(self) -> None:
        self._unassured = deque(conn for conn in self._unassured if self._is_unassured(conn))

    def unassured(self) -> list[Conn]:
        """The unassured entries, oldest first: the order early drops take them in."""
        return [conn for conn in self._unassured if self._is_unassured(conn)]

    def _make_room(self, now_ns: int) -> bool:
        """Early drop: evict the oldest non-assured entry, else sweep expired ones."""
        if self._live_unassured:
            self._remove(self._oldest_unassured())
            return True
        # Sweeping is O(table); do it at most once per second of packet time.
        if self._last_sweep_ns is None or now_ns - self._last_sweep_ns >= NS:
            self.expire(now_ns)
        return self._count < self.max_entries

    # -- new connections ------------------------------------------------------

    def _new(self, packet: Packet, key: Key, now_ns: int) -> CtResult:
        """A packet without an entry: NEW with a :class:`Pending`, or INVALID."""
        proto = key[1]
        conn = None  # built by commit, except for a TCP pick-up (see Pending)
        if proto == IPPROTO_TCP:
            step = TCP_STEPS[0].get(packet.tcp_flags)
            if step is None:
                return _INVALID
            first = step[1][sNO]
            if first != sSS:
                if first == sIV or not self.tcp_loose:
                    return _INVALID
                conn = self._pick_up(key, packet, now_ns)
                if conn is None:
                    return _INVALID
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and key[4] not in ICMP_REQUESTS[proto]:
            return _INVALID  # a reply or a type without a pairing
        if self._count >= self.max_entries and not self._make_room(now_ns):
            return _DROPPED
        pending = _new_tuple(Pending, (key, packet, now_ns, conn))
        return _new_tuple(CtResult, (_NEW, _ORIGINAL, pending, False))  # type: ignore[no-any-return]

    def _build(self, key: Key, packet: Packet, now_ns: int) -> Conn | None:
        """The entry a pending NEW packet creates (tcp_new, icmp_new, …)."""
        proto = key[1]
        if proto in (IPPROTO_TCP, IPPROTO_UDP):
            family, proto, src, dst, sport, dport = key  # _inverse, inline
            reply: Key = (family, proto, dst, src, dport, sport)
        else:
            inverse = invert_key(key)
            if inverse is None:
                return None
            reply = inverse
        if proto == IPPROTO_TCP:
            conn = Conn(key, reply, now_ns, now_ns + self._tcp_ns[sSS])
            open_syn_sent(conn, packet)
            return conn
        if proto == IPPROTO_UDP:
            timeout = self._udp_ns
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            timeout = self._icmp_ns
        else:
            timeout = self._generic_ns
        return Conn(key, reply, now_ns, now_ns + timeout)

    def _pick_up(self, key: Key, packet: Packet, now_ns: int) -> Conn | None:
        """tcp_new for a segment other than a SYN (``tcp_loose``); ``None`` if refused."""
        reply = invert_key(key)
        if reply is None:  # pragma: no cover - a TCP tuple always has an inverse
            return None
        conn = Conn(key, reply, now_ns, now_ns)
        conn.state = sNO
        conn.liberal = True  # history is lost, so be liberal in both directions
        outcome = tcp_packet(conn, 0, packet, now_ns, self._tcp_ns,
                             be_liberal=self.tcp_be_liberal)
        return None if outcome == TCP_INVALID else conn

    # -- existing connections, the less common cases --------------------------

    def _tcp_repeat(self, conn: Conn, direction: int, packet: Packet, now_ns: int) -> int:
        """:func:`tcp_packet` for a SYN or SYN/ACK without payload, remembering a segment
        that changed nothing but the entry's timeout: the same segment again (a
        retransmission, as lost handshakes and floods send them) then changes the same
        — nothing but the timeout — and costs a comparison. Exact: ``tcp_packet`` is a
        function of the segment, these entry fields and ``tcp_be_liberal``."""
        fields = _tracked_fields(conn)
        seen = (direction, packet.tcp_flags, packet.tcp_seq, packet.tcp_ack,
                packet.tcp_window, self.tcp_be_liberal, fields)
        if seen == conn.steady:
            conn.expires_ns = now_ns + self._tcp_ns[conn.state]
            return TCP_OK
        expires = conn.expires_ns
        outcome = tcp_packet(conn, direction, packet, now_ns, self._tcp_ns,
                             be_liberal=self.tcp_be_liberal)
        # Remembered only when the segment took the full path (which sets the timeout,
        # where an ignored one does not) and left every other field as it found it.
        if outcome == TCP_OK and conn.expires_ns != expires \
                and conn.expires_ns == now_ns + self._tcp_ns[conn.state] \
                and _tracked_fields(conn) == fields:
            conn.steady = seen
        return outcome

    def _tcp_outcome(
        self, conn: Conn, outcome: int, packet: Packet, now_ns: int
    ) -> CtResult | None:
        """Act on a tcp_packet outcome other than TCP_OK; ``None``: the packet is tracked."""
        if outcome == TCP_INVALID:
            return _INVALID
        if outcome == TCP_REOPEN:
            self._remove(conn)
            return self._new(packet, conn.original, now_ns)
        if outcome == TCP_REMOVE:
            self._remove(conn)
        else:  # TCP_ASSURE
            self._assure(conn)
        return None

    def _classify_other(self, packet: Packet, proto: int, now_ns: int) -> CtResult:
        """ICMP/ICMPv6 and the generic tracker."""
        if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            icmp_type = packet.icmp_type
            if icmp_type in ICMP_ERRORS[proto]:
                return self._related(packet, now_ns)
            if proto == IPPROTO_ICMPV6 and icmp_type in ICMPV6_UNTRACKED:
                return _UNTRACKED
            timeout = self._icmp_ns
        else:
            timeout = self._generic_ns
        key = packet_key(packet)
        if key is None:
            return _INVALID
        conn = self._lookup(key, now_ns)
        if conn is None:
            return self._new(packet, key, now_ns)
        conn.expires_ns = now_ns + timeout
        return _seen(conn, 1 if key == conn.reply else 0)

    def _related(self, packet: Packet, now_ns: int) -> CtResult:
        """An ICMP error: RELATED to the connection of the packet it quotes."""
        inner = packet.inner
        if inner is None or inner.src != packet.dst or inner.frag_offset:
            return _INVALID
        if inner.proto in ICMP_ERRORS and inner.icmp_type in ICMP_ERRORS[inner.proto]:
            return _INVALID  # the kernel never relates an error to an error
        inner_key = packet_key(inner)
        reverse = invert_key(inner_key) if inner_key else None
        conn = self._lookup(reverse, now_ns) if reverse else None
        if conn is None:
            return _INVALID
        return _RELATED[1 if reverse == conn.reply else 0]


def _tracked_fields(conn: Conn) -> tuple[object, ...]:
    """The fields of an entry :func:`tcp_packet` reads (it writes some of them)."""
    return (conn.state, conn.win, conn.last_dir, conn.last_index, conn.closed, conn.liberal,
            conn.seen_reply, conn.assured)
