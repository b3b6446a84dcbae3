"""Never lock out the admin: the address of a live login session survives a flood of
failures from it; the session's end (PAM) or its time (a log) ends the protection."""

from __future__ import annotations

import ipaddress

from recentd.cli.run import protect_admin
from recentd.control.protocol import LoginResult
from recentd.observation import Evidence

from .harness import PolicyHarness

ADMIN = ipaddress.ip_address("10.0.0.9")


def test_the_admins_session_address_survives_a_flood_of_failures(tmp_path):
    h = PolicyHarness(tmp_path)
    assert h.login(ADMIN, "open") == LoginResult("10.0.0.9", "open")
    for _ in range(200):  # a script of his own gone wrong, a NAT full of guessers
        h.line(Evidence.AUTH_FAILURE, ADMIN)
    assert not h.in_list("SSH", ADMIN)  # the log's evidence is ignored, and why is kept
    h.remote_ban(ADMIN)
    h.packet(ADMIN)  # the admin's own rules still run (--set stamps it), never a kernel ban
    assert h.kernel() == []
    assert h.transcript == ["10.0.0.9 ACCEPT"]
    events = h.daemon.policy.history.events(ADMIN)
    # the flood is one event with a count: it does not push the login out of the history
    assert [(e.what, e.count) for e in events] == [
        ("login", 1), ("ignored", 200), ("refused ban", 1)]
    assert events[1].detail == ("failure: allowed: 10.0.0.9: login session (1 open: admin "
                                "(pam sshd (user admin)))")

    h.login(ADMIN, "close")  # the session ended: failures count again
    for _ in range(4):
        h.line(Evidence.AUTH_FAILURE, ADMIN)
    assert h.kernel() == [ADMIN]


def test_a_session_seen_only_in_a_log_lasts_a_day(tmp_path):
    h = PolicyHarness(tmp_path)
    h.line(Evidence.AUTH_SUCCESS, ADMIN, user="alice")
    for _ in range(10):
        h.line(Evidence.AUTH_FAILURE, ADMIN)
    assert h.kernel() == []
    h.step(86400)
    h.timer()
    for _ in range(4):
        h.line(Evidence.AUTH_FAILURE, ADMIN)
    assert h.kernel() == [ADMIN]


def test_recentd_run_says_whether_the_admin_is_protected(tmp_path):
    h = PolicyHarness(tmp_path)
    environ = {"SSH_CONNECTION": "10.0.0.9 50022 10.0.0.1 22"}
    assert protect_admin(h.daemon, environ) == (
        "admin address 10.0.0.9 is now protected: 10.0.0.9: login session (the admin's "
        "session that started recentd (SSH_CONNECTION))")
    assert protect_admin(h.daemon, environ).startswith("admin address 10.0.0.9 is protected:")
    assert protect_admin(h.daemon, {}) == (
        "admin address: none (not started over SSH: no SSH_CONNECTION)")
    for _ in range(10):
        h.line(Evidence.AUTH_FAILURE, ADMIN)
    assert h.kernel() == []
