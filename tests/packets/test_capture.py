"""Capture reading: sample files with expectations, formats, link types, damage."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from recentd.errors import CaptureError
from recentd.packets.capture import CapturedPacket, capture_packet_count, read_capture
from recentd.packets.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PacketFactory,
    write_pcap,
    write_pcapng,
    write_syn_flood_pcap,
)
from recentd.packets.packet import Packet, ip_of

SAMPLES = Path(__file__).parent.parent / "data" / "pcap"
pf = PacketFactory()
SYN = pf.tcp("203.0.113.7", "192.0.2.1", sport=40000, dport=22, flags="S", ttl=51)
SYN6 = pf.tcp("2001:db8::7", "2001:db8::1", sport=40000, dport=22, flags="S")


# -- sample corpus: one loader, one test per file -----------------------------


def _check_fields(packet: Packet, expected: dict[str, Any], where: str) -> None:
    for name, want in expected.items():
        if name in ("n", "ts_ns", "error"):
            continue
        got = getattr(packet, name)
        if name == "inner":
            assert got is not None, f"{where}: no inner packet"
            _check_fields(got, want, f"{where} inner")
        elif name in ("src", "dst"):
            assert str(ip_of(packet.family, got)) == want, f"{where}: {name}"
        else:
            assert got == want, f"{where}: {name} is {got!r}, expected {want!r}"


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_sample_capture(sample: Path) -> None:
    expectation = json.loads(sample.read_text())
    capture = sample.with_suffix("")
    seen: list[CapturedPacket] = []
    error = expectation["error"]
    if error is None:
        seen.extend(read_capture(capture))
    else:
        with pytest.raises(CaptureError) as info:
            seen.extend(read_capture(capture))
        assert (info.value.position, info.value.offset) == (error["position"], error["offset"])
        assert error["message"] in info.value.message
        assert info.value.path == str(capture)
    assert len(seen) == len(expectation["packets"])
    for record, expected in zip(seen, expectation["packets"], strict=True):
        where = f"{capture.name} #{expected['n']}"
        assert (record.n, record.ts_ns) == (expected["n"], expected["ts_ns"]), where
        if "error" in expected:
            assert record.packet is None and record.error is not None, where
            assert expected["error"] in record.error, where
        else:
            assert record.error is None and record.packet is not None, f"{where}: {record.error}"
            _check_fields(record.packet, expected, where)


def test_samples_are_all_paired() -> None:
    captures = {p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert captures == {p.with_suffix("") for p in SAMPLES.glob("*.json")}


# -- formats -------------------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(
    tmp_path: Path, big_endian: bool, nanosecond: bool
) -> None:
    ts = 1_600_000_000_987_654_321
    path = write_pcap(
        tmp_path / "x.pcap",
        [(ts, SYN), (ts + 1_000, SYN6)],
        nanosecond=nanosecond,
        big_endian=big_endian,
    )
    got = list(read_capture(path))
    expected_ts = [ts, ts + 1000] if nanosecond else [ts - 321, ts + 1000 - 321]
    assert [r.ts_ns for r in got] == expected_ts
    assert [r.packet.family for r in got if r.packet] == [4, 6]


@pytest.mark.parametrize(
    ("tsresol", "ticks_ns"),
    [(9, 1), (6, 1000), (3, 1_000_000), (0x80 | 30, None)],
    ids=["ns", "us", "ms", "2^-30"],
)
def test_pcapng_if_tsresol(tmp_path: Path, tsresol: int, ticks_ns: int | None) -> None:
    ts = 1_600_000_000_000_000_000 + 123_000_000
    path = write_pcapng(tmp_path / "x.pcapng", [(ts, SYN)], tsresol=tsresol)
    (record,) = read_capture(path)
    if ticks_ns is not None:
        assert record.ts_ns == ts - ts % ticks_ns
    else:  # binary fractions are floored to the nanosecond
        assert abs(record.ts_ns - ts) <= 1
    assert isinstance(record.ts_ns, int)


def test_pcapng_big_endian_and_tsoffset(tmp_path: Path) -> None:
    order = ">"

    def block(kind: int, body: bytes) -> bytes:
        return (
            struct.pack(order + "II", kind, 12 + len(body))
            + body
            + struct.pack(order + "I", 12 + len(body))
        )

    shb = block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = (
        struct.pack(order + "HHq", 14, 8, 100)
        + struct.pack(order + "HHB3x", 9, 1, 0)
        + struct.pack(order + "HH", 0, 0)
    )
    idb = block(1, struct.pack(order + "HHI", LINKTYPE_RAW, 0, 0) + opts)
    epb = block(6, struct.pack(order + "IIIII", 0, 0, 5, len(SYN), len(SYN)) + SYN)
    path = tmp_path / "off.pcapng"
    path.write_bytes(shb + idb + epb)
    (record,) = read_capture(path)
    assert record.ts_ns == (100 + 5) * 1_000_000_000  # tsresol 10^0 s, offset 100 s
    assert record.packet is not None and record.packet.ttl == 51


@pytest.mark.parametrize(
    "linktype",
    [
        LINKTYPE_RAW,
        LINKTYPE_ETHERNET,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_LINUX_SLL2,
        LINKTYPE_NULL,
        LINKTYPE_LOOP,
        12,
        14,
        228,
    ],
)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_link_types(tmp_path: Path, linktype: int, fmt: str) -> None:
    writer = write_pcap if fmt == "pcap" else write_pcapng
    path = writer(tmp_path / f"x.{fmt}", [(1, SYN), (2, SYN6)], linktype=linktype)
    records = list(read_capture(path))
    if linktype == 228:  # IPv4-only link type still decodes by the version nibble
        records = records[:1]
    for record in records:
        assert record.error is None, record.error
        assert record.packet is not None and record.packet.dport == 22


def test_non_ip_and_undecodable_records_are_not_fatal(tmp_path: Path) -> None:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28
    bad_ip = b"\x00" * 12 + b"\x08\x00" + b"\x45\x00\x00"  # Ethernet + 3 bytes of IPv4
    frames = [(1, arp), (2, bad_ip), (3, b"\x02" * 12 + b"\x08\x00" + SYN)]
    path = write_pcap(tmp_path / "x.pcap", frames, linktype=LINKTYPE_ETHERNET, frame=False)
    got = list(read_capture(path))
    assert got[0].error == "not IP (ethertype 0x0806)"
    assert got[1].packet is None and "truncated IPv4 header" in (got[1].error or "")
    assert got[2].packet is not None and got[2].packet.ttl == 51


def test_truncated_link_headers_are_per_packet_errors(tmp_path: Path) -> None:
    path = write_pcap(
        tmp_path / "x.pcap", [(1, b"\x02" * 10)], linktype=LINKTYPE_ETHERNET, frame=False
    )
    (record,) = read_capture(path)
    assert record.packet is None and "truncated Ethernet" in (record.error or "")


def test_unsupported_link_type_named_up_front(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "x.pcap", [(1, SYN)], linktype=127)  # 802.11 radiotap
    with pytest.raises(CaptureError, match="unsupported link type 127"):
        next(read_capture(path))
    path = write_pcapng(tmp_path / "x.pcapng", [(1, SYN)], linktype=127)
    with pytest.raises(CaptureError, match="unsupported link type 127"):
        next(read_capture(path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "only 0 bytes"),
        (b"GIF89a..............................", "not a pcap"),
        (struct.pack("<I", 0xA1B2C3D4) + b"\0" * 4, "truncated pcap file header"),
    ],
)
def test_not_a_capture(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    with pytest.raises(CaptureError, match=message):
        list(read_capture(path))


def test_missing_file() -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        list(read_capture("/nonexistent/x.pcap"))


# -- damage -------------------------------------------------------------------


def test_corrupt_record_length(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "x.pcap", [(1, SYN), (2, SYN)])
    data = bytearray(path.read_bytes())
    second = 24 + 16 + len(SYN)
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    path.write_bytes(bytes(data))
    got: list[CapturedPacket] = []
    with pytest.raises(CaptureError, match="captured length") as info:
        got.extend(read_capture(path))
    assert len(got) == 1
    assert (info.value.position, info.value.offset) == (2, second)


@pytest.mark.parametrize("cut", [1, 8, 15, 16, 17, 30])
def test_pcap_truncation_reports_position_and_offset(tmp_path: Path, cut: int) -> None:
    path = write_pcap(tmp_path / "x.pcap", [(i, SYN) for i in range(3)])
    record = 16 + len(SYN)
    path.write_bytes(path.read_bytes()[: 24 + 2 * record + cut])
    got: list[CapturedPacket] = []
    with pytest.raises(CaptureError, match="truncated") as info:
        got.extend(read_capture(path))
    assert len(got) == 2
    assert (info.value.position, info.value.offset) == (3, 24 + 2 * record)


@pytest.mark.parametrize("cut", [4, 8, 20, 60])
def test_pcapng_truncation(tmp_path: Path, cut: int) -> None:
    path = write_pcapng(tmp_path / "x.pcapng", [(i, SYN) for i in range(3)])
    data = path.read_bytes()
    block = 32 + len(SYN)
    start_third = len(data) - block
    path.write_bytes(data[: start_third + cut])
    got: list[CapturedPacket] = []
    with pytest.raises(CaptureError, match="truncated pcapng") as info:
        got.extend(read_capture(path))
    assert len(got) == 2
    assert (info.value.position, info.value.offset) == (3, start_third)


def test_pcapng_damaged_blocks(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "x.pcapng", [(1, SYN)])
    good = path.read_bytes()
    epb_at = len(good) - (32 + len(SYN))
    cases = {
        "trailing length": good[:-4] + struct.pack("<I", 999),
        "block length": good[: epb_at + 4] + struct.pack("<I", 13) + good[epb_at + 8 :],
        "undeclared interface": good[: epb_at + 8] + struct.pack("<I", 3) + good[epb_at + 12 :],
        "exceeds the block": (good[: epb_at + 20] + struct.pack("<I", 500) + good[epb_at + 24 :]),
    }
    for message, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(CaptureError, match=message):
            list(read_capture(path))


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "x.pcapng", [(1, SYN)])
    data = bytearray(path.read_bytes())
    data[8:12] = b"\0\0\0\0"
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match="byte-order magic") as info:
        list(read_capture(path))
    assert info.value.offset == 0


# -- counting and the benchmark writer ----------------------------------------


def test_capture_packet_count(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "x.pcap", [(i, SYN) for i in range(5)])
    pcapng = write_pcapng(tmp_path / "x.pcapng", [(i, SYN) for i in range(4)])
    assert capture_packet_count(pcap) == 5
    assert capture_packet_count(pcapng) == 4


def test_syn_flood_pcap(tmp_path: Path) -> None:
    path = write_syn_flood_pcap(tmp_path / "flood.pcap", 2000, 7, start_ns=10, interval_ns=3)
    records = list(read_capture(path))
    assert len(records) == 2000 == capture_packet_count(path)
    sources = {r.packet.src for r in records if r.packet}
    assert len(sources) == 7
    assert records[-1].ts_ns == 10 + 1999 * 3
    assert all(r.packet and r.packet.tcp_flags == 0x02 and r.packet.dport == 22 for r in records)
