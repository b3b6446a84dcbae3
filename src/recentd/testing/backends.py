"""The :class:`~recentd.backends.BanBackend` conformance suite.

A backend — the nftables one, the in-memory fake, or a third party's — proves itself
with ``check_backend(make_backend)``: ``make_backend()`` returns a new, not yet
installed backend. The suite asserts the package rules of :mod:`recentd.backends`:

- install gives an empty backend, and installing again empties it;
- ``add`` and ``add_many`` hold each address for its timeout, and adding a held address
  re-times it (to a shorter timeout as well as a longer one);
- ``remove`` of an address not held is harmless; ``flush`` empties;
- an address of the wrong family, or a timeout that is not positive, is a ``ValueError``,
  and a batch holding one changes nothing;
- ``uninstall`` twice is harmless, and a backend can be installed again afterwards.

The in-memory fake (:class:`~recentd.backends.memory.MemoryBanBackend`) is re-exported
here, beside the suite it passes, for tests that need a backend.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from recentd.backends import Address, BanBackend, KernelBan
from recentd.backends.memory import MemoryBanBackend

__all__ = ["MemoryBanBackend", "check_backend", "held"]

A4: Address = ipaddress.IPv4Address("192.0.2.1")
B4: Address = ipaddress.IPv4Address("192.0.2.2")
C4: Address = ipaddress.IPv4Address("198.51.100.7")
A6: Address = ipaddress.IPv6Address("2001:db8::1")


def held(backend: BanBackend) -> dict[tuple[int, Address], int]:
    """What ``backend`` holds: (family, address) → seconds left."""
    return {(ban.family, ban.addr): ban.timeout_s for ban in backend.snapshot()}


def _raises_value_error(action: Callable[[], None]) -> bool:
    try:
        action()
    except ValueError:
        return True
    return False


def check_backend(make_backend: Callable[[], BanBackend]) -> None:
    """Assert the :mod:`recentd.backends` rules for the backends ``make_backend`` builds.

    Raises:
        AssertionError: naming the rule broken and what the backend held instead.
    """
    backend = make_backend()
    backend.install()
    try:
        assert held(backend) == {}, f"a new backend holds {held(backend)}"
        backend.add(4, A4, 30)
        backend.add_many([KernelBan(4, B4, 100), KernelBan(6, A6, 50)])
        backend.add(4, A4, 600)  # re-timing a held ban, longer
        backend.add_many([KernelBan(4, B4, 20)])  # and shorter
        now = held(backend)
        assert set(now) == {(4, A4), (4, B4), (6, A6)}, f"after adds, holds {now}"
        assert 598 <= now[(4, A4)] <= 600, f"re-timed to 600 s, holds {now[(4, A4)]}"
        assert 18 <= now[(4, B4)] <= 20, f"re-timed to 20 s, holds {now[(4, B4)]}"
        assert 48 <= now[(6, A6)] <= 50, f"added for 50 s, holds {now[(6, A6)]}"
        assert [(b.family, int(b.addr)) for b in backend.snapshot()] == sorted(
            (family, int(addr)) for family, addr in now
        ), "snapshot() is not sorted by (family, address)"

        backend.remove(4, B4)
        backend.remove(4, B4)  # not held: no error
        backend.remove(4, C4)
        assert set(held(backend)) == {(4, A4), (6, A6)}, f"after remove, {held(backend)}"

        before = held(backend)
        assert _raises_value_error(lambda: backend.add(4, A6, 10)), "IPv6 address as IPv4"
        assert _raises_value_error(lambda: backend.add(4, C4, 0)), "a timeout of 0 s"
        bad_batch = [KernelBan(4, C4, 10), KernelBan(6, B4, 10)]
        assert _raises_value_error(lambda: backend.add_many(bad_batch)), "a bad batch"
        assert set(held(backend)) == set(before), f"a refused batch changed {held(backend)}"

        backend.flush()
        assert held(backend) == {}, f"after flush, holds {held(backend)}"
        backend.add(4, A4, 30)
        backend.install()
        assert held(backend) == {}, f"installing again kept {held(backend)}"
    finally:
        backend.uninstall()
        backend.uninstall()
    backend.install()
    try:
        backend.add(6, A6, 5)
        assert set(held(backend)) == {(6, A6)}, "a backend installed again does not hold bans"
    finally:
        backend.uninstall()
