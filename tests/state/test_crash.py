"""SIGKILL in the middle of a stream of acknowledged writes loses none of them."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from recentd.control import ControlClient
from recentd.control.protocol import WriteResult, WriteTable
from recentd.errors import ControlError
from recentd.state import StateStore

from .conftest import make_tables

HARNESS = Path(__file__).with_name("killable_daemon.py")


def address(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path):
    state_dir, sock = tmp_path / "state", tmp_path / "control.sock"
    daemon = subprocess.Popen(
        [sys.executable, str(HARNESS), str(state_dir), str(sock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline() == "ready\n"
        acknowledged = []
        killer = threading.Timer(0.4, daemon.send_signal, [signal.SIGKILL])
        killer.start()
        with ControlClient(sock, timeout=5) as client:
            for n in range(1, 100_000):
                try:
                    reply = client.call(WriteTable("SSH", f"+{address(n)}\n".encode()))
                except ControlError:
                    break  # killed: this write was never acknowledged
                assert isinstance(reply, WriteResult)
                acknowledged.append(n)
        killer.join()
        assert daemon.wait(10) == -signal.SIGKILL
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        if daemon.stdout is not None:
            daemon.stdout.close()

    assert len(acknowledged) > 50, "the daemon died before the stream got going"
    tables = make_tables("SSH")
    tables.configure("SSH", ip_list_tot=1_000_000)
    StateStore(state_dir).restore(tables, 1000, time.time_ns())
    present = {entry.addr for entry in tables["SSH"]}
    missing = [address(n) for n in acknowledged if (0x0A000000 | n) not in present]
    assert missing == []
