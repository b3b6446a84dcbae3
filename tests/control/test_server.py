"""The server on a real socket, run by a test loop the way the daemon runs it."""

from __future__ import annotations

import os
import socket

import pytest

from recentd.control import ControlClient, ControlServer
from recentd.control.protocol import (
    MAX_REQUEST_BYTES,
    ErrorReply,
    ListTables,
    ShowTable,
    TableList,
    TableListing,
    WriteResult,
    WriteTable,
    decode_reply,
)
from recentd.errors import BackendError, ControlError

from .as_user import NOBODY, run_as
from .loop import TestLoop


def raw_exchange(path, payload: bytes) -> list[bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(os.fspath(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.splitlines()


def test_requests_and_replies_over_the_socket(daemon):
    with ControlClient(daemon.server.path) as client:
        assert client.call(WriteTable("SSH", b"+1.2.3.4")) == WriteResult(8, 8)
        listing = client.call(ShowTable("SSH"))
        assert isinstance(listing, TableListing)
        assert [e.addr for e in listing.entries] == [0x01020304]
        assert isinstance(client.call(ListTables()), TableList)


def test_pipelined_requests_are_answered_in_order(daemon):
    lines = raw_exchange(
        daemon.server.path,
        b'{"v":1,"type":"WriteTable","name":"SSH","data":"+1.1.1.1"}\n'
        b'{"v":9,"type":"Status"}\n'
        b'{"v":1,"type":"ShowTable","name":"SSH"}\n',
    )
    replies = [decode_reply(line) for line in lines]
    assert replies[0] == WriteResult(8, 8)
    assert isinstance(replies[1], ErrorReply) and "version 9" in replies[1].message
    assert isinstance(replies[2], TableListing)


def test_an_oversized_request_is_refused_and_the_connection_closed(daemon):
    lines = raw_exchange(daemon.server.path, b"x" * (MAX_REQUEST_BYTES + 10))
    assert len(lines) == 1
    assert "longer than" in decode_reply(lines[0]).message


def test_the_peer_credentials_decide_access(daemon):
    # SSH is 0600 root and WEB 0644: a client running as nobody is judged by SO_PEERCRED.
    def as_nobody():
        with ControlClient(daemon.server.path) as client:
            return [
                client.call(ShowTable("SSH")).errno,
                client.call(WriteTable("WEB", b"/")).errno,
                type(client.call(ShowTable("WEB"))).__name__,
            ]

    assert run_as(NOBODY, NOBODY, as_nobody) == ["EACCES", "EACCES", "TableListing"]


def test_a_second_server_on_a_live_socket_is_refused(daemon, service):
    with pytest.raises(BackendError, match="another recentd is listening"):
        ControlServer(daemon.server.path, service)


def test_a_stale_socket_is_replaced(public_dir, service):
    path = public_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(os.fspath(path))
    server = ControlServer(path, service)
    try:
        assert path.stat().st_mode & 0o777 == 0o666
    finally:
        server.close()
    assert not path.exists()


def test_no_daemon_is_one_clear_error(public_dir):
    with pytest.raises(ControlError) as caught:
        ControlClient(public_dir / "none.sock").call(ListTables())
    assert str(caught.value) == (
        f"recentd is not running (no daemon listening on {public_dir / 'none.sock'})"
    )


def test_closing_the_server_closes_connections(public_dir, service):
    loop = TestLoop(public_dir / "c.sock", service).start()
    client = ControlClient(loop.server.path, timeout=5)
    client.call(ListTables())
    loop.stop()
    with pytest.raises(ControlError):
        client.call(ListTables())
    client.close()
