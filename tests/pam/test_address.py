"""The client's address from a pam_exec environment: transcripts, environment in, address out."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recentd.pam.address import address_text, session_address

# PAM_RHOST as sshd sets it (UseDNS no: the address; UseDNS yes: a name), → the address.
RHOST_CASES = [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8::7", "2001:db8::7"),
    ("2001:DB8:0:0::7", "2001:db8::7"),  # one form, whatever the spelling
    ("2001:db8:0:0:0:0:0:7", "2001:db8::7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # dual-stack listener: the IPv4 client
    ("::ffff:c000:207", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::1"),  # the zone names our interface, not the client
    ("fe80::1%2", "fe80::1"),
    (" 192.0.2.7\n", "192.0.2.7"),
    ("host.example.org", None),  # a name: never resolved
    ("localhost", None),
    ("", None),
    ("192.0.2.256", None),
    ("192.0.2.7/24", None),
    ("0x7f.1", None),  # inet_aton's forms are not addresses here
    ("127.1", None),
    ("01.2.3.4", None),  # nor leading zeros (octal to some parsers)
    ("1.2.3.4\x00", None),
    ("192.0.2.7 203.0.113.9", None),
    ("1" * 200, None),
    ("\udcff\udcfe", None),  # undecodable bytes, as os.environ carries them
]


@pytest.mark.parametrize(("rhost", "expected"), RHOST_CASES)
def test_pam_rhost(rhost, expected):
    assert session_address({"PAM_RHOST": rhost}) == expected


SSH_CONNECTION_CASES = [
    # PAM_RHOST, SSH_CONNECTION → address
    ("client.example.org", "198.51.100.4 52022 192.0.2.1 22", "198.51.100.4"),
    ("", "2001:db8::9 52022 2001:db8::1 22", "2001:db8::9"),
    ("client.example.org", "::ffff:198.51.100.4 52022 ::ffff:192.0.2.1 22", "198.51.100.4"),
    ("192.0.2.7", "198.51.100.4 52022 192.0.2.1 22", "192.0.2.7"),  # PAM_RHOST first
    ("client.example.org", "garbage", None),
    ("client.example.org", "client.example.org 52022 192.0.2.1 22", None),
    ("client.example.org", "198.51.100.4 52022", None),  # not sshd's four fields
    ("client.example.org", "", None),
]


@pytest.mark.parametrize(("rhost", "connection", "expected"), SSH_CONNECTION_CASES)
def test_ssh_connection_when_pam_rhost_is_a_name(rhost, connection, expected):
    assert session_address({"PAM_RHOST": rhost, "SSH_CONNECTION": connection}) == expected


def test_no_address_at_all():
    assert session_address({}) is None  # a local login (su, console): no client


@given(st.text(max_size=80))
def test_any_text_gives_an_address_in_its_one_form_or_none(text):
    address = address_text(text)
    if address is not None:
        assert address_text(address) == address
        parsed = ipaddress.ip_address(address)  # the daemon's reading of it
        assert not (parsed.version == 6 and parsed.ipv4_mapped is not None)


@given(st.ip_addresses())
def test_every_address_reads_as_ipaddress_reads_it(address):
    text = address_text(str(address))
    expected = address.ipv4_mapped if address.version == 6 and address.ipv4_mapped else address
    assert ipaddress.ip_address(text) == expected
