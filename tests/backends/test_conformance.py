"""Every ban backend passes the one conformance suite: the fake here, nftables in a
private network namespace (unique name, removed even when the suite fails)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from recentd.backends import check_address
from recentd.backends.memory import MemoryBanBackend
from recentd.testing.backends import A6, check_backend
from tests.live.netns import REPO


def test_memory_backend_conforms():
    check_backend(MemoryBanBackend)


def test_memory_backend_expires_on_its_clock():
    now = [0.0]
    backend = MemoryBanBackend(lambda: now[0])
    backend.add(6, A6, 5)
    now[0] = 4.5
    assert [b.timeout_s for b in backend.snapshot()] == [1]
    now[0] = 5.0
    assert backend.snapshot() == []


def test_addresses_are_validated():
    with pytest.raises(ValueError):
        check_address(4, "10.0.0.1; rm -rf /")
    assert check_address(6, "2001:db8::1") == A6


@pytest.mark.netns
def test_nft_backend_conforms_in_a_namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"rdt-nft-{os.getpid()}-{random.randrange(1 << 24):06x}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        code = (
            "from recentd.backends import BanClass\n"
            "from recentd.backends.nftables import NftBanBackend\n"
            "from recentd.testing.backends import check_backend\n"
            "check_backend(lambda: NftBanBackend(BanClass(6, (22,), True)))\n"
            "b = NftBanBackend(BanClass(6, (22,), True))\n"
            "assert not b._table_exists(), 'uninstall left the table'\n"
            "print('conformant')\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True, text=True, check=False, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )  # fmt: skip
        assert done.returncode == 0 and "conformant" in done.stdout, done.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
