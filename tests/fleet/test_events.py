"""The fleet's event format: what is written reads back the same; anything else a peer
might send is a FleetMessageError naming the entry and the field, never another error."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recentd.fleet.events import (
    FIELDS,
    FleetEvent,
    FleetMessageError,
    Op,
    decode,
    encode,
    printable,
    snapshot_field,
)

BAN = FleetEvent.of(ipaddress.ip_network("192.0.2.7/32"), op=Op.BAN, list_name="SSH",
                    at_ms=1_000, until_ms=601_000, host="host-a", reason="4 hits in 60 s",
                    eid="host-a:1000.1")  # fmt: skip
GOOD = encode(BAN)
PARTS = dict(zip(FIELDS, GOOD.split("|"), strict=True))


def _with(**change: str) -> str:
    return "|".join({**PARTS, **change}.values())


def test_an_event_reads_back_as_it_was_written() -> None:
    assert GOOD == "2|ban|192.0.2.7/32|SSH|1000|601000|host-a|host-a:1000.1|4 hits in 60 s"
    assert decode("1-0", GOOD) == BAN
    assert BAN.network == ipaddress.ip_network("192.0.2.7/32") and BAN.is_host
    assert snapshot_field(GOOD) == "SSH|192.0.2.7/32|host-a"


def test_networks_of_both_families_and_a_reason_with_a_bar_read_back() -> None:
    for net in ("2001:db8::/64", "2001:db8::7/128", "198.51.100.0/24", "0.0.0.0/0"):
        event = FleetEvent.of(ipaddress.ip_network(net), op=Op.BAN, list_name="SSH", at_ms=1,
                              until_ms=2, host="h", reason="a|b", eid="h:1")
        assert decode("1-0", encode(event)) == event
        assert decode("1-0", encode(event)).network == ipaddress.ip_network(net)
    bare = decode("1-0", _with(net="192.0.2.7"))  # an address alone is its host network
    assert (bare.address, bare.prefixlen) == (ipaddress.ip_address("192.0.2.7"), 32)


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"v": "1"}, "v", "unknown version '1'"),
    ({"op": "kill"}, "op", "not ban/unban: 'kill'"),
    ({"net": "192.0.2.7/24"}, "net", "192.0.2.7/24 has host bits set"),
    ({"net": "192.0.2.7/33"}, "net", "not a prefix length: '33'"),
    ({"net": "example.org"}, "net", "not an address or network: 'example.org'"),
    ({"net": "192.0.2.07"}, "net", "not an address or network: '192.0.2.07'"),
    ({"net": "fe80::1%eth0"}, "net", "not an address or network: 'fe80::1%eth0'"),
    ({"at": "-5"}, "at", "not a wall time in ms: '-5'"),
    ({"at": "²"}, "at", "not a wall time in ms: '²'"),
    ({"until": "999"}, "until", "a ban that ends before it starts"),
    ({"host": "a b"}, "host", "not a name: 'a b'"),
    ({"list": ""}, "list", "not a name: ''"),
    ({"reason": "x" * 201}, "reason", "not printable text of at most 200 characters"),
    ({"reason": "evil\x1b[2J"}, "reason", "not printable text of at most 200 characters"),
])  # fmt: skip
def test_a_bad_field_is_named(change: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(FleetMessageError) as caught:
        decode("7-1", _with(**change))
    assert caught.value.field == field and caught.value.entry == "7-1"
    assert str(caught.value) == f"fleet: entry 7-1: field {field!r}: {message}"


def test_a_missing_field_is_named_and_an_entry_of_another_shape_is_refused() -> None:
    with pytest.raises(FleetMessageError, match="field 'eid': missing"):
        decode("7-2", GOOD.rsplit("|", 2)[0])
    with pytest.raises(FleetMessageError, match="field 'e': not text: list"):
        decode("7-3", ["v", "1", "op", "ban"])  # an entry of the first format's nine fields


def test_a_reason_is_made_printable_before_it_is_sent() -> None:
    assert printable("bad\nline\x1b") == "bad?line?" and printable("x" * 300) == "x" * 200


@given(st.lists(st.text(max_size=30), max_size=12), st.dictionaries(
    st.sampled_from(FIELDS), st.text(max_size=30), max_size=9))  # fmt: skip
def test_anything_a_peer_sends_decodes_or_is_a_fleet_message_error(
    parts: list[str], change: dict[str, str]
) -> None:
    for candidate in ("|".join(parts), _with(**change)):
        try:
            event = decode("9-9", candidate)
        except FleetMessageError:
            continue
        assert decode("9-9", encode(event)) == event


def test_a_raw_xread_reply_of_either_protocol_gives_each_entry_text() -> None:
    from recentd.fleet.link import _entries  # noqa: PLC0415 - the redis extra

    entries = [["1-0", ["e", GOOD]], ["2-0", ["v", "1", "op", "ban"]]]
    expected = [("1-0", GOOD), ("2-0", ["v", "1", "op", "ban"])]
    assert _entries({"recentd:events": entries}) == expected  # RESP3: a map
    assert _entries([["recentd:events", entries]]) == expected  # RESP2: pairs
    assert _entries(None) == []  # BLOCK ran out
