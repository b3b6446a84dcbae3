"""Two real ``recentd run --config`` daemons, each in a network namespace of its own, share
one ``redis-server`` (private Unix socket, ACLs on; a socket path reaches across network
namespaces): failures in host A's watched log ban a source in A's kernel set, and the ban
reaches host B's kernel set (``nft list set`` in B's namespace), where B's kernel drops
the source's SYNs; an address on B's allow list that A bans stays out of B's set."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recentd.testing.store import Store
from tests.live.netns import CLIENT4, OTHER4, SERVER4, Testbed
from tests.live.test_live_netns import Run
from tests.live.test_logs_netns import RECIPE, ban_set, failure, kernel_drops, queued

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root"
    for program in ("ip", "nft", "iptables-legacy"):
        if shutil.which(program) is None:
            return f"needs {program}"
    return ""


@pytest.fixture
def beds() -> Iterator[tuple[Testbed, Testbed]]:
    """Host A's and host B's namespaces (each a server and a client namespace)."""
    reason = _missing()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    a, b = Testbed("lvfa"), Testbed("lvfb")
    try:
        yield a.up(), b.up()
    finally:
        a.down()
        b.down()
    assert not a.exists() and not b.exists()


def _member(bed: Testbed, tmp: Path, store: Store, host: str, allow: str = "") -> Run:
    """``recentd run --config`` in ``bed``'s server namespace: a watched log (SSH_AUTH
    failures), the fleet on ``store`` as ``host``, and an ``[allow]`` table if given."""
    tmp.mkdir()
    rules, log = tmp / "rules.v4", tmp / "auth.log"
    rules.write_text(RECIPE)
    log.write_text("")
    config = [
        "[[watch]]", f'source = "{log}"', 'failure = "SSH_AUTH"', "",
        "[fleet]", f'url = "{store.url}"', f'host = "{host}"', 'lists = ["SSH_AUTH"]',
        f'password_file = "{store.password_file(host)}"', "",
    ]  # fmt: skip
    if allow:
        config += ["[allow]", f'addresses = ["{allow}"]', ""]
    (tmp / "recentd.toml").write_text("\n".join(config))
    return Run(bed, tmp, rules, "--config", str(tmp / "recentd.toml"))


def _fail_logins(run: Run, address: str) -> None:
    """Five failed logins from ``address`` appended to the member's watched log."""
    with (run.tmp / "auth.log").open("a") as out:
        for port in range(5):
            out.write(failure(address, 41000 + port))
            out.flush()


def _until(check: Callable[[], bool], *runs: Run, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "\n".join(run.output() for run in runs)
        time.sleep(0.02)


def test_a_ban_on_host_a_reaches_host_b_kernel_set(
    beds: tuple[Testbed, Testbed], store: Store, tmp_path: Path
) -> None:
    bed_a, bed_b = beds
    bed_b.serve(22)
    a = _member(bed_a, tmp_path / "a", store, "host-a")
    b = _member(bed_b, tmp_path / "b", store, "host-b", allow=OTHER4)
    try:
        # A bans OTHER4 first, then CLIENT4: B applies the stream in order, so once
        # CLIENT4 is in B's set, OTHER4's ban was handled (and vetoed) before it.
        _fail_logins(a, OTHER4)
        _until(lambda: OTHER4 in ban_set(bed_a), a)
        _fail_logins(a, CLIENT4)
        _until(lambda: CLIENT4 in ban_set(bed_a), a)

        _until(lambda: CLIENT4 in ban_set(bed_b), a, b)
        assert OTHER4 not in ban_set(bed_b)  # B's allow list beat A's ban
        assert OTHER4 in ban_set(bed_a)  # A has no such entry
        why = b.ctl("why", CLIENT4)
        assert "fleet host-a" in why, why
        # the fleet adopted both; the enforcer's allow gate vetoed one (the daemon's status
        # of its sources is refreshed on its timer)
        line = "adapter source fleet: ok: reader ok; publisher ok; outbox 0; published 0; 2 adopt\n"
        _until(lambda: line in b.ctl("status"), b)

        # B's kernel drops the banned source's SYNs before its queue sees them…
        assert (queued(bed_b), kernel_drops(bed_b)) == (0, 0)
        assert bed_b.connect(CLIENT4, SERVER4, 22, 1) == ["fail"]
        assert kernel_drops(bed_b) >= 1
        assert queued(bed_b) == 0
        # …and the allowed address, banned by A, still connects to B.
        assert bed_b.connect(OTHER4, SERVER4, 22, 1) == ["ok"]
    finally:
        for run in (a, b):
            if run.proc.poll() is None:
                run.stop()
