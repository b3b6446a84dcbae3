"""The in-memory :class:`~recentd.backends.BanBackend`: the fake every test can use.

It expires bans on a clock you pass in (seconds), so a test decides when time moves.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence

from recentd.backends import Address, KernelBan, check_address

_EXACT = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}


def _checked(family: int, addr: object) -> Address:
    """:func:`~recentd.backends.check_address`, answering at once for an address object
    of the family (a fleet batch brings 1,000 such): its result for one is the object."""
    if type(addr) is _EXACT.get(family):
        return addr  # type: ignore[return-value]
    return check_address(family, addr)


class MemoryBanBackend:
    """Bans in a dict, expiring on ``clock`` (seconds; default: time stands still).

    Keyed by (family, address as an integer): a tuple of integers, which the garbage
    collector stops tracking, where (family, address object) would be one more object
    for it to visit per ban (a fleet member holds tens of thousands, bench/fleet.py)."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._clock = clock
        self._bans: dict[tuple[int, int], float] = {}
        self._addresses: dict[tuple[int, int], Address] = {}
        self._prefixes: dict[tuple[int, int], int] = {}
        self.installed = False

    def install(self) -> None:
        self.flush()
        self.installed = True

    def uninstall(self) -> None:
        self.flush()
        self.installed = False

    def add(self, family: int, addr: Address, timeout_s: int) -> None:
        addr = _checked(family, addr)
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {timeout_s}")
        key = (family, int(addr))
        self._bans[key] = self._clock() + timeout_s
        self._addresses[key] = addr

    def add_many(self, bans: Sequence[KernelBan]) -> None:
        """All of ``bans`` or none: validated before anything changes; then each is an
        :meth:`add` (a fake that watches ``add`` sees every ban)."""
        checked = []
        for ban in bans:
            checked.append(_checked(ban.family, ban.addr))
            if ban.timeout_s <= 0:
                raise ValueError(f"timeout must be positive, got {ban.timeout_s}")
        for addr, ban in zip(checked, bans, strict=True):
            self.add(ban.family, addr, ban.timeout_s)
            if ban.prefix is None:
                if self._prefixes:
                    self._prefixes.pop((ban.family, int(addr)), None)
            else:
                self._prefixes[ban.family, int(addr)] = ban.prefix

    def remove(self, family: int, addr: Address) -> None:
        key = (family, int(_checked(family, addr)))
        self._bans.pop(key, None)
        self._addresses.pop(key, None)

    def flush(self) -> None:
        self._bans.clear()
        self._addresses.clear()

    def snapshot(self) -> list[KernelBan]:
        now = self._clock()
        return sorted(
            (
                KernelBan(key[0], self._addresses[key], math.ceil(expiry - now),
                          self._prefixes.get(key))
                for key, expiry in self._bans.items()
                if expiry > now
            ),
            key=lambda ban: (ban.family, int(ban.addr)),
        )
