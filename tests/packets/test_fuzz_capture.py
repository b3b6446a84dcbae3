"""Fuzzing the capture reader: only recentd's own errors escape, and damage never
hides the packets before it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recentd.errors import CaptureError, SourceError
from recentd.packets.capture import CapturedPacket, capture_packet_count, read_capture
from recentd.packets.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PacketFactory,
    write_pcap,
    write_pcapng,
)

pf = PacketFactory()
PACKETS = [
    pf.tcp("203.0.113.7", "192.0.2.1", flags="S"),
    pf.udp("2001:db8::7", "2001:db8::1", payload=b"x" * 13, extensions=(0,)),
    pf.icmp_error("192.0.2.254", "203.0.113.7", pf.tcp("203.0.113.7", "192.0.2.1")),
    pf.icmp("203.0.113.7", "192.0.2.1", payload=b"ping" * 5),
]
RECORDS = [(1_000 * i + 7, PACKETS[i % len(PACKETS)]) for i in range(6)]
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid_captures(base: Path) -> list[bytes]:
    made = [
        write_pcap(base / "a.pcap", RECORDS, linktype=LINKTYPE_ETHERNET),
        write_pcap(
            base / "b.pcap", RECORDS, linktype=LINKTYPE_RAW, big_endian=True, nanosecond=False
        ),
        write_pcapng(base / "c.pcapng", RECORDS, linktype=LINKTYPE_LINUX_SLL2),
        write_pcapng(
            base / "d.pcapng", RECORDS, linktype=LINKTYPE_NULL, big_endian=True, tsresol=0x80 | 20
        ),
    ]
    return [path.read_bytes() for path in made]


def _read_all(path: Path) -> tuple[list[CapturedPacket], CaptureError | None]:
    got: list[CapturedPacket] = []
    try:
        got.extend(read_capture(path))
    except CaptureError as exc:
        return got, exc
    return got, None


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_capture_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.cap"
    path.write_bytes(data)
    _read_all(path)


@FUZZ
@given(data=st.binary(max_size=200), pcapng=st.booleans())
def test_random_bodies_after_a_valid_header(tmp_path: Path, data: bytes, pcapng: bool) -> None:
    header = _valid_captures(tmp_path)[2 if pcapng else 0][: 48 if pcapng else 24]
    path = tmp_path / "body.cap"
    path.write_bytes(header + data)
    _read_all(path)


@FUZZ
@given(which=st.integers(0, 3), st_data=st.data())
def test_truncation_yields_every_packet_before_the_damage(
    tmp_path: Path, which: int, st_data: st.DataObject
) -> None:
    full = _valid_captures(tmp_path)[which]
    path = tmp_path / "full.cap"
    path.write_bytes(full)
    complete, error = _read_all(path)
    assert error is None and len(complete) == len(RECORDS)
    cut = st_data.draw(st.integers(0, len(full) - 1))
    path.write_bytes(full[:cut])
    got, error = _read_all(path)
    # A cut exactly on a record boundary is a shorter, valid file; anywhere else the
    # damage is reported, and everything before it comes out unchanged.
    assert got == complete[: len(got)]
    if error is None:
        assert cut >= 24
    else:
        assert error.position in (0, len(got) + 1)
        assert error.offset <= cut
        assert error.path == str(path)


@FUZZ
@given(which=st.integers(0, 3), st_data=st.data())
def test_mutations_raise_only_capture_errors(
    tmp_path: Path, which: int, st_data: st.DataObject
) -> None:
    mutated = bytearray(_valid_captures(tmp_path)[which])
    for _ in range(st_data.draw(st.integers(1, 6))):
        at = st_data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = st_data.draw(st.integers(0, 255))
    path = tmp_path / "mutated.cap"
    path.write_bytes(bytes(mutated))
    got, _ = _read_all(path)
    for record in got:
        assert (record.packet is None) == (record.error is not None)
    try:
        capture_packet_count(path)
    except SourceError as exc:
        assert isinstance(exc, CaptureError)
