"""Where bans live: the :class:`BanBackend` interface every backend implements.

Rules of this package:

1. A backend holds addresses the kernel (or a fake) drops a fixed class of packets from
   (:class:`BanClass`, fixed at :meth:`BanBackend.install`), each for a number of seconds.
   Which drops may become bans is decided by :mod:`recentd.live.policy`; when, by the
   pipeline and the daemon (:mod:`recentd.commands`); carrying them out and remembering
   which are active, by :class:`recentd.enforcer.Enforcer` — never here.
2. :class:`BanBackend` declares every method anything calls on a backend; nothing probes
   a backend with ``getattr``. Every method may raise
   :class:`~recentd.errors.BackendError` (the enforcer's guard catches it) and
   ``ValueError`` for an address of the wrong family or a non-positive timeout.
3. Addresses are validated with :mod:`ipaddress` (:func:`check_address`) before a backend
   acts on them; no command string is ever built from one.
4. Every backend passes :func:`recentd.testing.backends.check_backend`: the in-memory
   fake (:mod:`recentd.backends.memory`) everywhere, nftables
   (:mod:`recentd.backends.nftables`) in a private network namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_address(family: int, addr: object) -> Address:
    """``addr`` as an ``ipaddress`` object of ``family`` (4 or 6).

    Raises:
        ValueError: not an address of that family.
    """
    if isinstance(addr, int):  # an integer's family is the one asked for (1 is also ::1)
        addr = ipaddress.IPv4Address(addr) if family == 4 else ipaddress.IPv6Address(addr)
    parsed = ipaddress.ip_address(addr) if isinstance(addr, str) else addr
    if not isinstance(parsed, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ValueError(f"not an IP address: {addr!r}")
    if parsed.version != family:
        raise ValueError(f"{parsed} is not an IPv{family} address")
    return parsed


@dataclass(frozen=True, slots=True)
class KernelBan:
    """One address a backend holds: dropped until ``timeout_s`` seconds from when it was
    added (in a :meth:`BanBackend.snapshot`: the seconds left, rounded up). With
    ``prefix``, the network of that many leading bits (a masked list's entry)."""

    family: int
    addr: Address
    timeout_s: int
    prefix: int | None = None


@dataclass(frozen=True, slots=True)
class Traffic:
    """A conjunction of packet conditions the kernel can test (each empty one: any).

    Attributes:
        proto: IP protocol number (0: any).
        dports: destination ports.
        ctstates: conntrack states, one of which the packet must be in (``CtState``
            bits; 0: any).
        iif: input interface name.
    """

    proto: int = 0
    dports: tuple[int, ...] = ()
    ctstates: int = 0
    iif: str = ""


@dataclass(frozen=True, slots=True)
class BanClass:
    """Which packets of a banned address the kernel drops.

    Attributes:
        proto: IP protocol number (6 = TCP; 0: any).
        dports: destination ports (empty: any).
        ct_new_only: only packets opening a connection (``ct state new``).
        exclude: traffic the kernel leaves to user space even from a banned address
            (what an earlier rule may decide or write a table for), tested first.
        hooks: the netfilter hooks the kernel drops at (``input``, ``forward``).
        networks: bans may be networks (:attr:`KernelBan.prefix`): the sets hold intervals.
        log_group: the NFLOG group each dropped packet is also logged to (``None``: none),
            for user space to replay its table writes (stamping).
    """

    proto: int = 6
    dports: tuple[int, ...] = ()
    ct_new_only: bool = True
    exclude: tuple[Traffic, ...] = ()
    hooks: tuple[str, ...] = ("input",)
    networks: bool = False
    log_group: int | None = None


class BanBackend(Protocol):
    """Where bans live. See the package rules."""

    def install(self) -> None:
        """Create (or recreate empty) the backend's own kernel objects."""
        ...

    def uninstall(self) -> None:
        """Remove everything :meth:`install` created; safe when nothing is installed."""
        ...

    def add(self, family: int, addr: Address, timeout_s: int) -> None:
        """Hold ``addr`` for ``timeout_s`` seconds from now (re-timing it if held)."""
        ...

    def add_many(self, bans: Sequence[KernelBan]) -> None:
        """:meth:`add` for each, as one transaction where the backend has them."""
        ...

    def remove(self, family: int, addr: Address) -> None:
        """Stop holding ``addr``; an address not held is not an error."""
        ...

    def flush(self) -> None:
        """Stop holding every address."""
        ...

    def snapshot(self) -> list[KernelBan]:
        """What the backend holds now, seconds left rounded up, sorted by (family, addr)."""
        ...
