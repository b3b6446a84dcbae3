"""An NFLOG consumer on a plain ``AF_NETLINK`` socket: the packets the kernel dropped
for recentd's bans, read in batches, so user space replays their table writes.

Rules of this module:

1. The wire format (``nfnetlink_log``) is built and parsed by pure functions
   (:func:`config_bind`, :func:`config_mode`, :func:`logged_drops`); only
   :class:`NflogReader` touches a socket.
2. The kernel batches: it sends when ``qthresh`` packets wait, its buffer
   (``nlbufsiz``, at most 128 KiB: ~800 messages) is full, or ``timeout_cs`` hundredths
   of a second passed, so a flood costs one ``recv`` per ~800 drops.
3. Only the fixed IP header is copied (``copy_range``): all the replay reads is the
   family, the addresses, the TTL and the protocol.
4. A flood's messages share one layout: :func:`logged_drops` reads a batch at a fixed
   stride (byte columns compared in C, a precompiled struct), never attribute by
   attribute, and hands back *runs* — ``count`` drops of one header in one tick, in
   the order of their last drop — so a one-source flood costs a few operations per
   batch and per tick, not per packet. A batch of another shape is walked message by
   message (same answer, slower).
5. Each drop's tick is the kernel's receive stamp of its packet (``NFULA_TIMESTAMP``;
   the reader asks the kernel to stamp received packets), not the time the batch was
   read: coalescing the log for longer moves no stamp.
6. A full socket buffer loses log messages (ENOBUFS): counted in :attr:`NflogReader.lost`,
   never raised — the list then misses those stamps, so the ban may end earlier than
   xt_recent's (docs/offload.md says what that does to exactness).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, cast

from recentd.errors import BackendError
from recentd.live.policy import Drops
from recentd.packets.packet import ABSENT, Packet
from recentd.recent.ticks import ClockReading

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = NFNL_SUBSYS_ULOG << 8 | 0
NFULNL_MSG_CONFIG = NFNL_SUBSYS_ULOG << 8 | 1
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_NLBUFSIZ = 3
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_CFG_CMD_UNBIND = 2
NFULNL_CFG_CMD_PF_BIND = 3
NFULNL_COPY_PACKET = 2
NFULA_TIMESTAMP = 3
NFULA_PAYLOAD = 9
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
#: Bytes copied per packet: a fixed IPv6 header (an IPv4 one is shorter).
COPY_RANGE = 40
#: The kernel's batch buffer per group: its maximum (``nfulnl_set_nlbufsiz``).
NLBUFSIZ = 131072
#: Packets per batch at most (the buffer fills first with recentd's ~160-byte messages).
QTHRESH = 4096
#: A batch waits at most this long (hundredths of a second) for more packets.
TIMEOUT_CS = 2
#: The socket's receive buffer: batches waiting while the daemon is busy elsewhere.
RCVBUF = 1 << 23
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")
_NLA = struct.Struct("=HH")
_NLA_TYPE_MASK = 0x3FFF


def _align(size: int) -> int:
    return (size + 3) & ~3


def _attribute(kind: int, value: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(value), kind) + value
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _config(group: int, family: int, seq: int, attributes: bytes) -> bytes:
    body = _NFGEN.pack(family, 0, group) + attributes
    return _NLMSG.pack(_NLMSG.size + len(body), NFULNL_MSG_CONFIG,
                       NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body  # fmt: skip


def config_bind(group: int, seq: int) -> list[bytes]:
    """Messages that make this socket the reader of ``group`` (both families' logger)."""
    pf = [_config(0, fam, seq + i, _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_PF_BIND])))
          for i, fam in enumerate((socket.AF_INET, socket.AF_INET6))]  # fmt: skip
    bind = _config(group, socket.AF_UNSPEC, seq + 2,
                   _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))  # fmt: skip
    return [*pf, bind]


def config_mode(group: int, seq: int, *, copy_range: int, qthresh: int, timeout_cs: int) -> bytes:
    """Copy ``copy_range`` bytes of each packet; send a batch at ``qthresh`` packets or
    after ``timeout_cs`` hundredths of a second."""
    attrs = (
        _attribute(NFULA_CFG_MODE, struct.pack("!IBx", copy_range, NFULNL_COPY_PACKET))
        + _attribute(NFULA_CFG_QTHRESH, struct.pack("!I", qthresh))
        + _attribute(NFULA_CFG_TIMEOUT, struct.pack("!I", timeout_cs))
        + _attribute(NFULA_CFG_NLBUFSIZ, struct.pack("!I", NLBUFSIZ))
    )
    return _config(group, socket.AF_UNSPEC, seq, attrs)


def config_unbind(group: int, seq: int) -> bytes:
    return _config(group, socket.AF_UNSPEC, seq,
                   _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND])))  # fmt: skip


def _messages(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    pos = 0
    while pos + _NLMSG.size <= len(view):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(view, pos)
        if length < _NLMSG.size or pos + length > len(view):
            return
        yield kind, view[pos + _NLMSG.size:pos + length]
        pos += _align(length)


def errors(data: bytes) -> list[int]:
    """The error codes of the acknowledgements in ``data`` (0: success)."""
    return [-struct.unpack_from("=i", body)[0] for kind, body in _messages(data)
            if kind == NLMSG_ERROR]  # fmt: skip


def logged_payloads(data: bytes) -> list[bytes]:
    """The IP packets (as copied) of every packet message in ``data``, one message at a
    time (what :func:`logged_drops` reads at a stride; tests compare the two)."""
    out = []
    pos = 0
    while pos + _NLMSG.size <= len(data):
        length, _kind = struct.unpack_from("=IH", data, pos)
        if length < _NLMSG.size or pos + length > len(data):
            break
        layout = _layout(data, len(data), pos)
        if layout is not None:
            out.append(bytes(data[pos + layout.payload:pos + layout.payload + layout.copied]))
        pos += _align(length)
    return out


def header_packet(payload: bytes) -> Packet | None:
    """The family, addresses, TTL and protocol of a logged IP header, as a
    :class:`~recentd.packets.packet.Packet` (length and ports absent: the replay reads
    neither), or ``None`` if it is none."""
    if len(payload) >= 20 and payload[0] >> 4 == 4:
        return Packet(4, int.from_bytes(payload[12:16], "big"),
                      int.from_bytes(payload[16:20], "big"), payload[8], payload[9],
                      ABSENT)  # fmt: skip
    if len(payload) >= 40 and payload[0] >> 4 == 6:
        return Packet(6, int.from_bytes(payload[8:24], "big"),
                      int.from_bytes(payload[24:40], "big"), payload[7], payload[6],
                      ABSENT)  # fmt: skip
    return None


# ---- a batch as runs of drops (module rules 4 and 5) ------------------------------------


_NS = 1_000_000_000


def tick_at(now: ClockReading, stamp_ns: int) -> int:
    """The tick of a kernel receive stamp seen from ``now`` (0: unstamped, ``now``'s):
    :func:`recentd.clock.tick_of_wall`, inlined for the batch reader (its twin)."""
    if not stamp_ns or stamp_ns >= now.wall_ns:
        return now.tick
    return now.tick - (now.wall_ns - stamp_ns) * now.hz // _NS


def _after_tick_bound(now: ClockReading, tick: int) -> int:
    """``b`` such that a stamp's tick (:func:`tick_at`) is later than ``tick`` (< now's)
    exactly when ``stamp_ns * hz > b``: ``floor((W - ns)·hz / 1e9) < T - tick``."""
    return now.wall_ns * now.hz - (now.tick - tick) * _NS


#: A batch as the socket filled it: bytes, or the reader's reusable buffer.
Buffer = bytes | bytearray

#: The header bytes a drop's replay reads besides the version, per IP version: (offset,
#: length) in the payload (TTL or hop limit and protocol or next header; the addresses).
_KEY_BYTES = {4: ((8, 2), (12, 8)), 6: ((6, 2), (8, 32))}
_KEY_LEN = {4: 20, 6: 40}
_TIMESTAMP = struct.Struct("!QQ")
#: Each byte to its high nibble: a column of first bytes becomes a column of IP versions.
_VERSION_OF = bytes(b >> 4 for b in range(256))


class _Layout(NamedTuple):
    """Where a message's parts are, found in a batch's first message."""

    length: int  # nlmsg_len
    stride: int  # aligned: the distance between messages
    payload: int  # offset of the copied IP header in a message
    copied: int  # its length
    stamp: int  # offset of NFULA_TIMESTAMP's value, -1 without one


def _layout(data: Buffer, end: int, pos: int) -> _Layout | None:
    """The layout of the packet message at ``pos`` (``None``: not one, or no payload)."""
    length, kind = struct.unpack_from("=IH", data, pos)
    if kind != NFULNL_MSG_PACKET or length < _NLMSG.size or pos + length > end:
        return None
    at, stop, stamp = pos + _NLMSG.size + _NFGEN.size, pos + length, -1
    while at + _NLA.size <= stop:
        size, attr = _NLA.unpack_from(data, at)
        if size < _NLA.size:
            return None
        if attr & _NLA_TYPE_MASK == NFULA_TIMESTAMP and size == _NLA.size + _TIMESTAMP.size:
            stamp = at + _NLA.size - pos
        if attr & _NLA_TYPE_MASK == NFULA_PAYLOAD:
            return _Layout(length, _align(length), at + _NLA.size - pos, size - _NLA.size, stamp)
        at += _align(size)
    return None


def logged_drops(data: Buffer, now: ClockReading, end: int | None = None) -> list[Drops]:
    """Every packet message in ``data[:end]`` (one ``recv``), as runs of drops: per tick
    (in order), the distinct headers in the order of their last drop, each counted.

    Replaying the runs in order leaves the tables as replaying every drop at its own
    tick would (only the last drop of a header in a tick moves its entry in the LRU)."""
    end = len(data) if end is None else end
    pos = 0
    while pos + _NLMSG.size <= end:  # to the first packet message
        length, kind = struct.unpack_from("=IH", data, pos)
        if length < _NLMSG.size:
            return []
        layout = _layout(data, end, pos) if kind == NFULNL_MSG_PACKET else None
        if layout is not None:
            count = _uniform_run(data, end, pos, layout)
            if count:
                return _runs(data, pos, count, layout, now)
            return _slow(data, end, pos, now)  # rule 4: another shape, one at a time
        pos += _align(length)
    return []


def _column(data: Buffer, start: int, stride: int, count: int) -> Buffer:
    """The byte at ``start`` of each of ``count`` messages, sliced in C."""
    return data[start:start + stride * (count - 1) + 1:stride]


def _constant(data: Buffer, pos: int, offsets: Iterable[int], stride: int, count: int) -> bool:
    """Whether each byte at ``offsets`` is the same in all ``count`` messages from ``pos``."""
    for offset in offsets:
        column = _column(data, pos + offset, stride, count)
        if column.count(column[0]) != count:
            return False
    return True


def _uniform_run(data: Buffer, end: int, pos: int, layout: _Layout) -> int:
    """How many messages from ``pos`` share its layout (the whole rest of the batch when
    they all do; 0 when they do not, or for a single message)."""
    count = (end - pos) // layout.stride
    if count < 2:
        return 0
    # The message's length (a group's messages are packets, and its only other kind, the
    # batch's closing DONE, is shorter); the low byte of the payload attribute's type and
    # of the stamp's, at the first message's offsets (their high bytes carry no flags).
    heads = [*range(4), layout.payload - 2]
    if layout.stamp >= 0:
        heads.append(layout.stamp - 2)
    return count if _constant(data, pos, heads, layout.stride, count) else 0


def _runs(data: Buffer, pos: int, count: int, layout: _Layout, now: ClockReading) -> list[Drops]:
    """The runs of ``count`` same-layout messages from ``pos``: split where the tick
    changes (found by searching the raw stamps: the kernel logs in receive order),
    then grouped."""
    stride, offset, hz = layout.stride, pos + layout.stamp, now.hz
    unpack = _TIMESTAMP.unpack_from

    def stamp(i: int) -> int:
        sec, usec = unpack(data, offset + i * stride)
        return int(sec * _NS + usec * 1000)

    family = _family(data, pos, count, layout)
    alike = bool(family) and _constant(data, pos, _keys(layout, family).offsets, stride, count)
    out: list[Drops] = []
    start = 0
    last = stamp(count - 1) * hz if layout.stamp >= 0 else 0
    while start < count:
        first = stamp(start) if layout.stamp >= 0 else 0
        tick = tick_at(now, first)
        end = count
        if tick < now.tick:
            bound = _after_tick_bound(now, tick)
            if last > bound:
                end = _first_after(lambda i: stamp(i) * hz, (start, first * hz),
                                   (count - 1, last), bound)  # fmt: skip
        if alike:  # one header throughout (checked once): one run per tick
            (head,) = _group(data, pos + start * stride, 1, layout, tick)
            out.append(Drops(head.packet, end - start, tick))
        else:
            out += _group(data, pos + start * stride, end - start, layout, tick)
        start = end
    return out


def _first_after(value: Callable[[int], int], below: tuple[int, int], above: tuple[int, int],
                 bound: int) -> int:
    """The first index after ``below``'s whose ``value`` exceeds ``bound``, given ascending
    values and two (index, value) pairs with ``below``'s value <= bound < ``above``'s:
    interpolated while that narrows fast (a flood's stamps are nearly evenly spaced: two
    or three probes), then bisected."""
    (low, low_value), (high, high_value) = below, above
    probes = 0
    while high - low > 1:
        if probes < 4 and high_value > low_value:
            guess = low + (high - low) * (bound - low_value) // (high_value - low_value)
            guess = min(max(guess, low + 1), high - 1)
        else:
            guess = (low + high) // 2
        probes += 1
        guessed = value(guess)
        if guessed > bound:
            high, high_value = guess, guessed
        else:
            low, low_value = guess, guessed
    return high


class _Keys(NamedTuple):
    """What identifies a drop for its replay, in a message of one layout and family."""

    offsets: tuple[int, ...]  # its bytes, compared a column at a time
    picks: struct.Struct  # the same bytes, one row per message


@functools.lru_cache(maxsize=32)
def _keys(layout: _Layout, family: int) -> _Keys:
    base, at, fmt = layout.payload, 0, "="
    for off, size in _KEY_BYTES[family]:
        fmt += f"{base + off - at}x{size}s"
        at = base + off + size
    offsets = tuple(base + off + i for off, size in _KEY_BYTES[family] for i in range(size))
    return _Keys(offsets, struct.Struct(fmt + f"{layout.stride - at}x"))


def _family(data: Buffer, pos: int, count: int, layout: _Layout) -> int:
    """The IP version all ``count`` messages from ``pos`` carry a whole header of, or 0
    (not IP, too short a copy, or both families in messages of one length)."""
    family = data[pos + layout.payload] >> 4
    if family not in _KEY_LEN or layout.copied < _KEY_LEN[family]:
        return 0
    column = _column(data, pos + layout.payload, layout.stride, count)
    return family if column.translate(_VERSION_OF).count(family) == count else 0


def _group(data: Buffer, pos: int, count: int, layout: _Layout, tick: int) -> list[Drops]:
    """``count`` same-layout messages of one tick, grouped by the header bytes a replay
    reads: one run when they all agree (compared a column at a time), else counted."""
    family = _family(data, pos, count, layout)
    if not family:
        unstamped = ClockReading(0, tick, 1)  # every message at this tick
        packets = [run[0].packet for i in range(count)
                   if (run := _one(data, pos + i * layout.stride, unstamped))]
        return _counted(packets, tick)
    keys = _keys(layout, family)
    if count == 1 or _constant(data, pos, keys.offsets, layout.stride, count):
        base = pos + layout.payload
        first = header_packet(bytes(data[base:base + _KEY_LEN[family]]))
        return [] if first is None else [Drops(first, count, tick)]
    rows = keys.picks.iter_unpack(memoryview(data)[pos:pos + count * layout.stride])
    counted = Counter(reversed(list(rows)))  # first seen from the end: order of last drop
    return [Drops(packet, n, tick) for row, n in reversed(counted.items())
            if (packet := header_packet(_header(family, row))) is not None]


def _header(family: int, row: tuple[bytes, ...]) -> bytes:
    """A header :func:`header_packet` reads as the one ``row``'s bytes came from."""
    ttl_proto, addresses = row
    if family == 4:
        return b"\x45" + b"\0" * 7 + ttl_proto + b"\0\0" + addresses
    return b"\x60" + b"\0" * 5 + ttl_proto + addresses


def _slow(data: Buffer, end: int, pos: int, now: ClockReading) -> list[Drops]:
    """The packet messages from ``pos``, one at a time, grouped as :func:`logged_drops`."""
    out: list[Drops] = []
    tick, batch = 0, cast(list[Packet], [])
    while pos + _NLMSG.size <= end:
        length, kind = struct.unpack_from("=IH", data, pos)
        if length < _NLMSG.size or pos + length > end:
            break
        for run in _one(data, pos, now) if kind == NFULNL_MSG_PACKET else ():
            if batch and run.tick != tick:
                out += _counted(batch, tick)
                batch = []
            tick = run.tick
            batch.append(run.packet)
        pos += _align(length)
    return out + _counted(batch, tick)


def _counted(packets: list[Packet], tick: int) -> list[Drops]:
    counted = Counter(reversed(packets))  # first seen from the end: order of last drop
    return [Drops(packet, n, tick) for packet, n in reversed(counted.items())]


def _one(data: Buffer, pos: int, now: ClockReading) -> list[Drops]:
    """The message at ``pos`` (its own layout looked up) as a run of one, if it is a drop."""
    own = _layout(data, len(data), pos)
    if own is None:
        return []
    packet = header_packet(bytes(data[pos + own.payload:pos + own.payload + own.copied]))
    if packet is None:
        return []
    wall_ns = 0
    if own.stamp >= 0:
        sec, usec = _TIMESTAMP.unpack_from(data, pos + own.stamp)
        wall_ns = sec * 1_000_000_000 + usec * 1000
    return [Drops(packet, 1, tick_at(now, wall_ns))]


def packet_message(group: int, payload: bytes, seq: int = 0, *, wall_ns: int = 0,
                   before: bytes = b"") -> bytes:
    """One packet message as the kernel sends it (tests, fakes): ``wall_ns`` its receive
    stamp (0: none), ``before`` attributes ahead of the stamp (interface, hardware…)."""
    stamp = b"" if not wall_ns else _attribute(NFULA_TIMESTAMP, _TIMESTAMP.pack(
        wall_ns // 1_000_000_000, wall_ns % 1_000_000_000 // 1000))  # fmt: skip
    body = (_NFGEN.pack(socket.AF_INET, 0, group) + before + stamp
            + _attribute(NFULA_PAYLOAD, payload))  # fmt: skip
    return _NLMSG.pack(_NLMSG.size + len(body), NFULNL_MSG_PACKET, 0, seq, 0) + body


class NflogReader:
    """Reads the packets logged to ``group`` (rule 2: in batches).

    Args:
        group: the NFLOG group.
        qthresh: send a batch once this many packets wait (the kernel's buffer, ~800 of
            recentd's messages, usually fills first).
        timeout_cs: or once this many hundredths of a second passed.

    Raises:
        BackendError: the socket cannot be opened or the kernel refuses the binding.
    """

    def __init__(self, group: int, *, qthresh: int = QTHRESH, timeout_cs: int = TIMEOUT_CS) -> None:
        self.group = group
        #: Times the socket's buffer overflowed (ENOBUFS): log messages lost (rule 6).
        self.lost = 0
        #: Drops read so far.
        self.drops = 0
        self._floor: int | None = None
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self._sock.bind((0, 0))
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            with contextlib.suppress(OSError):  # root: past net.core.rmem_max
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            for message in [*config_bind(group, 1), config_mode(
                    group, 4, copy_range=COPY_RANGE, qthresh=qthresh, timeout_cs=timeout_cs)]:
                self._sock.send(message)
                codes = errors(self._sock.recv(8192))
                if any(codes):
                    raise BackendError("nfnetlink_log refused the binding", backend="nflog",
                                       returncode=max(codes), stderr=errno.errorcode.get(
                                           max(codes), ""))  # fmt: skip
            # Rule 5: while any socket asks for receive stamps the kernel stamps every
            # received packet, and nfnetlink_log passes the stamp on (NFULA_TIMESTAMP).
            self._stamper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._stamper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError as exc:
            raise BackendError(f"nflog group {group}: {exc}", backend="nflog") from exc
        self._sock.setblocking(False)
        self._buf = bytearray(1 << 20)

    def fileno(self) -> int:
        return self._sock.fileno()

    def _receive(self) -> Iterator[int]:
        """The size of each batch waiting now, received into the reader's buffer in turn
        (rule 6: an overflow is counted, never raised)."""
        while True:
            try:
                size = self._sock.recv_into(self._buf)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost += 1
                    continue
                raise BackendError(f"nflog read: {exc}", backend="nflog") from exc
            yield size

    def read_drops(self, now: ClockReading) -> list[Drops]:
        """Every drop waiting at ``now``, as runs (:func:`logged_drops`, each at the tick
        of its packets' receive stamps, :func:`tick_at`), ticks never going back: a
        stamp earlier than one already handed over is taken at that one's tick."""
        out: list[Drops] = []
        for size in self._receive():
            for run in logged_drops(self._buf, now, size):
                if self._floor is not None and run.tick < self._floor:
                    run = Drops(run.packet, run.count, self._floor)  # noqa: PLW2901
                self._floor = run.tick
                out.append(run)
                self.drops += run.count
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing anyway: the kernel unbinds it too
            self._sock.send(config_unbind(self.group, 9))
        self._sock.close()
        self._stamper.close()
