"""A ban as a value: which address, for how long, and which of its packets.

Rules: values only, pure (the offload policy plans them, backends carry them out:
:mod:`recentd.live.policy`, :mod:`recentd.live.offload`); an address is an
``ipaddress`` object of the ban's family, checked by :func:`check_address` before
any backend sees it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_address(family: int, addr: object) -> Address:
    """``addr`` as an ``ipaddress`` object of ``family`` (4 or 6).

    Raises:
        ValueError: not an address of that family.
    """
    parsed = ipaddress.ip_address(addr) if isinstance(addr, str | int) else addr
    if not isinstance(parsed, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ValueError(f"not an IP address: {addr!r}")
    if parsed.version != family:
        raise ValueError(f"{parsed} is not an IPv{family} address")
    return parsed


@dataclass(frozen=True, slots=True)
class Ban:
    """One address dropped by the kernel until ``timeout_s`` seconds from when it was added."""

    family: int
    addr: Address
    timeout_s: int


@dataclass(frozen=True, slots=True)
class BanClass:
    """Which packets of a banned address the kernel drops.

    Attributes:
        proto: IP protocol number (6 = TCP).
        dports: destination ports (empty: any).
        ct_new_only: only packets opening a connection (``ct state new``).
    """

    proto: int = 6
    dports: tuple[int, ...] = ()
    ct_new_only: bool = True
