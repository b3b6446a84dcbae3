"""The Login request: a PAM session event in, an Observation to the daemon and a reply out."""

from __future__ import annotations

import ipaddress

import pytest

from recentd.control import ROOT, Context, Peer
from recentd.control.dispatch import dispatch
from recentd.control.protocol import (
    ErrorReply,
    Login,
    LoginResult,
    ProtocolError,
    decode_reply,
    decode_request,
    encode,
)
from recentd.errors import BackendError
from recentd.observation import Evidence, Observation, Origin

from .conftest import WALL_NS

ALICE = Peer(pid=1, uid=1000, gid=1000)


def ask(service, request, peer=ROOT):
    return dispatch(request, Context(service, peer))


@pytest.fixture
def seen(service):
    observations: list[Observation] = []
    service.observe = observations.append
    return observations


def test_a_login_on_the_wire():
    line = encode(Login("192.0.2.7", "alice", "sshd", "open", "ssh"))
    assert line == (
        b'{"v":1,"type":"Login","addr":"192.0.2.7","user":"alice","service":"sshd",'
        b'"event":"open","tty":"ssh"}\n'
    )
    assert decode_request(line) == Login("192.0.2.7", "alice", "sshd", "open", "ssh")
    reply = LoginResult("192.0.2.7", "open")
    assert decode_reply(encode(reply)) == reply


def test_a_login_becomes_an_observation(service, seen):
    assert ask(service, Login("192.0.2.7", "alice", "sshd", "open", "ssh")) == LoginResult(
        "192.0.2.7", "open"
    )
    assert seen == [
        Observation(
            Evidence.LOGIN, ipaddress.ip_address("192.0.2.7"), WALL_NS,
            Origin("pam", "sshd", "user alice"), user="alice", kind="open", detail="tty ssh",
        )
    ]  # fmt: skip


def test_a_session_closing_is_told_too(service, seen):
    assert ask(service, Login("2001:db8::7", "root", "sshd", "close")) == LoginResult(
        "2001:db8::7", "close"
    )
    assert [(o.kind, o.detail) for o in seen] == [("close", "")]


def test_the_address_is_taken_in_its_one_form(service, seen):
    assert ask(service, Login("::ffff:192.0.2.7", "alice", "sshd", "open")) == LoginResult(
        "192.0.2.7", "open"
    )
    assert seen[0].address == ipaddress.ip_address("192.0.2.7")


def test_without_a_daemon_callback_the_login_is_still_checked_and_acknowledged(service):
    assert ask(service, Login("192.0.2.7", "alice", "sshd", "open")) == LoginResult(
        "192.0.2.7", "open"
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Login("host.example.org", "alice", "sshd", "open"), "not an IP address"),
        (Login("", "alice", "sshd", "open"), "not an IP address"),
        (Login("192.0.2.7", "alice", "sshd", "auth"), "not open or close"),
        (Login("192.0.2.7", "a" * 257, "sshd", "open"), "Login.user: longer than 256"),
        (Login("192.0.2.7", "alice", "s" * 257, "open"), "Login.service"),
        (Login("192.0.2.7", "alice", "sshd", "open", "t" * 257), "Login.tty"),
    ],
)
def test_invalid_logins_are_refused_with_the_reason(service, seen, request_, message):
    reply = ask(service, request_)
    assert isinstance(reply, ErrorReply) and reply.kind == "ControlError"
    assert message in reply.message
    assert seen == []


def test_only_root_may_report_a_login(service, seen):
    reply = ask(service, Login("192.0.2.7", "alice", "sshd", "open"), peer=ALICE)
    assert reply == ErrorReply("ControlError", "only root may report logins (uid 1000)")
    assert seen == []


def test_a_failing_daemon_callback_is_a_refusal_not_a_crash(service):
    def broken(observation):
        raise BackendError("journal full", backend="store")

    service.observe = broken
    reply = ask(service, Login("192.0.2.7", "alice", "sshd", "open"))
    assert isinstance(reply, ErrorReply)
    assert reply.message.startswith("login seen but not applied: ")


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":1,"type":"Login","addr":"192.0.2.7","user":"alice","service":"sshd"}',
        b'{"v":1,"type":"Login","addr":7,"user":"alice","service":"sshd","event":"open"}',
        b'{"v":1,"type":"Login","addr":"192.0.2.7","user":"a","service":"s","event":"open","x":1}',
    ],
)
def test_malformed_login_lines_are_protocol_errors(line):
    with pytest.raises(ProtocolError, match="Login"):
        decode_request(line)
