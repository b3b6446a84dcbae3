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
* ICMP entries are keyed by addresses, type and code but not the echo identifier
  (``Packet`` does not carry it), so concurrent pings between the same two hosts
  share an entry.
* The kernel reassembles fragments before conntrack; replay cannot (no IP id),
  so the first fragment is classified as the whole packet and non-first
  fragments are UNTRACKED and change nothing.
* Checksums are not verified (nf_conntrack_checksum only applies in PREROUTING).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, NamedTuple

from recentd.packets.packet import (
    ABSENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Packet,
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

#: nf_conntrack_max on a 64-bit host with more than 4 GiB of memory.
DEFAULT_MAX_ENTRIES = 262144
_NS = 1_000_000_000


class CtState(enum.IntFlag):
    """A packet's conntrack state, valued as the kernel's ``XT_STATE`` bits so a
    ``--ctstate NEW,ESTABLISHED`` mask is a plain ``|`` of members. An ``IntFlag``
    so it converts to and from the rule engine's own mask with ``int()``."""

    INVALID = 1
    ESTABLISHED = 2
    RELATED = 4
    NEW = 8
    UNTRACKED = 64


class CtDir(enum.IntEnum):
    """Direction of a packet relative to the connection's first packet."""

    ORIGINAL = 0
    REPLY = 1


class TcpState(enum.IntEnum):
    """The kernel's TCP conntrack states (``enum tcp_conntrack``)."""

    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9


@dataclass(frozen=True)
class Timeouts:
    """Timeouts in seconds, named and defaulted as the kernel's
    ``net.netfilter.nf_conntrack_*_timeout*`` sysctls."""

    tcp_syn_sent: int = 120
    tcp_syn_recv: int = 60
    tcp_established: int = 432000
    tcp_fin_wait: int = 120
    tcp_close_wait: int = 60
    tcp_last_ack: int = 30
    tcp_time_wait: int = 120
    tcp_close: int = 10
    udp: int = 30
    udp_stream: int = 120
    icmp: int = 30
    generic: int = 600

    def tcp(self, state: int) -> int:
        """The timeout for a TCP state, in nanoseconds."""
        seconds = (self.tcp_close, self.tcp_syn_sent, self.tcp_syn_recv, self.tcp_established,
                   self.tcp_fin_wait, self.tcp_close_wait, self.tcp_last_ack,
                   self.tcp_time_wait, self.tcp_close, self.tcp_syn_sent)[state]
        return seconds * _NS


# ---------------------------------------------------------------------------
# TCP rules as data (nf_conntrack_proto_tcp.c)

_SYN, _SYNACK, _FIN, _ACK, _RST, _NONE = range(6)
sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 = range(10)  # the kernel's names
sIV, sIG = 10, 11

#: tcp_conntracks[direction][flag index][old state] → new state.
TCP_TRANSITIONS: tuple[tuple[tuple[int, ...], ...], ...] = (
    (  # ORIGINAL   sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
        (sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2),  # syn
        (sIV, sIV, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR),  # synack
        (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),  # fin
        (sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV),  # ack
        (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),  # rst
        (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),  # none
    ),
    (  # REPLY
        (sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2),  # syn
        (sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR),  # synack
        (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),  # fin
        (sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG),  # ack
        (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),  # rst
        (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),  # none
    ),
)

_URG = 0x20
#: tcp_valid_flags: flag combinations (ignoring PSH, ECE, CWR) the kernel accepts.
TCP_VALID_FLAGS = frozenset({
    TCP_SYN, TCP_SYN | _URG, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK,
    TCP_FIN | TCP_ACK, TCP_FIN | TCP_ACK | _URG, TCP_ACK, TCP_ACK | _URG,
})
_IGNORED_FLAGS = 0x08 | 0x40 | 0x80  # PSH, ECE, CWR
_MAX_SCALE = 14
_MAXACKWINCONST = 66000
_U32 = 0xFFFFFFFF


def _flag_index(flags: int) -> int:
    """get_conntrack_index: which row of the transition table a segment uses."""
    if flags & TCP_RST:
        return _RST
    if flags & TCP_SYN:
        return _SYNACK if flags & TCP_ACK else _SYN
    if flags & TCP_FIN:
        return _FIN
    return _ACK if flags & TCP_ACK else _NONE


def _before(a: int, b: int) -> bool:
    """Sequence-number comparison modulo 2^32 (the kernel's ``before``)."""
    return ((a - b) & _U32) >= 0x80000000


# ---------------------------------------------------------------------------
# ICMP rules as data

#: request type → reply type; requests may create entries (icmp valid_new).
ICMP_REQUESTS = {IPPROTO_ICMP: {8: 0, 13: 14, 15: 16, 17: 18},
                 IPPROTO_ICMPV6: {128: 129, 139: 140}}
ICMP_ERRORS = {IPPROTO_ICMP: frozenset({3, 4, 5, 11, 12}),
               IPPROTO_ICMPV6: frozenset({1, 2, 3, 4})}
#: ICMPv6 types conntrack leaves untracked (MLD, router/neighbour discovery).
ICMPV6_UNTRACKED = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


def _icmp_inverse(proto: int, icmp_type: int) -> int | None:
    for request, reply in ICMP_REQUESTS[proto].items():
        if icmp_type == request:
            return reply
        if icmp_type == reply:
            return request
    return None


# ---------------------------------------------------------------------------
# Entries

#: (family, proto, src, dst, a, b): a/b are ports, or ICMP type/code, or ABSENT.
Key = tuple[int, int, int, int, int, int]


@dataclass(slots=True)
class _TcpSide:
    """ip_ct_tcp_state for one direction (sender's view)."""

    end: int = 0
    maxend: int = 0
    maxwin: int = 0
    liberal: bool = False
    close_init: bool = False


class _TcpConn:
    """ip_ct_tcp: the TCP part of an entry."""

    __slots__ = ("last_dir", "last_index", "sides", "state")

    def __init__(self) -> None:
        self.state = sNO
        self.sides = (_TcpSide(), _TcpSide())
        self.last_dir = -1
        self.last_index = -1


@dataclass(slots=True)
class _Conn:
    original: Key
    reply: Key
    created_ns: int
    expires_ns: int = 0
    seen_reply: bool = False
    assured: bool = False
    tcp: _TcpConn | None = None


class Pending:
    """A connection that exists once its first packet is accepted; pass it to
    :meth:`ConnTracker.commit`. Opaque: nothing in it is public."""

    __slots__ = ("_conn",)

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    def __repr__(self) -> str:
        return f"<Pending {self._conn.original}>"


class CtResult(NamedTuple):
    """What :meth:`ConnTracker.classify` says about a packet.

    Attributes:
        state: the packet's :class:`CtState`.
        direction: its direction within the connection, ``None`` when untracked/invalid.
        pending: for a NEW packet without an entry, the entry to :meth:`~ConnTracker.commit`
            if the packet is accepted; else ``None``.
        dropped: the table is full and nothing could be evicted: conntrack drops the
            packet before any rule sees it.
    """

    state: CtState
    direction: CtDir | None = None
    pending: Pending | None = None
    dropped: bool = False


_INVALID = CtResult(CtState.INVALID)
_UNTRACKED = CtResult(CtState.UNTRACKED)


def _key(packet: Packet) -> Key | None:
    """The original-direction tuple of a packet, ``None`` if it has none."""
    proto = packet.proto
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        if packet.sport == ABSENT:
            return None
        return (packet.family, proto, packet.src, packet.dst, packet.sport, packet.dport)
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if packet.icmp_type == ABSENT:
            return None
        return (packet.family, proto, packet.src, packet.dst, packet.icmp_type, packet.icmp_code)
    return (packet.family, proto, packet.src, packet.dst, ABSENT, ABSENT)


def _inverse(key: Key) -> Key | None:
    """The reply-direction tuple (``nf_ct_invert_tuple``); ``None`` if there is none."""
    family, proto, src, dst, a, b = key
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        inverse = _icmp_inverse(proto, a)
        return None if inverse is None else (family, proto, dst, src, inverse, b)
    return (family, proto, dst, src, b, a)


# ---------------------------------------------------------------------------
# The tracker


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
        self._table: dict[Key, tuple[_Conn, CtDir]] = {}
        self._unassured: dict[Key, _Conn] = {}  # insertion order = age, for early drop
        self._count = 0
        self._last_sweep_ns: int | None = None

    def __len__(self) -> int:
        """Number of connections in the table (expired ones not yet removed included)."""
        return self._count

    # -- public API -----------------------------------------------------------

    def classify(self, packet: Packet, now_ns: int) -> CtResult:
        """Classify ``packet`` seen at ``now_ns`` and update existing entries.

        Returns:
            The :class:`CtResult`. If its ``pending`` is set, call :meth:`commit`
            with it when (and only when) the packet's verdict is ACCEPT.
        """
        if packet.frag_offset:
            return _UNTRACKED
        proto = packet.proto
        if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            if packet.icmp_type in ICMP_ERRORS[proto]:
                return self._related(packet, now_ns)
            if proto == IPPROTO_ICMPV6 and packet.icmp_type in ICMPV6_UNTRACKED:
                return _UNTRACKED
        key = _key(packet)
        if key is None:
            return _INVALID
        found = self._lookup(key, now_ns)
        if found is None:
            return self._new(packet, key, now_ns)
        conn, direction = found
        return self._existing(conn, direction, packet, now_ns)

    def commit(self, pending: Pending | None) -> None:
        """Confirm the connection a NEW packet would create: call on ACCEPT only.

        ``None`` is accepted and ignored, so ``commit(result.pending)`` is always
        safe. If an entry for the same tuple appeared meanwhile, the existing one
        is kept (the kernel resolves this clash the same way for the winner).
        """
        if pending is None:
            return
        conn = pending._conn
        now_ns = conn.created_ns
        if self._lookup(conn.original, now_ns) or self._lookup(conn.reply, now_ns):
            return
        if self._count >= self.max_entries and not self._make_room(now_ns):
            return
        self._insert(conn)

    def expire(self, now_ns: int) -> int:
        """Remove every entry expired at ``now_ns``; return how many were removed."""
        dead = [conn for conn, direction in self._table.values()
                if direction is CtDir.ORIGINAL and conn.expires_ns <= now_ns]
        for conn in dead:
            self._remove(conn)
        self._last_sweep_ns = now_ns
        return len(dead)

    def state_of(self, packet: Packet, now_ns: int) -> TcpState | None:
        """The TCP state of the connection ``packet`` belongs to (inspection only)."""
        key = _key(packet)
        found = self._lookup(key, now_ns) if key else None
        if found is None or found[0].tcp is None:
            return None
        return TcpState(found[0].tcp.state)

    # -- table ----------------------------------------------------------------

    def _lookup(self, key: Key, now_ns: int) -> tuple[_Conn, CtDir] | None:
        found = self._table.get(key)
        if found is not None and found[0].expires_ns <= now_ns:
            self._remove(found[0])
            return None
        return found

    def _insert(self, conn: _Conn) -> None:
        self._table[conn.original] = (conn, CtDir.ORIGINAL)
        self._table[conn.reply] = (conn, CtDir.REPLY)
        if not conn.assured:
            self._unassured[conn.original] = conn
        self._count += 1

    def _remove(self, conn: _Conn) -> None:
        if self._table.pop(conn.original, None) is not None:
            self._table.pop(conn.reply, None)
            self._unassured.pop(conn.original, None)
            self._count -= 1

    def _assure(self, conn: _Conn) -> None:
        conn.assured = True
        self._unassured.pop(conn.original, None)

    def _make_room(self, now_ns: int) -> bool:
        """Early drop: evict the oldest non-assured entry, else sweep expired ones."""
        if self._unassured:
            self._remove(next(iter(self._unassured.values())))
            return True
        # Sweeping is O(table); do it at most once per second of packet time.
        if self._last_sweep_ns is None or now_ns - self._last_sweep_ns >= _NS:
            self.expire(now_ns)
        return self._count < self.max_entries

    # -- new connections ------------------------------------------------------

    def _new(self, packet: Packet, key: Key, now_ns: int) -> CtResult:
        reply = _inverse(key)
        if reply is None:  # an ICMP type that has no request/reply pairing
            return _INVALID
        conn = _Conn(key, reply, created_ns=now_ns)
        proto = packet.proto
        if proto == IPPROTO_TCP:
            if not self._tcp_new(conn, packet, now_ns):
                return _INVALID
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            if packet.icmp_type not in ICMP_REQUESTS[proto]:
                return _INVALID
            conn.expires_ns = now_ns + self.timeouts.icmp * _NS
        elif proto == IPPROTO_UDP:
            conn.expires_ns = now_ns + self.timeouts.udp * _NS
        else:
            conn.expires_ns = now_ns + self.timeouts.generic * _NS
        if self._count >= self.max_entries and not self._make_room(now_ns):
            return CtResult(CtState.INVALID, dropped=True)
        return CtResult(CtState.NEW, CtDir.ORIGINAL, Pending(conn))

    def _tcp_new(self, conn: _Conn, packet: Packet, now_ns: int) -> bool:
        """tcp_new + the first tcp_packet: may this segment start an entry?"""
        flags = packet.tcp_flags
        if flags & ~_IGNORED_FLAGS not in TCP_VALID_FLAGS:
            return False
        index = _flag_index(flags)
        new_state = TCP_TRANSITIONS[0][index][sNO]
        if new_state == sIV or (new_state != sSS and not self.tcp_loose):
            return False
        tcp = conn.tcp = _TcpConn()
        if new_state == sSS:
            # The sender is initialised from this very SYN and the receiver is blank,
            # so tcp_in_window cannot fail: set SYN_SENT directly (the hot path of a
            # SYN flood replay).
            end = _segment_end(packet)
            tcp.sides[0].end = tcp.sides[0].maxend = end
            tcp.sides[0].maxwin = max(packet.tcp_window, 1)
            tcp.state, tcp.last_dir, tcp.last_index = sSS, CtDir.ORIGINAL, _SYN
            conn.expires_ns = now_ns + self.timeouts.tcp_syn_sent * _NS
            return True
        # Picked up mid-stream: history is lost, so be liberal in both directions.
        tcp.sides[0].liberal = tcp.sides[1].liberal = True
        return self._tcp_packet(conn, CtDir.ORIGINAL, packet, now_ns) is not None

    # -- existing connections -------------------------------------------------

    def _existing(self, conn: _Conn, direction: CtDir, packet: Packet, now_ns: int) -> CtResult:
        proto = packet.proto
        if proto == IPPROTO_TCP:
            outcome = self._tcp_packet(conn, direction, packet, now_ns)
            if outcome is None:
                return _INVALID
            if outcome == "reopen":
                self._remove(conn)
                return self._new(packet, conn.original, now_ns)
        elif proto == IPPROTO_UDP:
            self._udp_packet(conn, now_ns)
        else:
            timeout = self.timeouts.icmp if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) else (
                self.timeouts.generic)
            conn.expires_ns = now_ns + timeout * _NS
        state = CtState.ESTABLISHED
        if direction is CtDir.REPLY:
            conn.seen_reply = True
        elif not conn.seen_reply:
            state = CtState.NEW
        return CtResult(state, direction)

    def _udp_packet(self, conn: _Conn, now_ns: int) -> None:
        timeouts = self.timeouts
        if conn.seen_reply and now_ns > conn.created_ns + 2 * _NS:
            conn.expires_ns = now_ns + timeouts.udp_stream * _NS
            if not conn.assured:
                self._assure(conn)
        else:
            conn.expires_ns = now_ns + timeouts.udp * _NS

    def _related(self, packet: Packet, now_ns: int) -> CtResult:
        """An ICMP error: RELATED to the connection of the packet it quotes."""
        inner = packet.inner
        if inner is None or inner.src != packet.dst or inner.frag_offset:
            return _INVALID
        if inner.proto in ICMP_ERRORS and inner.icmp_type in ICMP_ERRORS[inner.proto]:
            return _INVALID  # the kernel never relates an error to an error
        inner_key = _key(inner)
        reverse = _inverse(inner_key) if inner_key else None
        found = self._lookup(reverse, now_ns) if reverse else None
        if found is None:
            return _INVALID
        return CtResult(CtState.RELATED, found[1])

    # -- TCP ------------------------------------------------------------------

    def _tcp_packet(
        self, conn: _Conn, direction: CtDir, packet: Packet, now_ns: int
    ) -> Literal["ok", "reopen"] | None:
        """nf_conntrack_tcp_packet: ``None`` = INVALID, ``"reopen"``, or ``"ok"``."""
        tcp = conn.tcp
        flags = packet.tcp_flags
        if tcp is None or flags & ~_IGNORED_FLAGS not in TCP_VALID_FLAGS:
            return None
        index = _flag_index(flags)
        old = tcp.state
        new = TCP_TRANSITIONS[direction][index][old]
        if new == sSS and old >= sTW:
            closed = tcp.sides[0].close_init or tcp.sides[1].close_init
            if closed or (tcp.last_dir == direction and tcp.last_index == _RST):
                return "reopen"
            new = sIG
        if new == sIV:
            return None
        if new == sIG:  # possibly valid, possibly not: let it through, learn nothing
            tcp.last_dir, tcp.last_index = direction, index
            return "ok"
        if not self._in_window(tcp, direction, packet):
            return None
        self._tcp_advance(conn, tcp, (direction, index, old, new), flags, now_ns)
        return "ok"

    def _tcp_advance(
        self, conn: _Conn, tcp: _TcpConn, step: tuple[int, int, int, int], flags: int,
        now_ns: int,
    ) -> None:
        direction, index, old, new = step
        tcp.last_dir, tcp.last_index, tcp.state = direction, index, new
        if old != new and new == sFW:
            tcp.sides[direction].close_init = True
        timeout = self.timeouts.tcp_close * _NS if index == _RST else self.timeouts.tcp(new)
        conn.expires_ns = now_ns + timeout
        if not conn.seen_reply:
            if flags & TCP_RST:
                # "If only reply is a RST, we can consider ourselves not to have an
                # established connection" (the kernel, --RR): kill it at once.
                self._remove(conn)
        elif not conn.assured and old in (sSR, sES) and new == sES:
            self._assure(conn)

    def _in_window(self, tcp: _TcpConn, direction: int, packet: Packet) -> bool:
        """tcp_in_window with windows at maximal scale (see the module docstring)."""
        sender, receiver = tcp.sides[direction], tcp.sides[1 - direction]
        flags, seq, ack = packet.tcp_flags, packet.tcp_seq, packet.tcp_ack
        end = _segment_end(packet)
        syn = bool(flags & TCP_SYN)
        win = packet.tcp_window if syn else packet.tcp_window << _MAX_SCALE
        self._init_sender(tcp, direction, packet, end, win)
        if not flags & TCP_ACK or (flags & TCP_RST and ack == 0):
            ack = receiver.end  # no ACK (or a broken RST|ACK with 0): only check the rest
        if seq == end and (not flags & TCP_RST or (seq == 0 and tcp.state == sSS)):
            seq = end = sender.end  # no data: check the ack only
        maxackwin = max(sender.maxwin, _MAXACKWINCONST)
        ok = (_before(seq, (sender.maxend + 1) & _U32)
              and _before((sender.end - receiver.maxwin - 1) & _U32, end)
              and _before(ack, (receiver.end + 1) & _U32)
              and _before((receiver.end - maxackwin - 1) & _U32, ack))
        if not ok:
            return sender.liberal or self.tcp_be_liberal
        _update_window(sender, receiver, end, ack, win)
        return True

    @staticmethod
    def _init_sender(tcp: _TcpConn, direction: int, packet: Packet, end: int, win: int) -> None:
        sender, receiver = tcp.sides[direction], tcp.sides[1 - direction]
        syn = bool(packet.tcp_flags & TCP_SYN)
        if sender.maxwin == 0:
            if syn:  # SYN/ACK answering a SYN, or simultaneous open
                sender.end = sender.maxend = end
                sender.maxwin = max(win, 1)
                return
            sender.end = end  # mid-stream: use what this packet tells
            sender.maxwin = max(win, 1)
            sender.maxend = (end + sender.maxwin) & _U32
            if receiver.maxwin == 0:
                receiver.end = receiver.maxend = (
                    packet.tcp_ack if packet.tcp_flags & TCP_ACK else receiver.end)
            return
        reinit = (tcp.state == sSS and direction == 0) or (tcp.state == sSR and direction == 1)
        if reinit and _before(sender.end, end):  # RFC 793: a reinitialised sender
            sender.end = sender.maxend = end
            sender.maxwin = max(win, 1)


def _segment_end(packet: Packet) -> int:
    flags = packet.tcp_flags
    return (packet.tcp_seq + packet.payload_len + bool(flags & TCP_SYN)
            + bool(flags & TCP_FIN)) & _U32


def _update_window(sender: _TcpSide, receiver: _TcpSide, end: int, ack: int, win: int) -> None:
    """The state updates tcp_in_window makes for an in-window segment."""
    sender.maxwin = max(sender.maxwin, win)
    if _before(sender.end, end):
        sender.end = end
    if receiver.maxwin and _before(sender.maxend, end):
        receiver.maxwin += (end - sender.maxend) & _U32
    if _before((receiver.maxend - 1) & _U32, (ack + win) & _U32):
        receiver.maxend = (ack + win + (win == 0)) & _U32
