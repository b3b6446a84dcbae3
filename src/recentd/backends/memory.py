"""The in-memory :class:`~recentd.backends.BanBackend`: the fake every test can use.

It expires bans on a clock you pass in (seconds), so a test decides when time moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from recentd.backends import Address, KernelBan, check_address


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
        addr = check_address(family, addr)
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {timeout_s}")
        self._bans[(family, addr)] = self._clock() + timeout_s

    def add_many(self, bans: Sequence[KernelBan]) -> None:
        for ban in bans:  # validate all first: a refused batch changes nothing
            check_address(ban.family, ban.addr)
            if ban.timeout_s <= 0:
                raise ValueError(f"timeout must be positive, got {ban.timeout_s}")
        for ban in bans:
            self.add(ban.family, ban.addr, ban.timeout_s)
            key = (ban.family, check_address(ban.family, ban.addr))
            if ban.prefix is None:
                self._prefixes.pop(key, None)
            else:
                self._prefixes[key] = ban.prefix

    def remove(self, family: int, addr: Address) -> None:
        self._bans.pop((family, check_address(family, addr)), None)

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
