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
4. The C library's parser (``inet_pton``, strict: dotted quads without leading zeros,
   RFC 4291 text), not ``ipaddress``: the hook imports this module on every login, and
   ``ipaddress`` with what it pulls in costs more to import (about 17 ms on a loaded
   machine) than the rest of the hook takes to run. The daemon makes the ``ipaddress``
   object from the text this module gives (:func:`recentd.control.dispatch`'s Login).
"""

from __future__ import annotations

import _socket

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (mypy reads any TYPE_CHECKING as
#: true): ``collections.abc`` pulls in ``collections``, a cost at every login.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Longer text is not an address; not even worth parsing.
_MAX_ADDRESS_TEXT = 64
_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def address_text(text: str) -> str | None:
    """``text`` as a numeric address in its one form, or None when it is not one.

    >>> address_text("::ffff:192.0.2.7")
    '192.0.2.7'
    >>> address_text("FE80::1%eth0")
    'fe80::1'
    >>> address_text("host.example.org") is None
    True
    """
    text = text.strip().split("%", 1)[0]  # the zone id names our interface, not the client
    if not text or len(text) > _MAX_ADDRESS_TEXT:
        return None
    try:
        return _socket.inet_ntop(_socket.AF_INET, _socket.inet_pton(_socket.AF_INET, text))
    except (OSError, ValueError):  # ValueError: NUL or undecodable characters
        pass
    try:
        packed = _socket.inet_pton(_socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    if packed.startswith(_IPV4_MAPPED_PREFIX):
        return _socket.inet_ntop(_socket.AF_INET, packed[12:])
    return _socket.inet_ntop(_socket.AF_INET6, packed)


def session_address(environ: Mapping[str, str]) -> str | None:
    """The client's address from a ``pam_exec`` environment, or None when it names none.

    ``PAM_RHOST`` when it is numeric, else the first field of ``SSH_CONNECTION``
    (``"CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT"``).
    """
    address = address_text(environ.get("PAM_RHOST", ""))
    if address is not None:
        return address
    fields = environ.get("SSH_CONNECTION", "").split()
    return address_text(fields[0]) if len(fields) == 4 else None
