"""Classic pcap files read in columns: a chunk of records at a time, into numpy arrays.

Theory of operation: replaying a flood costs per packet, and most of a flood's
packets are of one kind — option-less, unfragmented IPv4 carrying TCP or UDP, on a
raw-IP or untagged-Ethernet link — whose every field lies at a fixed offset. Here
the records of a chunk are framed in one pass, and their timestamps, lengths and,
for the records of that kind (*fixed* records), header fields and header bytes are
read for the whole chunk at once with numpy. Every other record is decoded one by
one by the ordinary reader's decoder (:meth:`Chunk.record`), so a chunk says nothing
that :func:`~recentd.packets.capture.read_capture` would not: only faster.

Rules:

1. :func:`read_columns` yields :class:`Chunk` objects, and plain
   :class:`~recentd.packets.capture.CapturedPacket` records where columns do not
   apply: all of a pcapng file or of a link type other than raw IP and Ethernet,
   and everything from the first framing anomaly of a pcap file on (an impossible
   record length, a file ending inside a record), which the ordinary reader then
   reads — and raises on — exactly as it always does.
2. A record is fixed exactly when its IP packet has the fixed layout
   (:mod:`recentd.packets.layout`, whose test the decoder's fast path also makes) and,
   on Ethernet, its frame is untagged IPv4.
3. Timestamps are exact integer nanoseconds, as the ordinary reader's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from recentd.packets import capture
from recentd.packets.capture import CapturedPacket
from recentd.packets.layout import HEAD_BYTES, MIN_BYTES, fixed_rows
from recentd.packets.packet import ABSENT, IPPROTO_TCP, Packet

__all__ = ["PACKET_COLUMNS", "Chunk", "fixed_packets", "read_columns"]

#: Bytes read from the stream per chunk.
CHUNK_BYTES = 2 << 20
_GATHER = MIN_BYTES  # bytes gathered per record: what the layout's test reads

I64 = npt.NDArray[np.int64]


@dataclass
class Chunk:
    """Consecutive records of a pcap file.

    Attributes:
        first_n: the 1-based packet number of the first record.
        buf: the bytes the records lie in.
        starts, ends: each record's frame within ``buf``.
        ts_ns: each record's timestamp.
        fixed: which records are of the fixed kind (rule 2).
        size: bytes captured from the IP header on (fixed records).
        proto, src, dst, sport, dport, flags, total, ttl, seq, ack, window, payload:
            header fields (fixed records), as the decoder gives them (``flags``,
            ``seq``, ``ack``, ``window`` are for TCP; ``payload`` is the transport
            payload's length).
        head: the first :data:`~recentd.packets.layout.HEAD_BYTES` bytes of each IP
            packet (fixed records).
    """

    first_n: int
    buf: bytes
    starts: I64
    ends: I64
    ts_ns: I64
    fixed: npt.NDArray[np.bool_]
    size: I64
    proto: I64
    src: I64
    dst: I64
    sport: I64
    dport: I64
    flags: I64
    total: I64
    ttl: I64
    seq: I64
    ack: I64
    window: I64
    payload: I64
    head: npt.NDArray[np.uint8]
    _make: capture.RecordMaker[CapturedPacket]

    def __len__(self) -> int:
        return len(self.starts)

    def packet(self, index: int) -> Packet:
        """The packet of fixed record ``index``, from the columns."""
        (packet,) = fixed_packets({column: [int(getattr(self, column)[index])]
                                   for column in PACKET_COLUMNS.values()})
        return packet

    def record(self, index: int) -> CapturedPacket:
        """Record ``index`` decoded by the ordinary reader's decoder."""
        return self._make(self.first_n + index, int(self.ts_ns[index]), self.buf,
                          int(self.starts[index]), int(self.ends[index]))


#: The columns a fixed record's packet is made of, by the :class:`Packet` field each
#: gives (see :func:`fixed_packets`).
PACKET_COLUMNS: Mapping[str, str] = {
    "src": "src", "dst": "dst", "ttl": "ttl", "proto": "proto", "length": "total",
    "sport": "sport", "dport": "dport", "tcp_flags": "flags", "tcp_seq": "seq",
    "tcp_ack": "ack", "tcp_window": "window", "payload_len": "payload",
}  # fmt: skip
#: The fields a fixed record's packet has whatever its bytes (the others: Packet's
#: defaults). A UDP record's ``flags``, ``seq``, ``ack`` and ``window`` columns hold
#: what the decoder gives it (``ABSENT``, 0).
_FIXED_FIELDS: Mapping[str, object] = {"family": 4}
# tuple.__new__ bound to Packet, in C: map() then builds each packet with no Python call.
_new_packet: Callable[[tuple[object, ...]], Packet] = partial(tuple.__new__, Packet)


def fixed_packets(columns: Mapping[str, Iterable[int]]) -> Iterator[Packet]:
    """The packets of fixed records from their :data:`PACKET_COLUMNS`: what the
    decoder's fast path makes of them. Built by name — each :class:`Packet` field from
    its column or constant, in the order of ``Packet._fields`` — and in C."""
    sources = {field: columns[column] for field, column in PACKET_COLUMNS.items()}
    constant = {**Packet._field_defaults, **_FIXED_FIELDS}
    fields = [sources[name] if name in sources else repeat(constant[name])
              for name in Packet._fields]
    return map(_new_packet, zip(*fields, strict=False))  # the repeats end with the columns


def read_columns(path: str | Path) -> Iterator[Chunk | CapturedPacket]:
    """Read a capture in chunks where columns apply, record by record elsewhere.

    Raises:
        CaptureError: as :func:`~recentd.packets.capture.read_capture`.
    """
    return capture.read_file(Path(path), _read)


def _read(path: Path, stream: BinaryIO) -> Iterator[Chunk | CapturedPacket]:
    head = stream.read(4)
    order = _pcap_order(head)
    if order is None:  # pcapng, or not a capture: the ordinary reader says which
        stream.seek(0)
        yield from capture._raw_records(path, stream, True)  # type: ignore[misc]
        return
    frac_ns = 1 if struct.unpack(order + "I", head)[0] == capture._PCAP_MAGIC_NS else 1000
    link, limit = capture.pcap_header(path, stream, order)
    make = capture._decoder_for(link)
    if link not in (capture._raw, capture._ethernet):
        yield from capture.pcap_body(path, stream, order=order, frac_ns=frac_ns, make=make,
                                     limit=limit)
        return
    ip_offset = 0 if link is capture._raw else 14
    caplen_at = struct.Struct(order + "I").unpack_from
    words = np.dtype(np.uint32).newbyteorder("<" if order == "<" else ">")
    data, base, n = b"", 24, 0  # base: the file offset of data[0]
    while True:
        more = stream.read(CHUNK_BYTES)
        data += more
        starts, pos, anomaly = _frame(data, caplen_at, limit, words)
        if starts:
            yield _chunk(data, starts, order=order, frac_ns=frac_ns, first_n=n + 1,
                         ip_offset=ip_offset, make=make)
            n += len(starts)
        if anomaly or (not more and pos < len(data)):
            # Damage, or the file ends inside a record: the ordinary reader takes it
            # from there, and raises its own error.
            stream.seek(base + pos)
            yield from capture.pcap_body(path, stream, order=order, frac_ns=frac_ns, make=make,
                                         limit=limit, base=base + pos, n=n)
            return
        if not more:
            return
        data, base = data[pos:], base + pos


def _pcap_order(head: bytes) -> str | None:
    if len(head) == 4:
        for order in "<>":
            if struct.unpack(order + "I", head)[0] in (capture._PCAP_MAGIC_US,
                                                        capture._PCAP_MAGIC_NS):
                return order
    return None


def _frame(data: bytes, unpack: Callable[[bytes, int], tuple[int, ...]], limit: int,
           words: np.dtype[np.uint32]) -> tuple[list[int], int, bool]:
    """Where each whole record in ``data`` starts; where the first incomplete one
    starts; and whether framing stopped at an impossible record length. ``unpack``
    reads a record header's captured length (``words``: its numpy type).

    Record by record, except that after two records of one length the rest of a run
    of that length is found with numpy in one go (floods are runs); a probe that
    finds a short run turns probing off for a while, so mixed traffic pays little.
    """
    starts: list[int] = []
    append, size, pos = starts.append, len(data), 0
    raw = np.frombuffer(data, dtype=np.uint8)
    previous, quiet = -1, 0
    while pos + 16 <= size:
        caplen = unpack(data, pos + 8)[0]
        if caplen > limit:
            return starts, pos, True
        end = pos + 16 + caplen
        if end > size:
            break
        append(pos)
        pos = end
        if caplen == previous and not quiet:
            run = _run(raw, pos, 16 + caplen, caplen, words)
            if run:
                starts.extend(range(pos, pos + run * (16 + caplen), 16 + caplen))
                pos += run * (16 + caplen)
            if run < _PROBE:
                quiet = _QUIET
        elif quiet:
            quiet -= 1
        previous = caplen
    return starts, pos, False


#: Records a first probe looks at, and how many records probing then rests after a
#: short run.
_PROBE, _QUIET = 64, 256


def _run(raw: npt.NDArray[np.uint8], pos: int, stride: int, caplen: int,
         words: np.dtype[np.uint32]) -> int:
    """How many whole records of length ``caplen`` follow one another from ``pos``."""
    fit = (len(raw) - pos) // stride
    found = 0
    for window in (min(fit, _PROBE), fit):
        if window <= found:
            break
        fields = np.lib.stride_tricks.as_strided(raw[pos + 8 :], shape=(window, 4),
                                                 strides=(stride, 1))
        lengths = np.ascontiguousarray(fields).view(words).ravel()
        other = np.flatnonzero(lengths != caplen)
        if len(other):
            return int(other[0])
        found = window
    return found


def _chunk(data: bytes, starts_list: list[int], *, order: str, frac_ns: int, first_n: int,
           ip_offset: int, make: capture.RecordMaker[CapturedPacket]) -> Chunk:
    raw = np.frombuffer(data, dtype=np.uint8)
    starts = np.array(starts_list, dtype=np.int64)
    words = np.dtype(np.uint32).newbyteorder("<" if order == "<" else ">")
    header = _rows(raw, starts, 16).view(words).astype(np.int64)
    ts_ns = header[:, 0] * 1_000_000_000 + header[:, 1] * frac_ns
    frame_starts = starts + 16
    ends = frame_starts + header[:, 2]
    ip = frame_starts + ip_offset
    size = ends - ip
    # Rows with fewer bytes read junk (or the buffer's last bytes) here: never fixed.
    m = _rows(raw, ip, _GATHER)
    total = _be(m, 2, 2)
    proto = m[:, 9].astype(np.int64)
    header_len = (m[:, 32] >> 4).astype(np.int64) << 2
    fixed = fixed_rows(m, size)
    tcp = proto == IPPROTO_TCP
    if ip_offset:  # Ethernet: an untagged IPv4 frame, as the ordinary reader's fast path
        ethertype = _rows(raw, frame_starts + 12, 2)
        fixed &= (ethertype[:, 0] == 0x08) & (ethertype[:, 1] == 0x00)
    zero = np.zeros(len(starts), dtype=np.int64)
    return Chunk(
        first_n=first_n, buf=data, starts=frame_starts, ends=ends, ts_ns=ts_ns, fixed=fixed,
        size=size, proto=proto, src=_be(m, 12, 4), dst=_be(m, 16, 4), sport=_be(m, 20, 2),
        dport=_be(m, 22, 2), flags=np.where(tcp, m[:, 33].astype(np.int64), ABSENT), total=total,
        ttl=m[:, 8].astype(np.int64), seq=np.where(tcp, _be(m, 24, 4), zero),
        ack=np.where(tcp, _be(m, 28, 4), zero), window=np.where(tcp, _be(m, 34, 2), zero),
        payload=np.where(tcp, total - 20 - header_len, total - 28),
        head=m[:, :HEAD_BYTES], _make=make,
    )  # fmt: skip


def _rows(raw: npt.NDArray[np.uint8], at: I64, width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes from each offset in ``at`` (one row each). Evenly spaced offsets —
    a run of records of one length — are a strided view; others are gathered. Bytes
    past the buffer read as its last byte (callers never use them)."""
    count = len(at)
    if count and int(at[-1]) + width <= len(raw):
        step = int(at[1] - at[0]) if count > 1 else 1
        if step > 0 and int(at[-1] - at[0]) == step * (count - 1) and (
                count < 3 or bool(np.all(np.diff(at) == step))):
            view = np.lib.stride_tricks.as_strided(raw[int(at[0]):], shape=(count, width),
                                                   strides=(step, 1), writeable=False)
            return np.ascontiguousarray(view)
    gathered: npt.NDArray[np.uint8] = raw[np.minimum(at[:, None] + np.arange(width),
                                                     len(raw) - 1)]
    return gathered


def _be(m: npt.NDArray[np.uint8], at: int, width: int) -> I64:
    """Column ``at`` of ``m``, ``width`` bytes big-endian, as int64."""
    kind = ">u2" if width == 2 else ">u4"
    return np.ascontiguousarray(m[:, at : at + width]).view(kind).ravel().astype(np.int64)
