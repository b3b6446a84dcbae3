"""TCP connection tracking: the kernel's state table, flag validity and window tracking.

The TCP part of :mod:`recentd.packets.conntrack` (see its docstring for the rules and
the documented deviations), from ``nf_conntrack_proto_tcp.c``. It works on one
:class:`~recentd.packets.conntrack_model.Conn` at a time and never touches the table:
what the table must do (remove, assure, reopen) comes back as an outcome code.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from recentd.packets.conntrack_model import Conn, Key
from recentd.packets.packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

if TYPE_CHECKING:
    from recentd.packets.packet import Packet

__all__ = [
    "TCP_ASSURE",
    "TCP_INVALID",
    "TCP_OK",
    "TCP_REMOVE",
    "TCP_REOPEN",
    "TCP_STEPS",
    "TCP_TRANSITIONS",
    "TCP_VALID_FLAGS",
    "TcpState",
    "open_syn_sent",
    "tcp_packet",
]


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
_HALF = 0x80000000  # (a - b) & _U32 >= _HALF is the kernel's before(a, b)


def _flag_index(flags: int) -> int:
    """get_conntrack_index: which row of the transition table a segment uses."""
    if flags & TCP_RST:
        return _RST
    if flags & TCP_SYN:
        return _SYNACK if flags & TCP_ACK else _SYN
    if flags & TCP_FIN:
        return _FIN
    return _ACK if flags & TCP_ACK else _NONE


#: One step of the state machine for a flag byte: (flag index, transition row, what the
#: flags add to the sequence space (SYN, FIN), SYN, ACK, RST).
Step = tuple[int, tuple[int, ...], int, bool, bool, bool]


def _step(direction: int, flags: int) -> Step:
    index = _flag_index(flags)
    return (index, TCP_TRANSITIONS[direction][index],
            bool(flags & TCP_SYN) + bool(flags & TCP_FIN),
            bool(flags & TCP_SYN), bool(flags & TCP_ACK), bool(flags & TCP_RST))


#: TCP_STEPS[direction][flag byte] → its Step, for every valid flag byte; a byte that
#: is missing is INVALID. One dict lookup per segment replaces the validity check, the
#: flag classification, two of the three table subscripts and the flag tests.
TCP_STEPS: tuple[dict[int, Step], ...] = tuple(
    {flags: _step(direction, flags)
     for flags in range(256) if flags & ~_IGNORED_FLAGS in TCP_VALID_FLAGS}
    for direction in (0, 1)
)

# Outcomes of tcp_packet: what the caller does with the packet and the table.
TCP_OK = 0  # tracked: the packet's state follows from direction and seen_reply
TCP_INVALID = 1  # the packet is INVALID; the entry is unchanged
TCP_REOPEN = 2  # a SYN reopening a closed connection: replace the entry (NEW)
TCP_REMOVE = 3  # an RST answering the first packet: drop the entry, packet tracked
TCP_ASSURE = 4  # the handshake completed: mark the entry assured, packet tracked


def open_syn_sent(conn: Conn, packet: Packet) -> None:
    """Set up ``conn``'s TCP part from the SYN that opens it: SYN_SENT, the sender's
    window from this very SYN. The receiver is blank, so tcp_in_window cannot fail:
    this is its result, set directly."""
    flags = packet.tcp_flags
    end = (packet.tcp_seq + packet.payload_len + ((flags & TCP_SYN) >> 1)
           + (flags & TCP_FIN)) & _U32
    window = packet.tcp_window
    conn.win = (end, end, window if window > 1 else 1, 0, 0, 0)
    conn.state, conn.last_dir, conn.last_index = sSS, 0, _SYN


def syn_sent_conns(keys: list[Key], replies: list[Key],
                   syns: tuple[list[int], list[int], list[int], list[int]],
                   nows: list[int], timeout_ns: int) -> list[Conn]:
    """``Conn(key, reply, now, now + timeout_ns)`` then :func:`open_syn_sent` for each
    SYN (``syns``: their flags, sequence numbers, windows and payload lengths), in one
    loop: an inline copy of both (twins: ``Conn.__init__``, open_syn_sent), because a
    flood of new sources opens one per packet (bench/flood.py)."""
    new, made = Conn.__new__, []
    for key, reply, flags, seq, window, payload, now_ns in zip(keys, replies, *syns, nows,
                                                               strict=True):
        conn = new(Conn)
        conn.original, conn.reply, conn.created_ns = key, reply, now_ns
        conn.expires_ns = now_ns + timeout_ns
        conn.seen_reply = conn.assured = conn.liberal = conn.closed = False
        conn.steady = None
        end = (seq + payload + ((flags & TCP_SYN) >> 1) + (flags & TCP_FIN)) & _U32
        conn.win = (end, end, window if window > 1 else 1, 0, 0, 0)
        conn.state, conn.last_dir, conn.last_index = sSS, 0, _SYN
        made.append(conn)
    return made


def tcp_packet(  # noqa: PLR0912, PLR0915 - one function on purpose, see below
    conn: Conn, direction: int, packet: Packet, now_ns: int, timeouts_ns: tuple[int, ...], *,
    be_liberal: bool,
) -> int:
    """nf_conntrack_tcp_packet for ``conn``'s existing TCP state: update it, return an
    outcome (``TCP_OK`` … ``TCP_ASSURE``). ``timeouts_ns[state]`` is the state's timeout.

    The state step, tcp_in_window (with windows at maximal scale, see the conntrack
    docstring) and the state update are one function with both window sides in local
    variables, on purpose: this runs for every segment of every tracked connection,
    and side objects or helper calls (the kernel's tcp_init_sender, before(), the
    window update) would cost more than the arithmetic itself.
    """
    step = TCP_STEPS[direction].get(packet.tcp_flags)
    if step is None:
        return TCP_INVALID
    index, row, extra, syn, has_ack, rst = step
    old = conn.state
    new = row[old]
    if new >= sIV or (new == sSS and old >= sTW):
        return _tcp_unusual(conn, direction, index, old, new)
    # -- tcp_in_window
    seq, ack, win = packet.tcp_seq, packet.tcp_ack, packet.tcp_window
    end = (seq + packet.payload_len + extra) & _U32
    if not syn:
        win <<= _MAX_SCALE
    if direction:
        r_end, r_maxend, r_maxwin, s_end, s_maxend, s_maxwin = conn.win
    else:
        s_end, s_maxend, s_maxwin, r_end, r_maxend, r_maxwin = conn.win
    # The kernel's tcp_init_sender: its changes stay even if the segment is refused.
    if s_maxwin == 0:
        s_end = end
        s_maxwin = win if win > 1 else 1
        if syn:  # SYN/ACK answering a SYN, or simultaneous open
            s_maxend = end
        else:  # picked up mid-stream: use what this segment tells
            s_maxend = (end + s_maxwin) & _U32
            if r_maxwin == 0:
                r_end = r_maxend = ack if has_ack else r_end
    elif old < sES and ((old == sSS and not direction) or (old == sSR and direction)) and (
            (s_end - end) & _U32 >= _HALF):  # RFC 793: a reinitialised sender
        s_end = s_maxend = end
        s_maxwin = win if win > 1 else 1
    if not has_ack or (rst and ack == 0):
        ack = r_end  # no ACK (or a broken RST|ACK with 0): only check the rest
    if seq == end and (not rst or (seq == 0 and old == sSS)):
        seq = end = s_end  # no data: check the ack only
    maxackwin = s_maxwin if s_maxwin > _MAXACKWINCONST else _MAXACKWINCONST
    # Checks I-IV, each before(a, b) being (a - b) & _U32 >= _HALF, rewritten with
    # fewer operations (each costs ~15 ns here) but exactly equal for all integers:
    # I   before(seq, maxend + 1)           ⟺ (maxend - seq) & _U32 < _HALF
    # II  before(s_end - r_maxwin - 1, end) ⟺ ahead + r_maxwin < _HALF, or (if that sum
    #                                         reaches 2^32 at all) the kernel's formula
    # III before(ack, r_end + 1)            ⟺ (r_end - ack) & _U32 < _HALF
    # IV  before(r_end - maxackwin - 1, ack) given III and maxackwin < _HALF
    #                                       ⟺ (r_end - ack) & _U32 <= maxackwin
    # and the update's before(s_end, end)   ⟺ 0 < ahead <= _HALF
    ahead = (end - s_end) & _U32  # how far the segment reaches past the sender's end
    reach = ahead + r_maxwin
    behind = (r_end - ack) & _U32  # how far the ack is behind the receiver's end
    if ((s_maxend - seq) & _U32 < _HALF  # I: seq before the sender's maxend
            and (reach < _HALF or (  # II: end after the sender's end - the window
                reach > _U32 and (s_end - r_maxwin - 1 - end) & _U32 >= _HALF))
            and (behind <= maxackwin if maxackwin < _HALF  # III and IV: an ack for data
                 else behind < _HALF and (behind - maxackwin - 1) & _U32 >= _HALF)):  # sent
        # In window: the kernel's updates.
        if win > s_maxwin:  # noqa: PLR1730 - max() is a call, and this runs per segment
            s_maxwin = win
        if 0 < ahead <= _HALF:
            s_end = end
        if r_maxwin:
            past = (end - s_maxend) & _U32
            if 0 < past <= _HALF:  # before(s_maxend, end)
                r_maxwin += past
        acked = ack + win
        if (acked - r_maxend) & _U32 < _HALF:  # before(r_maxend - 1, acked)
            r_maxend = (acked + (win == 0)) & _U32
        in_window = True
    else:
        in_window = conn.liberal or be_liberal
    if direction:
        conn.win = (r_end, r_maxend, r_maxwin, s_end, s_maxend, s_maxwin)
    else:
        conn.win = (s_end, s_maxend, s_maxwin, r_end, r_maxend, r_maxwin)
    if not in_window:
        return TCP_INVALID
    # -- the state update (the rest of nf_conntrack_tcp_packet)
    conn.last_dir = direction
    conn.last_index = index
    conn.state = new
    if new == sFW and old != sFW:
        conn.closed = True
    # An RST always moves to CLOSE, so timeouts_ns[new] is the kernel's tcp_close for it.
    conn.expires_ns = now_ns + timeouts_ns[new]
    if not conn.seen_reply:
        # "If only reply is a RST, we can consider ourselves not to have an
        # established connection" (the kernel, --RR): the caller kills it at once.
        return TCP_REMOVE if rst else TCP_OK
    if new == sES and not conn.assured and old in (sSR, sES):
        return TCP_ASSURE
    return TCP_OK


def _tcp_unusual(conn: Conn, direction: int, index: int, old: int, new: int) -> int:
    """The transitions that learn nothing: invalid, ignored, or a SYN after a close."""
    if new == sSS:  # a SYN in TIME_WAIT or CLOSE
        if conn.closed or (conn.last_dir == direction and conn.last_index == _RST):
            return TCP_REOPEN
        new = sIG
    if new == sIV:
        return TCP_INVALID
    # sIG: possibly valid, possibly not: let it through, remember only the segment kind.
    conn.last_dir = direction
    conn.last_index = index
    return TCP_OK
