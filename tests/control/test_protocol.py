"""The wire: each message is one JSON line; anything else is refused by name."""

from __future__ import annotations

import json

import pytest

from recentd.control.protocol import (
    Entry,
    ErrorReply,
    ListTables,
    ProtocolError,
    SetParams,
    ShowTable,
    Status,
    StatusReply,
    TableInfo,
    TableList,
    TableListing,
    WriteResult,
    WriteTable,
    decode_reply,
    decode_request,
    encode,
)


def test_a_write_on_the_wire():
    line = encode(WriteTable("SSH", b"+1.2.3.4\n"))
    assert line == b'{"v":1,"type":"WriteTable","name":"SSH","data":"+1.2.3.4\\n","offset":0,"force":false}\n'
    assert decode_request(line) == WriteTable("SSH", b"+1.2.3.4\n")


@pytest.mark.parametrize(
    "request_",
    [ListTables(), ShowTable("SSH"), Status(), SetParams("SSH", {"ip_list_tot": 5}),
     WriteTable("X", bytes(range(256)), offset=3)],
)  # fmt: skip
def test_requests_round_trip(request_):
    assert decode_request(encode(request_)) == request_


@pytest.mark.parametrize(
    "reply",
    [
        TableList([TableInfo("SSH", 1, 32, 100, 0, 0o600, 0, 0)]),
        TableListing("SSH", [Entry(6, 1 << 127, 64, 2, [5, 6], 6)]),
        WriteResult(8, 8),
        StatusReply("0.1.0", 1, 2.5, 250, 99, 1, 1, {"nfqueue": "ok"}, {"generation": 2}),
        ErrorReply("ProcWriteError", "not an IPv4 address", "EINVAL"),
    ],
)
def test_replies_round_trip(reply):
    assert decode_reply(encode(reply)) == reply


def test_another_version_is_refused_clearly():
    with pytest.raises(ProtocolError, match="protocol version 2 is not supported"):
        decode_request(b'{"v":2,"type":"Status"}')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not a JSON line"),
        (b"[1]", "must be a JSON object"),
        (b'{"v":1,"type":"Reboot"}', "unknown message type 'Reboot'"),
        (b'{"v":1,"type":"WriteResult","written":1,"offset":1}', "unknown message type"),
        (b'{"v":1,"type":"ShowTable"}', "missing 1 required positional argument"),
        (b'{"v":1,"type":"ShowTable","name":"A","x":1}', "unknown field 'x'"),
        (b'{"v":1,"type":"ShowTable","name":5}', "ShowTable.name: expected str, got int"),
        (b'{"v":1,"type":"WriteTable","name":"A","data":"\\u0100"}', "code points 0-255"),
        (b'{"v":1,"type":"WriteTable","name":"A","data":"+","offset":true}', "expected int"),
    ],
)
def test_malformed_requests_are_protocol_errors(line, message):
    with pytest.raises(ProtocolError, match=message):
        decode_request(line)


def test_no_pickle_anywhere():
    line = encode(ShowTable("SSH"))
    assert json.loads(line) == {"v": 1, "type": "ShowTable", "name": "SSH"}
