import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.errors import BackendError
from recentd.live import nfqnl
from recentd.live.nfqnl import NF_ACCEPT, NF_DROP, QueuedPacket


def test_packet_message_round_trip():
    queued = QueuedPacket(7, 1, b"\x45" + b"\0" * 19, nfqnl.IP_CT_NEW, 3, 2, 0, 9)
    data = nfqnl.packet_message(queued) + nfqnl.packet_message(queued._replace(packet_id=8))
    assert nfqnl.parse_packets(data) == [queued, queued._replace(packet_id=8)]


def test_verdicts_one_batch_message_per_run():
    decided = [(1, NF_ACCEPT), (2, NF_ACCEPT), (3, NF_DROP), (4, NF_ACCEPT)]
    batch = nfqnl.NFQNL_MSG_VERDICT_BATCH
    assert nfqnl.parse_verdicts(nfqnl.verdict_batch(0, decided)) == [
        (batch, 2, NF_ACCEPT),
        (batch, 3, NF_DROP),
        (batch, 4, NF_ACCEPT),
    ]


def test_error_ack_becomes_backend_error():
    err = (
        struct.pack("=IHHII", 36, nfqnl.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -16) + b"\0" * 16
    )
    with pytest.raises(BackendError, match="errno 16"):
        nfqnl.check_acks(err, "bind")
    nfqnl.check_acks(err[:16] + struct.pack("=i", 0) + b"\0" * 16, "bind")


def _slots(messages: list[bytes], slot: int = 1024) -> tuple[memoryview, list[int], list[int]]:
    buf = bytearray(slot * len(messages))
    for i, message in enumerate(messages):
        buf[i * slot : i * slot + len(message)] = message
    return memoryview(buf), [i * slot for i in range(len(messages))], [len(m) for m in messages]


def test_timestamp_round_trip_and_views():
    queued = QueuedPacket(9, 1, b"\x45" + b"\0" * 39, mark=5, indev=3, queue=33,
                          timestamp_ns=1_700_000_000_123_456_000)  # fmt: skip
    (parsed,) = nfqnl.parse_packets(nfqnl.packet_message(queued))
    assert parsed == queued
    assert isinstance(parsed.payload, memoryview)


def test_head_reads_id_hook_and_queue_in_one_unpack():
    data = nfqnl.packet_message(QueuedPacket(0x01020304, 3, b"\x45" * 20, queue=0x1234))
    length, msg_type, queue, nla_type, packet_id, hook = nfqnl.HEAD.unpack_from(data, 0)
    assert (msg_type, nla_type) == (nfqnl.HEAD_PACKET, nfqnl.HEAD_PKT_HDR)
    assert (length, queue, packet_id, hook) == (nfqnl.as_wire(len(data)), 0x1234, 0x01020304, 3)


def test_fill_fast_path_and_the_unusual_slots():
    from recentd.live.nfqueue import Batch, _fill  # noqa: PLC0415

    one = [QueuedPacket(i, 1, bytes([0x45]) * 40, queue=31) for i in (10, 11, 12, 13)]
    ack = struct.pack("=IHHII", 36, nfqnl.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", 0) + b"\0" * 16
    two = nfqnl.packet_message(one[2]) + nfqnl.packet_message(one[3])
    view, starts, sizes = _slots([nfqnl.packet_message(one[0]), ack,
                                  nfqnl.packet_message(one[1]), two])  # fmt: skip
    batch = Batch(view)
    _fill(batch, view, starts, sizes, [nfqnl.as_wire(n) for n in range(1025)])
    assert batch.ids == [10, 11, 12, 13] and batch.queues == [31] * 4 and batch.hooks == [1] * 4
    assert batch.packets() == one
    assert Batch.of(two).packets() == one[2:]


def test_payload_is_cut_at_the_message_end():
    data = nfqnl.packet_message(QueuedPacket(1, 1, b"\x45" * 100))
    view = memoryview(data + b"\xff" * 64)
    assert bytes(nfqnl.packet_at(view, 0, len(data) - 30).payload) == b"\x45" * 70


def test_verdicts_uniform_batch_one_message_per_queue():
    batch = nfqnl.NFQNL_MSG_VERDICT_BATCH
    data = nfqnl.verdicts([3, 4, 3, 4, 3], [7, 1, 8, 2, 9], [NF_ACCEPT] * 5)
    assert nfqnl.parse_verdicts(data) == [(batch, 9, NF_ACCEPT), (batch, 2, NF_ACCEPT)]
    queues = [struct.unpack_from("!H", data, at + 18)[0] for at in (0, len(data) // 2)]
    assert queues == [3, 4]
    assert nfqnl.verdicts([], [], []) == b""


def test_verdicts_mixed_batch_runs_per_queue():
    batch = nfqnl.NFQNL_MSG_VERDICT_BATCH
    data = nfqnl.verdicts([3, 3, 4, 3], [7, 8, 1, 9], [NF_ACCEPT, NF_DROP, NF_DROP, NF_DROP])
    assert nfqnl.parse_verdicts(data) == [
        (batch, 7, NF_ACCEPT), (batch, 9, NF_DROP), (batch, 1, NF_DROP),
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    packets=st.lists(
        st.builds(
            nfqnl.QueuedPacket,
            packet_id=st.integers(0, 2**32 - 1),
            hook=st.integers(0, 4),
            payload=st.binary(min_size=0, max_size=24),
            ctinfo=st.sampled_from([nfqnl.CT_NONE, 0, 1, 2, 3, 4]),
            mark=st.integers(0, 2**32 - 1),
            indev=st.integers(0, 8),
            outdev=st.integers(0, 8),
            queue=st.integers(0, 65535),
            timestamp_ns=st.integers(0, 2**40).map(lambda us: us * 1000),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_learned_layouts_read_what_the_walk_reads(packets):
    """packet_at learns a message length's layout from its first walk, then reads by
    it after one check of every attribute header; messages of one length but other
    attributes (mark 0 omitted but outdev present, say) are walked, never misread."""
    nfqnl._LAYOUTS.clear()
    for queued in packets * 2:  # the second round reads by learned layouts
        message = memoryview(bytearray(b"\xee" * 8 + nfqnl.packet_message(queued)))
        read = nfqnl.packet_at(message, 8, len(message))
        assert (*read[:2], bytes(read.payload), *read[3:]) == (
            *queued[:2], bytes(queued.payload), *queued[3:8], queued.timestamp_ns)
