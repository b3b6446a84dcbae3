"""A capture file as a source of packet batches: the conformance suite, then transcripts of
what ``recentd replay`` meets (a damaged file, a missing one, a checkpoint inside a chunk)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from recentd.packets.capture import CapturedPacket, read_capture
from recentd.packets.factory import PacketFactory, write_pcap
from recentd.sources import Checkpoint, Source, SourceState
from recentd.sources import capture as capture_module
from recentd.sources.capture import CaptureItem, CaptureSource
from recentd.testing.sources import Expected, check_source

FACTORY = PacketFactory()
SERVER = "192.0.2.100"


def records(items: Sequence[CaptureItem]) -> list[CapturedPacket]:
    """Every record the items hold, decoded as the ordinary reader decodes them."""
    out: list[CapturedPacket] = []
    for item in items:
        if isinstance(item, CapturedPacket):
            out.append(item)
        else:
            out += [item.record(i) for i in range(len(item))]
    return out


def seen(items: Sequence[CaptureItem]) -> list[Expected]:
    """The packets in what one read returned (records that are not IP say nothing)."""
    return [Expected(None, ipaddress.IPv4Address(r.packet.src), r.ts_ns)
            for r in records(items) if r.packet is not None]  # fmt: skip


def syn_record(source: str, ts_ns: int) -> bytes:
    """One pcap record (nanosecond, raw IP): a SYN from ``source`` to port 22."""
    packet = FACTORY.tcp(source, SERVER, dport=22)
    return struct.pack("<IIII", *divmod(ts_ns, 10**9), len(packet), len(packet)) + packet


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


@dataclass
class CaptureHarness:
    """A capture still being written: records appended to a pcap, as ``tcpdump -w`` does."""

    path: Path
    columns: bool

    def __post_init__(self) -> None:
        write_pcap(self.path, [])  # the file header only

    def open(self, checkpoint: Checkpoint | None) -> Source[CaptureItem]:
        return CaptureSource(self.path, checkpoint, columns=self.columns)

    def emit(self, batch: Sequence[Expected]) -> None:
        append(self.path, b"".join(syn_record(str(e.address), e.wall_ns) for e in batch))

    def emit_garbage(self) -> None:
        """A well-framed record that is not an IP packet."""
        junk = b"\x00\x01garbage, not IP"
        append(self.path, struct.pack("<IIII", 1_700_000_050, 0, len(junk), len(junk)) + junk)


@pytest.mark.parametrize("columns", [True, False], ids=["columns", "record-by-record"])
def test_a_capture_conforms(tmp_path: Path, columns: bool) -> None:
    check_source(CaptureHarness(tmp_path / "growing.pcap", columns), seen=seen)


def write_syns(path: Path, count: int) -> list[tuple[str, int]]:
    sent = [(f"198.51.100.{i % 250 + 1}", 1_700_000_000_000_000_000 + i * 1000)
            for i in range(count)]  # fmt: skip
    write_pcap(path, [(ts, FACTORY.tcp(src, SERVER, dport=22)) for src, ts in sent])
    return sent


def test_it_returns_what_the_columns_reader_reads_in_chunks_not_records(tmp_path: Path) -> None:
    capture = tmp_path / "flood.pcap"
    sent = write_syns(capture, 3000)
    source = CaptureSource(capture)
    items = source.read()
    assert [type(item).__name__ for item in items] == ["Chunk"]    # one object, 3000 records
    assert [(str(ipaddress.IPv4Address(r.packet.src)), r.ts_ns)
            for r in records(items) if r.packet] == sent  # fmt: skip
    assert source.read() == []
    assert source.status().state is SourceState.FINISHED
    assert source.checkpoint() == {"records": 3000}


def test_a_checkpoint_inside_a_chunk_resumes_at_the_next_record(tmp_path: Path) -> None:
    capture = tmp_path / "flood.pcap"
    write_syns(capture, 10)
    whole = records(read_capture(capture))
    source = CaptureSource(capture, {"records": 4})
    assert records(source.read()) == whole[4:]                      # records 5 … 10
    assert source.checkpoint() == {"records": 10}


@pytest.mark.parametrize("columns", [True, False], ids=["columns", "record-by-record"])
def test_a_damaged_capture_gives_what_precedes_the_damage_then_degrades(
    tmp_path: Path, columns: bool
) -> None:
    capture = tmp_path / "cut.pcap"
    write_syns(capture, 5)
    capture.write_bytes(capture.read_bytes()[:-10])                  # the last record cut
    source = CaptureSource(capture, columns=columns)
    assert len(records(source.read())) == 4
    assert source.checkpoint() == {"records": 4}
    status = source.status()
    assert status.state is SourceState.DEGRADED
    assert "truncated record" in status.detail and source.damage is not None
    assert source.damage.position == 5
    assert source.read() == []                                       # unchanged: not retried
    source.close()


def test_a_missing_capture_waits_and_is_read_once_it_is_there(tmp_path: Path) -> None:
    capture = tmp_path / "later.pcap"
    source = CaptureSource(capture, columns=False)
    assert source.read() == []
    assert source.status().state is SourceState.WAITING
    assert "No such file" in source.status().detail
    write_syns(capture, 3)
    assert len(source.read()) == 3
    assert source.status().state is SourceState.FINISHED


def test_records_that_are_not_ip_are_returned_and_counted_as_skipped(tmp_path: Path) -> None:
    capture = tmp_path / "mixed.pcap"
    write_pcap(capture, [(1, b"not an IP packet"), (2, FACTORY.tcp("198.51.100.1", SERVER))],
               frame=False)  # fmt: skip
    source = CaptureSource(capture, columns=False)
    got = records(source.read())
    assert [(r.n, r.packet is None) for r in got] == [(1, True), (2, False)]
    assert source.status().skipped == 1


@pytest.mark.parametrize("columns", [True, False], ids=["columns", "record-by-record"])
def test_a_read_returns_a_bounded_share_and_the_next_read_the_rest(
    tmp_path: Path, columns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture_module, "READ_RECORDS", 4)
    capture = tmp_path / "flood.pcap"
    write_pcap(capture, [(i, FACTORY.tcp(f"198.51.100.{i + 1}", SERVER, dport=22 + i % 2))
                         for i in range(10)])  # fmt: skip
    source = CaptureSource(capture, columns=columns)
    sizes = []
    while found := source.read():
        sizes.append(len(records(found)))
    assert sizes == ([10] if columns else [4, 4, 2])                  # a chunk is never split
    assert source.checkpoint() == {"records": 10}
