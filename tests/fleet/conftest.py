"""The fleet's tests run against a real ``redis-server`` (or ``valkey-server``) started by
the tests themselves on a private Unix socket in the test's temporary directory, ACLs on
(:mod:`recentd.testing.store`); stopped and removed even when a test fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from recentd.testing.store import Store

#: One ACL user per host; "intruder" may only touch keys of another prefix.
USERS = {"host-a": "recentd", "host-b": "recentd", "host-c": "recentd", "intruder": "other"}


@pytest.fixture(params=["redis-server", "valkey-server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store, once per server program (Valkey is not in Debian 12: skipped, said why)."""
    program = shutil.which(request.param)
    if program is None:
        reason = f"{request.param} is not installed (Debian 12 does not ship it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    store = Store(program, tmp_path / request.param, USERS)
    store.directory.mkdir()
    store.start()
    try:
        yield store
    finally:
        store.stop()
