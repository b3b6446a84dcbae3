"""The client's address of a PAM session, taken from what sshd put in the environment.

Rules of this module:

1. Only numeric addresses count. ``PAM_RHOST`` is the client's IP when sshd runs with
   ``UseDNS no`` (the default) and a host name otherwise; a name is never resolved
   (its owner chooses what it resolves to), ``SSH_CONNECTION``'s first field is used
   instead.
2. ``PAM_RHOST`` comes first: ``pam_exec`` sets it from the PAM item sshd set, after
   the PAM environment (which the user may influence through ``pam_env``), so it is
   the variable a user cannot choose. ``SSH_CONNECTION`` is sshd's ``pam_putenv``.
3. One form per address: an IPv4-mapped IPv6 address (``::ffff:192.0.2.7``, what a
   dual-stack listener sees) is the IPv4 address; a zone id (``fe80::1%eth0``) is
   dropped; whitespace around the text is not part of it.
4. Stdlib ``ipaddress`` only: the hook imports this module on every login.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Longer text is not an address; not even worth parsing.
_MAX_ADDRESS_TEXT = 64


def client_address(text: str) -> Address | None:
    """``text`` as an address in its one form, or None when it is not a numeric address.

    >>> client_address("::ffff:192.0.2.7")
    IPv4Address('192.0.2.7')
    >>> client_address("fe80::1%eth0")
    IPv6Address('fe80::1')
    >>> client_address("host.example.org") is None
    True
    """
    text = text.strip()
    if not text or len(text) > _MAX_ADDRESS_TEXT:
        return None
    text = text.split("%", 1)[0]  # the zone id names our interface, not the client
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def session_address(environ: Mapping[str, str]) -> Address | None:
    """The client's address from a ``pam_exec`` environment, or None when it names none.

    ``PAM_RHOST`` when it is numeric, else the first field of ``SSH_CONNECTION``
    (``"CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT"``).
    """
    address = client_address(environ.get("PAM_RHOST", ""))
    if address is not None:
        return address
    fields = environ.get("SSH_CONNECTION", "").split()
    return client_address(fields[0]) if len(fields) == 4 else None
