"""Captures read in columns say what the ordinary reader says: the same records, the
same decoded packets, the same error at the same place; fixed records are exactly
the ones the decoder reads at fixed offsets, and their columns hold its fields."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.errors import CaptureError
from recentd.packets import columns
from recentd.packets.capture import CapturedPacket, read_capture
from recentd.packets.columns import Chunk, read_columns
from recentd.packets.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    PacketFactory,
    frame_ip,
    write_pcap,
    write_pcapng,
    write_syn_flood_pcap,
)
from recentd.packets.layout import HEAD_BYTES, is_fixed

pf = PacketFactory()
MIXED = [
    pf.tcp("203.0.113.7", "192.0.2.1", flags="S"),
    pf.tcp("203.0.113.7", "192.0.2.1", flags="SA", sport=22, dport=40000, payload=b"hi"),
    pf.tcp("203.0.113.8", "192.0.2.1", flags="S", tcp_options=b"\x02\x04\x05\xb4"),
    pf.udp("198.51.100.3", "192.0.2.1", payload=b"q" * 30),
    pf.udp("198.51.100.3", "192.0.2.1"),  # 28 bytes: below the fixed minimum of 40
    pf.udp("2001:db8::7", "2001:db8::1", payload=b"x" * 13),
    pf.icmp("203.0.113.7", "192.0.2.1", payload=b"ping" * 5),
    pf.ip("203.0.113.9", "192.0.2.1", 6, pf.tcp("203.0.113.9", "192.0.2.1")[20:],
          frag_offset=8),
    b"\x45\x00\x00\x50" + bytes(36),  # total length beyond the bytes captured
    b"\x60\x00",  # undecodable
]


def _expanded(items: list[Chunk | CapturedPacket]) -> list[CapturedPacket]:
    out: list[CapturedPacket] = []
    for item in items:
        if isinstance(item, Chunk):
            out.extend(item.record(i) for i in range(len(item)))
        else:
            out.append(item)
    return out


def _both(path: Path) -> tuple[tuple[list[CapturedPacket], str | None],
                              tuple[list[CapturedPacket], str | None]]:
    def run(reader: object) -> tuple[list[CapturedPacket], str | None]:
        got: list[Chunk | CapturedPacket] = []
        try:
            for item in reader(path):  # type: ignore[operator]
                got.append(item)
        except CaptureError as exc:
            return _expanded(got), str(exc)
        return _expanded(got), None

    return run(read_columns), run(read_capture)


def _same(path: Path) -> None:
    columnar, ordinary = _both(path)
    assert columnar == ordinary


def _check_fixed(path: Path) -> int:
    """Every chunk row: fixed iff the decoder's fast path; columns = decoded fields."""
    checked = 0
    for item in read_columns(path):
        if not isinstance(item, Chunk):
            continue
        for i in range(len(item)):
            record, frame = item.record(i), item.buf[item.starts[i]:item.ends[i]]
            ip = frame[14:] if frame[12:14] == b"\x08\x00" and len(frame) > 14 else frame
            assert bool(item.fixed[i]) == (is_fixed(ip) and (
                len(frame) == len(ip) or frame[12:14] == b"\x08\x00"))
            if item.fixed[i]:
                packet = record.packet
                assert packet is not None
                assert item.packet(i) == packet  # the whole packet, from the columns
                assert (packet.proto, packet.src, packet.dst, packet.sport, packet.dport,
                        packet.length) == (item.proto[i], item.src[i], item.dst[i],
                                           item.sport[i], item.dport[i], item.total[i])
                assert bytes(item.head[i]) == bytes(ip[:HEAD_BYTES])
                checked += 1
    return checked


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL])
@pytest.mark.parametrize(("nanosecond", "big_endian"), [(True, False), (False, True)])
def test_mixed_captures_read_the_same(tmp_path: Path, linktype: int, nanosecond: bool,
                                      big_endian: bool) -> None:
    records = [(1_700_000_000_123_456_789 + 1_000 * i, MIXED[i % len(MIXED)]) for i in range(60)]
    path = tmp_path / "mixed.pcap"
    write_pcap(path, records, linktype=linktype, nanosecond=nanosecond, big_endian=big_endian)
    _same(path)
    fixed = _check_fixed(path)
    # SYN, SYN-ACK, SYN with TCP options, UDP with 30 bytes: 4 of every 10
    assert fixed == (0 if linktype == LINKTYPE_LINUX_SLL else 6 * 4)


def test_vlan_tagged_frames_are_never_fixed(tmp_path: Path) -> None:
    path = tmp_path / "vlan.pcap"
    frames = [(1000 * i, frame_ip(MIXED[0], LINKTYPE_ETHERNET, vlans=(7,))) for i in range(5)]
    write_pcap(path, frames, linktype=LINKTYPE_ETHERNET, frame=False)
    _same(path)
    assert _check_fixed(path) == 0


def test_a_flood_larger_than_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "CHUNK_BYTES", 4096)  # many chunks, records across edges
    path = tmp_path / "flood.pcap"
    write_syn_flood_pcap(path, 2_000, 37)
    _same(path)
    assert _check_fixed(path) == 2_000
    chunks = [item for item in read_columns(path) if isinstance(item, Chunk)]
    assert len(chunks) > 10 and sum(len(c) for c in chunks) == 2_000


def test_pcapng_is_read_record_by_record(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    write_pcapng(path, [(1000 * i, packet) for i, packet in enumerate(MIXED)])
    _same(path)
    assert not any(isinstance(item, Chunk) for item in read_columns(path))


@pytest.mark.parametrize("cut", [1, 10, 16, 17, 40])
def test_a_truncated_capture_fails_where_the_ordinary_reader_fails(tmp_path: Path,
                                                                    cut: int) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap(path, [(1000 * i, MIXED[i % 4]) for i in range(30)])
    path.write_bytes(path.read_bytes()[:-cut])
    columnar, ordinary = _both(path)
    assert columnar == ordinary and ordinary[1] is not None


def test_an_impossible_length_fails_where_the_ordinary_reader_fails(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pcap"
    write_pcap(path, [(1000 * i, MIXED[0]) for i in range(30)])
    data = bytearray(path.read_bytes())
    at = 24 + 10 * (16 + len(MIXED[0]))  # the 11th record's header
    data[at + 8 : at + 12] = (10**7).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    columnar, ordinary = _both(path)
    assert columnar == ordinary
    assert len(ordinary[0]) == 10 and "captured length" in (ordinary[1] or "")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_captures_read_the_same(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "mutated.pcap"
    records = [(1000 * i, rng.choice(MIXED)) for i in range(rng.randrange(1, 40))]
    write_pcap(path, records, linktype=rng.choice([LINKTYPE_RAW, LINKTYPE_ETHERNET]))
    data = bytearray(path.read_bytes())
    for _ in range(rng.randrange(0, 6)):
        data[rng.randrange(24, len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data[: rng.randrange(24, len(data) + 1)]))
    _same(path)
