"""Bad control input never crashes the daemon: only typed errors and error replies.

Random bytes, and valid requests mutated at random, go through the same two steps the
server takes for every line: ``decode_request`` (which may refuse with ProtocolError
only) and ``dispatch`` against live tables (which may only reply, never raise).
"""

from __future__ import annotations

import json
import typing

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.control import ROOT, Context, Peer
from recentd.control.dispatch import dispatch
from recentd.control.protocol import (
    ListTables,
    ProtocolError,
    Reply,
    SetParams,
    ShowTable,
    Status,
    WriteTable,
    decode_request,
    encode,
)

from .conftest import make_service

REPLY_TYPES = typing.get_args(Reply)
NOBODY = Peer(pid=1, uid=65534, gid=65534)
VALID = [
    encode(ListTables()),
    encode(ShowTable("SSH")),
    encode(WriteTable("SSH", b"+10.0.0.1\n")),
    encode(Status()),
    encode(SetParams("SSH", {"ip_list_tot": 5})),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def serve(line: bytes, peer: Peer) -> Reply | None:
    """None when the line is refused as a protocol error; else the reply."""
    try:
        request = decode_request(line)
    except ProtocolError:
        return None
    return dispatch(request, Context(make_service(ip_list_perms=0o600), peer))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([ROOT, NOBODY]))
def test_random_bytes(line: bytes, peer: Peer) -> None:
    reply = serve(line, peer)
    assert reply is None or isinstance(reply, REPLY_TYPES)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(VALID),
    st.integers(0, 10),
    st.one_of(st.none(), st.text(max_size=10)),
    json_values,
    st.sampled_from([ROOT, NOBODY]),
)
def test_mutated_requests(line: bytes, index: int, new_key: str | None, value: object, peer: Peer) -> None:
    body = json.loads(line)
    field = sorted(body)[index % len(body)] if new_key is None else new_key
    body[field] = value
    reply = serve(json.dumps(body).encode(), peer)
    assert reply is None or isinstance(reply, REPLY_TYPES)
