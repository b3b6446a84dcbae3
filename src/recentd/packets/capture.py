"""Reading pcap and pcapng capture files into decoded packets.

Rules:

* Formats: pcap in either byte order with microsecond (``a1b2c3d4``) or
  nanosecond (``a1b23c4d``) timestamps; pcapng with any number of sections, each
  with its own byte order and interfaces (per-interface link type, ``if_tsresol``
  and ``if_tsoffset``). Enhanced, simple and obsolete packet blocks carry packets;
  every other block is skipped. A simple packet block has no timestamp, so it
  takes the previous packet's (0 before any).
* Link types: Ethernet (1, with any stack of 802.1Q/802.1ad tags), Linux cooked
  SLL (113) and SLL2 (276), raw IP (101, and 12/14 where older libpcaps wrote
  DLT_RAW; 228/229 IPv4/IPv6), BSD null/loopback (0, host byte order) and OpenBSD
  loop (108). Any other link type raises :class:`CaptureError` as soon as it is
  declared (the pcap header, or the pcapng interface block), naming it.
* Timestamps are exact integer nanoseconds; resolutions finer than 1 ns, or
  binary ones (``if_tsresol`` with the high bit set), are floored.
* A record that is well framed but whose contents are not an IP packet this
  module can decode is yielded with ``packet=None`` and ``error`` saying why:
  one bad packet does not end a replay.
* A damaged file (truncated record, impossible length, broken block) yields every
  packet before the damage, then raises :class:`CaptureError` with the path, the
  1-based number of the packet that could not be read and the byte offset where
  the damage starts. Only :mod:`recentd.errors` errors escape.

Why not dpkt's readers: they report timestamps as floats (nanosecond captures lose
exactness), yield a short buffer for a truncated last record without saying so,
and give no byte offsets. The framing is simple enough that the reader here is
shorter than the adapter that would hide those gaps.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

from recentd.errors import CaptureError, SourceError
from recentd.packets.decode import decode_ip
from recentd.packets.packet import Packet

__all__ = [
    "SUPPORTED_LINKTYPES",
    "CapturedPacket",
    "capture_packet_count",
    "read_capture",
]


class CapturedPacket(NamedTuple):
    """One record of a capture file.

    Attributes:
        n: 1-based packet number in the file (across pcapng sections).
        ts_ns: capture timestamp in integer nanoseconds since the epoch.
        packet: the decoded packet, or ``None`` when ``error`` is set.
        error: why a well-framed record could not be decoded, else ``None``.
    """

    n: int
    ts_ns: int
    packet: Packet | None
    error: str | None


#: libpcap's MAXIMUM_SNAPLEN: no sane record is larger.
_MAX_RECORD = 262144
_CHUNK = 1 << 20
#: Wireshark's limit on a pcapng block; larger lengths are corruption, not data.
_MAX_BLOCK = 16 << 20

_PCAP_MAGIC_US, _PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

# ---------------------------------------------------------------------------
# Link layers: each returns the offset of the IP header in the frame, or a str
# saying why the frame carries no IP packet.

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_ETH_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
_BSD_AF_INET6 = frozenset({10, 24, 28, 30})  # Linux, NetBSD/OpenBSD, FreeBSD, Darwin


def _by_ethertype(ethertype: int, offset: int) -> int | str:
    if ethertype in (_ETH_IPV4, _ETH_IPV6):
        return offset
    return f"not IP (ethertype 0x{ethertype:04x})"


def _ethernet(frame: bytes) -> int | str:
    pos = 12
    while len(frame) >= pos + 2:
        ethertype = (frame[pos] << 8) | frame[pos + 1]
        if ethertype not in _ETH_VLAN_TAGS:
            return _by_ethertype(ethertype, pos + 2)
        pos += 4  # skip the tag's TCI; the next ethertype follows
    return f"truncated Ethernet header ({len(frame)} bytes)"


def _sll(frame: bytes) -> int | str:
    if len(frame) < 16:
        return f"truncated Linux cooked header ({len(frame)} bytes)"
    return _by_ethertype((frame[14] << 8) | frame[15], 16)


def _sll2(frame: bytes) -> int | str:
    if len(frame) < 20:
        return f"truncated Linux cooked v2 header ({len(frame)} bytes)"
    return _by_ethertype((frame[0] << 8) | frame[1], 20)


def _raw(frame: bytes) -> int | str:
    return 0


def _null(frame: bytes) -> int | str:
    # The family is in the capturing host's byte order, which the file does not
    # record: accept it either way round (the values cannot collide).
    if len(frame) < 4:
        return f"truncated loopback header ({len(frame)} bytes)"
    little, big = int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big")
    if 2 in (little, big) or little in _BSD_AF_INET6 or big in _BSD_AF_INET6:
        return 4
    return f"not IP (loopback address family {little})"


LinkDecoder = Callable[[bytes], "int | str"]

#: Link type number → (name, decoder).
SUPPORTED_LINKTYPES: dict[int, tuple[str, LinkDecoder]] = {
    0: ("NULL", _null),
    1: ("ETHERNET", _ethernet),
    12: ("RAW (DLT_RAW)", _raw),
    14: ("RAW (OpenBSD DLT_RAW)", _raw),
    101: ("RAW", _raw),
    108: ("LOOP", _null),
    113: ("LINUX_SLL", _sll),
    228: ("IPV4", _raw),
    229: ("IPV6", _raw),
    276: ("LINUX_SLL2", _sll2),
}


def _link_decoder(linktype: int, path: Path, offset: int) -> LinkDecoder:
    entry = SUPPORTED_LINKTYPES.get(linktype)
    if entry is None:
        known = ", ".join(f"{n} ({name})" for n, (name, _) in SUPPORTED_LINKTYPES.items())
        raise CaptureError(
            f"unsupported link type {linktype} (supported: {known})", path=path, offset=offset
        )
    return entry[1]


def _decode_frame(n: int, ts_ns: int, link: LinkDecoder, frame: bytes) -> CapturedPacket:
    where = link(frame)
    if isinstance(where, str):
        return CapturedPacket(n, ts_ns, None, where)
    try:
        return CapturedPacket(n, ts_ns, decode_ip(frame[where:] if where else frame), None)
    except SourceError as exc:
        return CapturedPacket(n, ts_ns, None, exc.message)


# tuple.__new__ on the finished fields skips the NamedTuple's generated __new__.
_new_captured: Callable[[type[CapturedPacket], tuple[object, ...]], CapturedPacket] = \
    tuple.__new__


def _decode_raw(n: int, ts_ns: int, buf: bytes, start: int, end: int) -> CapturedPacket:
    """:func:`_decode_frame` of ``buf[start:end]`` for raw IP, without copying the frame."""
    try:
        packet = decode_ip(buf, start=start, end=end)
    except SourceError as exc:
        return _new_captured(CapturedPacket, (n, ts_ns, None, exc.message))
    return _new_captured(CapturedPacket, (n, ts_ns, packet, None))


def _decode_ethernet(n: int, ts_ns: int, buf: bytes, start: int, end: int) -> CapturedPacket:
    """:func:`_decode_frame` of ``buf[start:end]`` for Ethernet: an untagged IP frame is
    decoded in place, anything else (tags, other ethertypes, short frames) as usual."""
    if end - start >= 14 and buf[start + 12] << 8 | buf[start + 13] in (_ETH_IPV4, _ETH_IPV6):
        return _decode_raw(n, ts_ns, buf, start + 14, end)
    return _decode_frame(n, ts_ns, _ethernet, buf[start:end])


def _decoder_for(link: LinkDecoder) -> RecordMaker[CapturedPacket]:
    """How read_capture turns a pcap record of this link type into a CapturedPacket."""
    if link is _raw:
        return _decode_raw
    if link is _ethernet:
        return _decode_ethernet
    return lambda n, ts_ns, buf, start, end: _decode_frame(n, ts_ns, link, buf[start:end])


def _framer_for(link: LinkDecoder) -> RecordMaker[RawRecord]:
    """How the raw reader turns a pcap record into a RawRecord."""
    return lambda n, ts_ns, buf, start, end: (n, ts_ns, link, buf[start:end])


# ---------------------------------------------------------------------------
# Raw records: (n, ts_ns, link decoder, frame bytes), framing errors raised.

RawRecord = tuple[int, int, LinkDecoder, bytes]
T = TypeVar("T")
#: Makes what a reader yields from one pcap record: (n, ts_ns, buffer, start, end) with
#: the frame at ``buffer[start:end]``. Either a RawRecord, or (read_capture, per link
#: type) the decoded packet straight from the read buffer, without copying the frame.
RecordMaker = Callable[[int, int, bytes, int, int], T]


def _raw_records(
    path: Path, stream: BinaryIO, decoded: bool
) -> Iterator[RawRecord] | Iterator[CapturedPacket]:
    """The records of the file, decoded into CapturedPackets when ``decoded``.

    Not a generator itself (its caller is), so the records come one delegation
    level closer to the consumer.
    """
    head = stream.read(4)
    if len(head) < 4:
        raise CaptureError(f"not a capture file: only {len(head)} bytes", path=path)
    if int.from_bytes(head, "little") == _PCAPNG_SHB:
        records = _pcapng_records(path, stream, head)
        if decoded:
            return (_decode_frame(*record) for record in records)
        return records
    for order in "<>":
        magic = struct.unpack(order + "I", head)[0]
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            frac_ns = 1 if magic == _PCAP_MAGIC_NS else 1000
            if decoded:
                return _pcap_records(path, stream, order, frac_ns, _decoder_for)
            return _pcap_records(path, stream, order, frac_ns, _framer_for)
    raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})", path=path)


def _pcap_records(path: Path, stream: BinaryIO, order: str, frac_ns: int,
                  maker: Callable[[LinkDecoder], RecordMaker[T]]) -> Iterator[T]:
    link, limit = pcap_header(path, stream, order)
    return pcap_body(path, stream, order=order, frac_ns=frac_ns, make=maker(link), limit=limit)


def pcap_header(path: Path, stream: BinaryIO, order: str) -> tuple[LinkDecoder, int]:
    """The rest of a pcap file header (after the magic): the link decoder and the
    largest captured length a sane record can have."""
    header = stream.read(20)
    if len(header) < 20:
        raise CaptureError("truncated pcap file header", path=path, position=1, offset=4)
    _major, _minor, _zone, _sigfigs, snaplen, linkfield = struct.unpack(order + "HHiIII", header)
    # The high bits of the link type field hold the FCS length; only the low 16 name the link.
    return _link_decoder(linkfield & 0xFFFF, path, 20), max(snaplen, _MAX_RECORD)


def pcap_body(path: Path, stream: BinaryIO, *, order: str, frac_ns: int,
              make: RecordMaker[T], limit: int, base: int = 24, n: int = 0) -> Iterator[T]:
    """The records from file offset ``base`` (where ``stream`` stands), numbered after
    ``n``: each made by ``make``, framing damage raised as :class:`CaptureError`."""
    unpack_header = struct.Struct(order + "IIII").unpack_from
    buf, pos = b"", 0  # base: file offset of buf[0]
    while True:
        n += 1
        if len(buf) - pos < 16:
            buf, base, pos = buf[pos:] + stream.read(_CHUNK), base + pos, 0
            if not buf:
                return
            if len(buf) < 16:
                raise CaptureError(f"truncated record header ({len(buf)} of 16 bytes)",
                                   path=path, position=n, offset=base)
        sec, frac, caplen, _origlen = unpack_header(buf, pos)
        if caplen > limit:
            raise CaptureError(f"corrupt record header: captured length {caplen} > {limit}",
                               path=path, position=n, offset=base + pos)
        end = pos + 16 + caplen
        if end > len(buf):
            buf, base, pos = buf[pos:] + stream.read(max(_CHUNK, caplen + 16)), base + pos, 0
            end = 16 + caplen
            if end > len(buf):
                raise CaptureError(
                    f"truncated record: {len(buf) - 16} of {caplen} bytes present",
                    path=path, position=n, offset=base)
        yield make(n, sec * 1_000_000_000 + frac * frac_ns, buf, pos + 16, end)
        pos = end


# ---------------------------------------------------------------------------
# pcapng


class _Interface(NamedTuple):
    link: LinkDecoder
    snaplen: int
    # timestamp ticks → ns is ticks * mul // div; offset_ns is added (if_tsoffset)
    mul: int
    div: int
    offset_ns: int


class _Section:
    """Per-section state: byte order and the interfaces declared so far."""

    def __init__(self, order: str) -> None:
        self.order = order
        self.interfaces: list[_Interface] = []


def _pcapng_records(path: Path, stream: BinaryIO, head: bytes) -> Iterator[RawRecord]:
    offset, n, last_ts = 0, 0, 0
    section: _Section | None = None
    while head:
        block_type, body, size = _read_block(path, stream, head,
                                             offset=offset, n=n + 1, section=section)
        if block_type == _PCAPNG_SHB:
            section = _Section(_order_of(body) or "<")
        elif section is None:  # pragma: no cover - _read_block checks the first block
            raise CaptureError("pcapng block before any section header", path=path)
        else:
            record = _pcapng_block(path, section, block_type, body,
                                   n=n + 1, offset=offset, last_ts=last_ts)
            if record is not None:
                n, last_ts = n + 1, record[1]
                yield record
        offset += size
        head = stream.read(4)


def _read_block(
    path: Path, stream: BinaryIO, head: bytes, *, offset: int, n: int, section: _Section | None
) -> tuple[int, bytes, int]:
    """Read one block: ``(type, body, total size)``. ``head`` is its first 4 bytes."""
    def damaged(why: str) -> CaptureError:
        return CaptureError(why, path=path, position=n, offset=offset)

    rest = stream.read(4)
    if len(head) < 4 or len(rest) < 4:
        raise damaged("truncated pcapng block header")
    order = section.order if section else "<"
    block_type = struct.unpack(order + "I", head)[0]
    if block_type == _PCAPNG_SHB:
        peek = stream.read(4)
        if len(peek) < 4:
            raise damaged("truncated pcapng section header")
        found = _order_of(peek)
        if found is None:
            raise damaged(f"corrupt pcapng section header: byte-order magic {peek.hex()}")
        order = found
        size = struct.unpack(order + "I", rest)[0]
        body_start = peek
    elif section is None:
        raise damaged("pcapng file does not start with a section header")
    else:
        size = struct.unpack(order + "I", rest)[0]
        body_start = b""
    if size < 12 or size % 4 or size > _MAX_BLOCK:
        raise damaged(f"corrupt pcapng block length {size}")
    remainder = stream.read(size - 8 - len(body_start))
    if len(remainder) < size - 8 - len(body_start):
        raise damaged(f"truncated pcapng block ({8 + len(body_start) + len(remainder)} "
                      f"of {size} bytes)")
    body = body_start + remainder[:-4]
    if struct.unpack(order + "I", remainder[-4:])[0] != size:
        raise damaged("corrupt pcapng block: trailing length differs from leading length")
    return block_type, body, size


def _order_of(bom: bytes) -> str | None:
    """The struct byte-order prefix a section's byte-order magic announces."""
    for order in "<>":
        if struct.unpack(order + "I", bom[:4])[0] == _PCAPNG_BOM:
            return order
    return None


_EPB, _SPB, _OPB, _IDB = 6, 3, 2, 1
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14


def _pcapng_block(
    path: Path, section: _Section, block_type: int, body: bytes, *, n: int, offset: int,
    last_ts: int,
) -> RawRecord | None:
    """Interpret a non-SHB block; return a packet record or ``None`` for other blocks."""
    try:
        if block_type == _IDB:
            section.interfaces.append(_interface(path, section.order, body, offset))
            return None
        if block_type in (_EPB, _OPB):
            return _packet_block(section, block_type, body, n)
        if block_type == _SPB:
            return _simple_block(section, body, n, last_ts)
    except (SourceError, struct.error, IndexError) as exc:
        if isinstance(exc, CaptureError):
            raise
        why = exc.message if isinstance(exc, SourceError) else "block body too short"
        raise CaptureError(f"corrupt pcapng block (type {block_type}): {why}",
                           path=path, position=n, offset=offset) from exc
    return None


def _interface(path: Path, order: str, body: bytes, offset: int) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    link = _link_decoder(linktype, path, offset)
    mul, div, offset_ns = 1000, 1, 0  # default resolution: microseconds
    for code, value in _options(order, body, 8):
        if code == _OPT_TSRESOL and value:
            mul, div = _resolution(value[0])
        elif code == _OPT_TSOFFSET and len(value) >= 8:
            offset_ns = struct.unpack_from(order + "q", value)[0] * 1_000_000_000
    return _Interface(link, snaplen, mul, div, offset_ns)


def _resolution(code: int) -> tuple[int, int]:
    """``if_tsresol`` → (mul, div) such that ns = ticks * mul // div."""
    exponent = code & 0x7F
    if code & 0x80:
        return 1_000_000_000, 1 << exponent
    if exponent <= 9:
        return 10 ** (9 - exponent), 1
    return 1, 10 ** (exponent - 9)


def _options(order: str, body: bytes, pos: int) -> Iterator[tuple[int, bytes]]:
    option = struct.Struct(order + "HH")
    while pos + 4 <= len(body):
        code, length = option.unpack_from(body, pos)
        if code == 0:  # opt_endofopt
            return
        yield code, body[pos + 4:pos + 4 + length]
        pos += 4 + length + (-length % 4)


def _packet_block(section: _Section, block_type: int, body: bytes, n: int) -> RawRecord:
    if block_type == _EPB:
        iface_id, ts_hi, ts_lo, caplen, _len = struct.unpack_from(section.order + "IIIII", body)
    else:  # obsolete packet block: 16-bit interface id and drop count
        iface_id, _drops, ts_hi, ts_lo, caplen, _len = struct.unpack_from(
            section.order + "HHIIII", body)
    iface = _interface_at(section, iface_id)
    if caplen > len(body) - 20:
        raise SourceError(f"captured length {caplen} exceeds the block ({len(body) - 20})")
    ticks = (ts_hi << 32) | ts_lo
    ts_ns = ticks * iface.mul // iface.div + iface.offset_ns
    return n, ts_ns, iface.link, body[20:20 + caplen]


def _simple_block(section: _Section, body: bytes, n: int, last_ts: int) -> RawRecord:
    iface = _interface_at(section, 0)
    (origlen,) = struct.unpack_from(section.order + "I", body)
    caplen = min(origlen, len(body) - 4)
    if iface.snaplen:
        caplen = min(caplen, iface.snaplen)
    return n, last_ts, iface.link, body[4:4 + caplen]


def _interface_at(section: _Section, iface_id: int) -> _Interface:
    if iface_id >= len(section.interfaces):
        raise SourceError(f"packet refers to undeclared interface {iface_id}")
    return section.interfaces[iface_id]


# ---------------------------------------------------------------------------
# Public API


def read_capture(path: str | Path) -> Iterator[CapturedPacket]:
    """Read a pcap or pcapng file, decoding each packet.

    Args:
        path: the capture file.

    Yields:
        One :class:`CapturedPacket` per record, in file order.

    Raises:
        CaptureError: the file cannot be opened, is not a capture, declares an
            unsupported link type, or is damaged (after yielding every packet
            before the damage).
    """
    return _records(Path(path), decoded=True)  # type: ignore[return-value]


def capture_packet_count(path: str | Path) -> int:
    """Count the records in a capture without decoding them (for progress bars).

    Raises:
        CaptureError: as :func:`read_capture`.
    """
    return sum(1 for _ in _records(Path(path), decoded=False))


def _records(path: Path, *, decoded: bool) -> Iterator[RawRecord | CapturedPacket]:
    return read_file(path, lambda path, stream: _raw_records(path, stream, decoded))


def read_file(path: Path, read: Callable[[Path, BinaryIO], Iterator[T]]) -> Iterator[T]:
    """What ``read`` yields from the opened file; an operating-system error on the
    way raises :class:`CaptureError` naming the file."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot open capture: {exc.strerror or exc}", path=path) from exc
    with stream:
        try:
            yield from read(path, stream)
        except OSError as exc:
            raise CaptureError(f"cannot read capture: {exc.strerror or exc}", path=path) from exc
