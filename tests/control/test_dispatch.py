"""dispatch() as transcripts: a request in, the reply out, no socket involved."""

from __future__ import annotations

import errno

import pytest

from recentd.control import ROOT, Context, Peer
from recentd.control.dispatch import dispatch
from recentd.control.protocol import (
    Entry,
    ErrorReply,
    ListTables,
    ParamsResult,
    SetParams,
    ShowTable,
    Status,
    StatusReply,
    TableInfo,
    TableList,
    TableListing,
    WriteResult,
    WriteTable,
)
from recentd.errors import StateFileError

from .conftest import NOW, WALL_NS

NOBODY = Peer(pid=1, uid=65534, gid=65534)
OWNER = Peer(pid=1, uid=1000, gid=1000)


def ask(service, request, peer=ROOT):
    return dispatch(request, Context(service, peer))


def test_list_tables(service):
    assert ask(service, ListTables()) == TableList(
        [
            TableInfo("SSH", 0, 32, 100, 0, 0o600, 0, 0),
            TableInfo("WEB", 0, 32, 100, 0, 0o644, 0, 0),
        ]
    )


def test_write_then_show(service):
    assert ask(service, WriteTable("SSH", b"+1.2.3.4\n")) == WriteResult(9, 9)
    assert ask(service, WriteTable("SSH", b"+fd77::2")) == WriteResult(8, 8)
    assert ask(service, ShowTable("SSH")) == TableListing(
        "SSH",
        [
            Entry(4, 0x01020304, 0, 1, [NOW], NOW),
            Entry(6, 0xFD77 << 112 | 2, 0, 1, [NOW], NOW),
        ],
        hz=250, now_ticks=NOW, wall_ns=WALL_NS,
    )


# Spec §9.15: each write on a fresh file descriptor (a fresh request).
EINVAL_WRITES = [
    b"x", b"clear", b"+1.2.3", b"+1.2.3.4 ", b"+ 1.2.3.4", b"+1.2.3.256", b"+1.2.3.4.5",
    b"+0x1.2.3.4", b"+fd77::zz", b"+", b"+1.2.3.9\nfd77::1",
]  # fmt: skip


@pytest.mark.parametrize("data", EINVAL_WRITES)
def test_refused_writes_come_back_with_errno(service, data):
    reply = ask(service, WriteTable("SSH", data))
    assert isinstance(reply, ErrorReply)
    assert (reply.kind, reply.errno) == ("ProcWriteError", "EINVAL")
    assert len(service.tables["SSH"]) == 0


@pytest.mark.parametrize(
    ("data", "written"),
    [
        (b"+1.2.3.4", 8), (b"+1.2.3.5\n", 9), (b"+001.002.003.006", 16),
        (b"-9.9.9.9", 8), (b"/garbage", 8), (b"", 0), (b"+1.2.3.4" + b"\n" * 65, 47),
    ],
)  # fmt: skip
def test_accepted_writes_return_what_write2_returns(service, data, written):
    reply = ask(service, WriteTable("SSH", data))
    assert isinstance(reply, WriteResult)
    assert reply.written == written


def test_leading_zeros_store_the_decimal_address(service):
    ask(service, WriteTable("SSH", b"+001.002.003.006"))
    assert [e.addr for e in service.tables["SSH"]] == [0x01020306]


def test_only_the_first_command_of_a_write_is_processed(service):
    assert ask(service, WriteTable("SSH", b"+1.2.3.7\n+1.2.3.8\n")) == WriteResult(18, 18)
    assert [e.addr for e in service.tables["SSH"]] == [0x01020307]


def test_a_second_command_at_a_nonzero_offset_is_espipe(service):
    reply = ask(service, WriteTable("SSH", b"+1.2.3.4", offset=9))
    assert isinstance(reply, ErrorReply)
    assert reply.errno == "ESPIPE"


def test_flush_does_not_move_the_offset(service):
    assert ask(service, WriteTable("SSH", b"/")) == WriteResult(1, 0)


def test_unknown_table_is_enoent(service):
    reply = ask(service, ShowTable("NOPE"))
    assert reply == ErrorReply("ProcWriteError", "no table named 'NOPE'", "ENOENT")


def test_read_and_write_follow_ip_list_perms(service):
    service.tables.configure("SSH", ip_list_uid=1000, ip_list_perms=0o640)
    assert isinstance(ask(service, ShowTable("SSH"), OWNER), TableListing)
    assert isinstance(ask(service, WriteTable("SSH", b"+1.1.1.1"), OWNER), WriteResult)
    denied = ask(service, ShowTable("SSH"), NOBODY)
    assert denied == ErrorReply(
        "ProcWriteError", "uid 65534 gid 65534 may not read table 'SSH'", "EACCES"
    )
    assert ask(service, WriteTable("SSH", b"/"), NOBODY).errno == "EACCES"
    # 0644: others read but do not write.
    assert isinstance(ask(service, ShowTable("WEB"), NOBODY), TableListing)
    assert ask(service, WriteTable("WEB", b"/"), NOBODY).errno == "EACCES"


def test_group_class_uses_the_group_bits(service):
    service.tables.configure("SSH", ip_list_gid=50, ip_list_perms=0o620)
    member = Peer(pid=1, uid=1234, gid=50)
    assert isinstance(ask(service, WriteTable("SSH", b"+1.1.1.1"), member), WriteResult)
    assert ask(service, ShowTable("SSH"), member).errno == "EACCES"


def test_root_is_never_refused(service):
    service.tables.configure("SSH", ip_list_perms=0)
    assert isinstance(ask(service, ShowTable("SSH")), TableListing)


def test_an_acknowledged_write_was_made_durable_first(service):
    calls = []
    service.after_write = lambda: calls.append(len(service.tables["SSH"]))
    ask(service, WriteTable("SSH", b"+1.1.1.1"))
    assert calls == [1]


def test_a_write_that_could_not_be_saved_is_reported(service):
    def fail():
        raise StateFileError("cannot sync: No space left on device", path="/var/lib/recentd")

    service.after_write = fail
    reply = ask(service, WriteTable("SSH", b"+1.1.1.1"))
    assert isinstance(reply, ErrorReply)
    assert reply.errno == "EIO"
    assert "not saved" in reply.message


def test_status(service):
    service.tables["WEB"].add(4, 1, NOW)
    service.adapters["nfqueue"] = "ok"
    reply = ask(service, Status())
    assert isinstance(reply, StatusReply)
    assert (reply.tables, reply.entries, reply.hz, reply.now_ticks) == (2, 1, 250, NOW)
    assert reply.adapters == {"nfqueue": "ok"}


def test_set_params_is_root_only_and_validated(service):
    assert ask(service, SetParams("SSH", {"ip_list_perms": 0o640})) == ParamsResult(
        "SSH",
        {"ip_list_tot": 100, "ip_pkt_list_tot": 0, "ip_list_perms": 0o640,
         "ip_list_uid": 0, "ip_list_gid": 0},
    )  # fmt: skip
    assert ask(service, SetParams("SSH", {"ip_list_tot": 5}), OWNER).errno == "EPERM"
    reply = ask(service, SetParams("SSH", {"ip_list_tot": 0}))
    assert reply == ErrorReply("ConfigError", "ip_list_tot: must be between 1 and 4294967295")
    assert ask(service, SetParams("SSH", {"bogus": 1})).kind == "ConfigError"


def test_an_unknown_request_fails_loudly(service):
    class Reboot:
        pass

    reply = ask(service, Reboot())
    assert reply == ErrorReply("ProtocolError", "unknown request Reboot")


def test_errno_constants_are_real():
    assert errno.errorcode[errno.ESPIPE] == "ESPIPE"
