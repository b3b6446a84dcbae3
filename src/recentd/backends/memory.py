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
    """Bans in a dict, expiring on ``clock`` (seconds; default: time stands still)."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._clock = clock
        self._bans: dict[tuple[int, Address], float] = {}
        self._prefixes: dict[tuple[int, Address], int] = {}
        self.installed = False

    def install(self) -> None:
        self._bans.clear()
        self.installed = True

    def uninstall(self) -> None:
        self._bans.clear()
        self.installed = False

    def add(self, family: int, addr: Address, timeout_s: int) -> None:
        addr = _checked(family, addr)
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {timeout_s}")
        self._bans[(family, addr)] = self._clock() + timeout_s

    def add_many(self, bans: Sequence[KernelBan]) -> None:
        """All of ``bans`` or none: validated before anything changes; then each is an
        :meth:`add` (a fake that watches ``add`` sees every ban)."""
        keys = []
        for ban in bans:
            keys.append((ban.family, _checked(ban.family, ban.addr)))
            if ban.timeout_s <= 0:
                raise ValueError(f"timeout must be positive, got {ban.timeout_s}")
        for (family, addr), ban in zip(keys, bans, strict=True):
            self.add(family, addr, ban.timeout_s)
            if ban.prefix is None:
                if self._prefixes:
                    self._prefixes.pop((family, addr), None)
            else:
                self._prefixes[family, addr] = ban.prefix

    def remove(self, family: int, addr: Address) -> None:
        self._bans.pop((family, _checked(family, addr)), None)

    def flush(self) -> None:
        self._bans.clear()

    def snapshot(self) -> list[KernelBan]:
        now = self._clock()
        return sorted(
            (
                KernelBan(family, addr, math.ceil(expiry - now),
                          self._prefixes.get((family, addr)))
                for (family, addr), expiry in self._bans.items()
                if expiry > now
            ),
            key=lambda ban: (ban.family, int(ban.addr)),
        )
