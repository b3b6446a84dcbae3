"""The policy's pure parts, one transcript each: durations, the allow list, the history
(bounded, persisted), the host-address reader's parsing, a login's ``+``/``-``."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest

from recentd.control.protocol import Allow, LoginResult
from recentd.errors import StateFileError
from recentd.observation import Evidence, Observation, Origin
from recentd.policy.allow import CONFIG, Allowed, AllowList, admin_address
from recentd.policy.durations import format_duration, parse_duration
from recentd.policy.history import Event, History
from recentd.policy.hostaddrs import parse_ip_addr
from recentd.policy.settings import ListPolicy, PolicyConfig
from recentd.policy.store import load_history, save_history

from .harness import PolicyHarness

A = ipaddress.ip_address("10.0.0.2")
PAM = Origin("pam", "sshd", "user alice")


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("1w", 604800), (90, 90),
    ("0", 0),
])  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["1d12h", "-5s", "7 days", True, -1, 1.5, ""])
def test_bad_durations_name_the_value(bad):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)


def test_durations_print_in_their_largest_unit():
    assert [format_duration(s) for s in (604800, 86400, 90, 3600, 0)] == [
        "1w", "1d", "90s", "1h", "0s"]


def test_the_allow_list_as_a_transcript():
    allow = AllowList([Allowed(CONFIG, ipaddress.ip_network("192.0.2.0/24"), "file:3")],
                      log_session_ticks=100)  # fmt: skip
    assert str(allow.allows(ipaddress.ip_address("192.0.2.9"), 0)) == "192.0.2.0/24: config (file:3)"
    assert allow.allows(A, 0) is None
    opened = Observation(Evidence.LOGIN, A, 0, PAM, user="alice", kind="open")
    allow.observe(opened, 0)
    allow.observe(Observation(Evidence.LOGIN, A, 0, PAM, user="bob", kind="open"), 0)
    assert str(allow.allows(A, 10**9)) == (
        "10.0.0.2: login session (2 open: alice, bob (pam sshd (user alice)))")
    allow.observe(Observation(Evidence.LOGIN, A, 0, PAM, user="alice", kind="close"), 5)
    assert allow.allows(A, 5) is not None  # bob is still logged in
    allow.observe(Observation(Evidence.LOGIN, A, 0, PAM, user="bob", kind="close"), 6)
    assert allow.allows(A, 6) is None
    seen = Origin("file", "/var/log/auth.log", "line 9")
    allow.observe(Observation(Evidence.AUTH_SUCCESS, A, 0, seen, user="carol"), 50)
    assert allow.allows(A, 149) is not None and allow.allows(A, 150) is None
    assert [str(e) for e in allow.expire(150)] == [
        "10.0.0.2: login session (login of carol seen in file /var/log/auth.log (line 9))"]
    allow.set_host([ipaddress.ip_address("fd77::1")])
    assert str(allow.allows(ipaddress.ip_address("fd77::1"), 0)) == "fd77::1: host address"


def test_the_admins_address_comes_from_ssh_connection_only():
    assert admin_address({"SSH_CONNECTION": "::ffff:192.0.2.7 5022 192.0.2.1 22"}) == (
        ipaddress.ip_address("192.0.2.7"))
    assert admin_address({"SSH_CONNECTION": "host.example 5022 192.0.2.1 22"}) is None
    assert admin_address({}) is None


def test_the_history_is_bounded_and_survives_a_restart(tmp_path):
    history = History(per_address=3, addresses=2)
    b, c = ipaddress.ip_address("10.0.0.3"), ipaddress.ip_address("10.0.0.4")
    for i in range(5):
        history.record(A, Event(i, "ban", "SSH", detail=f"#{i}"), ban=True)
    history.record(b, Event(9, "failure", "SSH", "+", "line 1"))
    history.record(b, Event(10, "failure", "SSH", "+", "line 2"))  # alike: one event, x2
    assert [e.detail for e in history.events(A)] == ["#2", "#3", "#4"]
    assert history.bans(A) == 5  # counted apart from the ring
    assert [(e.count, e.since_ns, e.origin) for e in history.events(b)] == [(2, 9, "line 2")]
    history.record(c, Event(11, "control"))  # a third address: the least recent goes
    assert history.events(A) == [] and len(history) == 2
    save_history(tmp_path, history)
    restored = History(per_address=3, addresses=2)
    assert load_history(tmp_path, restored) == []  # no grants saved
    assert restored.events(b) == history.events(b)


def test_a_damaged_history_file_is_named_never_guessed_at(tmp_path):
    (tmp_path / "policy.json").write_text(json.dumps(
        {"format": "recentd-policy", "version": 1, "history": {"addresses": [{"addr": "x"}]}}))
    with pytest.raises(StateFileError, match=r"policy\.json: not a recentd policy history"):
        load_history(tmp_path, History())
    assert load_history(tmp_path / "none", History()) is None


def test_host_addresses_from_ip_j_addr():
    sample = json.dumps([
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"},
                                       {"family": "inet6", "local": "::1"}]},
        {"ifname": "eth0", "addr_info": [{"family": "inet6", "local": "fe80::1%eth0"}]},
        {"ifname": "down0"},
    ])  # fmt: skip
    assert [str(a) for a in parse_ip_addr(sample)] == ["127.0.0.1", "::1", "fe80::1"]


def test_a_login_forgets_per_list_and_says_so(tmp_path, caplog):
    h = PolicyHarness(tmp_path, PolicyConfig(lists=(ListPolicy("SSH", login="-"),)))
    h.line(Evidence.AUTH_FAILURE, A)
    assert h.in_list("SSH", A)
    with caplog.at_level(logging.WARNING):
        assert h.login(A, "open", user="alice") == LoginResult("10.0.0.2", "open")
    assert not h.in_list("SSH", A)
    assert caplog.messages[-1] == (
        "login of alice from 10.0.0.2 (pam sshd (user alice)) removed it from SSH: its "
        "record there is forgotten")


def test_a_timed_grant_survives_a_restart_and_ends_on_time(tmp_path):
    state = tmp_path / "state"
    h = PolicyHarness(tmp_path, state_dir=state)
    h.ask(Allow("192.0.2.0/24", 3600))
    h.ask(Allow("198.51.100.7"))  # until the daemon stops: not kept
    h.timer()
    h.stop()
    h.step(1800)
    h2 = PolicyHarness(tmp_path, state_dir=state, clock=h.clock)
    now = h2.clock.now_ticks()
    assert str(h2.daemon.policy.allows(ipaddress.ip_address("192.0.2.9"), now)) == (
        "192.0.2.0/24: allowed by ctl (recentd ctl allow)")
    assert h2.daemon.policy.allows(ipaddress.ip_address("198.51.100.7"), now) is None
    h2.step(1800)
    assert h2.daemon.policy.allows(ipaddress.ip_address("192.0.2.9"),
                                   h2.clock.now_ticks()) is None  # fmt: skip
    h2.stop()
