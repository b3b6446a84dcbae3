import struct

import pytest

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
