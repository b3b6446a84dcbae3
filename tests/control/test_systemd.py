"""sd_notify: datagrams to $NOTIFY_SOCKET, nothing without it."""

from __future__ import annotations

import os
import socket

import pytest

from recentd.control.systemd import (
    notify_ready,
    notify_status,
    notify_watchdog,
    watchdog_interval,
)
from recentd.errors import BackendError


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_ready_watchdog_status_are_sent(listener):
    sock, env = listener
    assert notify_ready(env)
    assert sock.recv(4096) == f"READY=1\nMAINPID={os.getpid()}".encode()
    assert notify_watchdog(env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notify_status("3 tables,\n120 entries", env)
    assert sock.recv(4096) == b"STATUS=3 tables, 120 entries"


def test_abstract_socket_names():
    name = f"recentd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify_watchdog({"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"WATCHDOG=1"


def test_no_notify_socket_is_a_no_op():
    assert notify_ready({}) is False
    assert notify_watchdog({"NOTIFY_SOCKET": ""}) is False


def test_a_dead_notify_socket_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="cannot notify systemd"):
        notify_ready({"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_watchdog_interval_is_half_the_timeout():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    own = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(own) == 1.0
