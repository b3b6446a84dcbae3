"""Addresses as sshd and dropbear write them, turned into canonical ``ipaddress`` objects.

Rules: only a text that :mod:`ipaddress` accepts becomes an address (a host name never
does); an IPv6 zone (``%eth0``) and brackets are dropped; an IPv4-mapped IPv6 address
(``::ffff:a.b.c.d``) is the IPv4 address it maps, so both spellings count together.
"""

from __future__ import annotations

import functools
import ipaddress

from recentd.logs.events import IPAddress

#: Longest text that can be an address with a zone id; anything longer is not one.
_MAX_TEXT = 80


@functools.lru_cache(maxsize=65_536)  # a log names the same few addresses again and again
def parse_address(text: str) -> IPAddress | None:
    """Return the canonical address ``text`` names, or ``None`` if it names none.

    Args:
        text: an address as logged: ``1.2.3.4``, ``2001:db8::1%eth0``, ``[::1]``,
            ``::ffff:1.2.3.4``.
    """
    if not text or len(text) > _MAX_TEXT:
        return None
    if text[0] == "[" and text[-1] == "]":
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def split_host_port(text: str) -> tuple[IPAddress | None, int | None]:
    """Split dropbear's ``ADDR:PORT`` (the port is always last, IPv6 has no brackets)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not host:
        return None, None
    return parse_address(host), int(port)
