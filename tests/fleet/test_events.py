"""The fleet's event format: what is written reads back the same; anything else a peer
might send is a FleetMessageError naming the entry and the field, never another error."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recentd.fleet.events import FleetEvent, FleetMessageError, Op, decode, encode

BAN = FleetEvent(Op.BAN, ipaddress.ip_network("192.0.2.7/32"), "SSH", 1_000, 601_000,
                 "host-a", "4 hits in 60 s", "host-a:1000.1")  # fmt: skip
GOOD = encode(BAN)


def test_an_event_reads_back_as_it_was_written() -> None:
    assert GOOD == {"v": "1", "op": "ban", "net": "192.0.2.7/32", "list": "SSH", "at": "1000",
                    "until": "601000", "host": "host-a", "reason": "4 hits in 60 s",
                    "eid": "host-a:1000.1"}  # fmt: skip
    assert decode("1-0", GOOD) == BAN


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"v": "2"}, "v", "unknown version '2'"),
    ({"op": "kill"}, "op", "not ban/unban: 'kill'"),
    ({"net": "192.0.2.7/24"}, "net", "192.0.2.7/24 has host bits set"),
    ({"net": "example.org"}, "net", "'example.org' does not appear to be an IPv4 or IPv6 network"),
    ({"at": "-5"}, "at", "not a wall time in ms: '-5'"),
    ({"until": "999"}, "until", "a ban that ends before it starts"),
    ({"host": "a b"}, "host", "not a name: 'a b'"),
    ({"list": ""}, "list", "not a name: ''"),
    ({"reason": "x" * 201}, "reason", "not printable text of at most 200 characters"),
    ({"reason": "evil\x1b[2J"}, "reason", "not printable text of at most 200 characters"),
])  # fmt: skip
def test_a_bad_field_is_named(change: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(FleetMessageError) as caught:
        decode("7-1", {**GOOD, **change})
    assert caught.value.field == field and caught.value.entry == "7-1"
    assert str(caught.value) == f"fleet: entry 7-1: field {field!r}: {message}"


def test_a_missing_field_is_named() -> None:
    fields = dict(GOOD)
    del fields["eid"]
    with pytest.raises(FleetMessageError, match="field 'eid': missing"):
        decode("7-2", fields)


@given(st.dictionaries(st.sampled_from(sorted(GOOD)) | st.text(max_size=5),
                       st.text(max_size=30), max_size=12))  # fmt: skip
def test_anything_a_peer_sends_decodes_or_is_a_fleet_message_error(fields: dict[str, str]) -> None:
    for candidate in (fields, {**GOOD, **fields}):
        try:
            event = decode("9-9", candidate)
        except FleetMessageError:
            continue
        assert decode("9-9", encode(event)) == event
