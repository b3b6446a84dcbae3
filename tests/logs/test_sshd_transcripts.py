"""Counting transcripts: sshd lines of one or more connections in, events out.

Each expectation is (line, outcome, address, kind).  The rule under test is the
generator's ``attempts`` policy: every Failed line counts; a pre-auth connection
with a user and no Failed line counts once, at its close; the rest is context.
"""

from __future__ import annotations

from recentd.logs import ClassicYear, Outcome, RecordParser, SshdParser, UserCategory

from .helpers import events, messages, transcript

A = "203.0.113.5"


def test_each_failed_line_counts_and_the_rest_is_context() -> None:
    lines = messages(
        f"Invalid user oracle from {A} port 51240",
        "pam_unix(sshd:auth): check pass; user unknown",
        f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={A}",
        f"Failed password for invalid user oracle from {A} port 51240 ssh2",
        f"Failed password for invalid user oracle from {A} port 51240 ssh2",
        f"Received disconnect from {A} port 51240:11: Bye Bye [preauth]",
        f"Disconnected from invalid user oracle {A} port 51240 [preauth]",
    )
    assert transcript(lines) == [
        (1, "probe", A, "invalid_user"),
        (3, "probe", A, "pam"),
        (4, "failure", A, "password"),
        (5, "failure", A, "password"),
        (6, "probe", A, "disconnect"),
    ]


def test_a_preauth_close_with_a_user_and_no_failed_line_counts_once() -> None:
    lines = messages(
        f"Invalid user test from {A} port 40000",
        f"Connection closed by invalid user test {A} port 40000 [preauth]",
    ) + messages(f"Disconnected from authenticating user root {A} port 40002 [preauth]", pid=4243)
    assert transcript(lines) == [
        (1, "probe", A, "invalid_user"),
        (2, "failure", A, "preauth_close"),
        (3, "failure", A, "preauth_close"),
    ]


def test_a_close_without_a_user_is_a_probe_and_counts_nothing() -> None:
    lines = messages(f"Connection closed by {A} port 40112 [preauth]") + messages(
        f"Connection reset by {A} port 40113 [preauth]", pid=9
    )
    assert transcript(lines) == [(1, "probe", A, "preauth_close"), (2, "probe", A, "preauth_close")]


def test_logins_are_successes_and_their_sessions_close_quietly() -> None:
    lines = messages(
        f"Failed password for alice from {A} port 50022 ssh2",
        f"Accepted password for alice from {A} port 50022 ssh2",
        "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        f"Received disconnect from {A} port 50022:11: disconnected by user",
        f"Disconnected from user alice {A} port 50022",
    )
    assert transcript(lines) == [(1, "failure", A, "password"), (2, "success", A, "password")]


def test_maximum_attempts_counts_once_when_nothing_was_counted() -> None:
    key_only = messages(
        f"error: maximum authentication attempts exceeded for root from {A} port 51260 ssh2 [preauth]",
        f"Disconnecting authenticating user root {A} port 51260: Too many authentication failures [preauth]",
    )
    assert transcript(key_only) == [(1, "failure", A, "max_attempts")]
    after_failures = messages(
        f"Failed password for root from {A} port 51260 ssh2",
        f"error: maximum authentication attempts exceeded for root from {A} port 51260 ssh2 [preauth]",
        f"Disconnecting authenticating user root {A} port 51260: Too many authentication failures [preauth]",
    )
    assert transcript(after_failures) == [
        (1, "failure", A, "password"),
        (2, "probe", A, "max_attempts"),
    ]


def test_a_count_without_an_address_waits_for_its_connections_address() -> None:
    lines = messages(
        "Disconnecting: Too many authentication failures for root [preauth]",
        f"Connection closed by {A} [preauth]",
    )
    assert transcript(lines) == [(2, "failure", A, "max_attempts")]
    # another process's address never completes it
    other = messages("Disconnecting: Too many authentication failures for root [preauth]") + (
        messages(f"Connection closed by {A} [preauth]", pid=1)
    )
    assert transcript(other) == [(2, "probe", A, "preauth_close")]


def test_lines_without_an_address_take_their_connections() -> None:
    lines = messages(
        f"Connection from {A} port 51353 on 192.0.2.10 port 22",
        "error: kex_exchange_identification: Connection closed by remote host",
        f"Connection closed by {A} port 51353",
    )
    assert transcript(lines) == [(2, "probe", A, "banner"), (3, "probe", A, "preauth_close")]


def test_penalties_count_and_their_drop_lines_do_not() -> None:
    lines = messages(
        f"srclimit_penalise: ipv4: new {A}/32 active penalty of 30 seconds for penalty: "
        "failed authentication",
        f"srclimit_penalise: {A}/32: activating ipv4 penalty of 45 seconds for penalty: "
        "failed authentication",
        f"drop connection #0 from [{A}]:51290 on [192.0.2.10]:22 penalty: failed authentication",
        "srclimit_penalise: ipv4: new 203.0.113.0/24 active penalty of 30 seconds for x",
        "srclimit_penalise: ipv6: new 2001:db8::1/128 deferred penalty of 5 seconds for x",
        pid=812,
    )
    assert transcript(lines) == [
        (1, "failure", A, "penalty"),
        (2, "failure", A, "penalty"),
        (3, "probe", A, "penalty_drop"),
        (5, "failure", "2001:db8::1", "penalty"),
    ]


def test_sshd_session_and_dropbear_are_sshd_other_programs_are_not() -> None:
    lines = [
        f"Jul  3 14:59:17 h sshd-session[1571]: Failed password for root from {A} port 5 ssh2",
        f"Jul  3 14:59:18 h dropbear[4092]: Bad password attempt for 'root' from {A}:5543",
        "Jul  3 14:59:19 h dropbear[1252]: Login attempt for nonexistent user from "
        "::ffff:198.51.100.215:60495",
        f"Jul  3 14:59:20 h myapp[7]: Failed password for root from {A} port 5 ssh2",
    ]
    assert transcript(lines) == [
        (1, "failure", A, "password"),
        (2, "failure", A, "password"),
        (3, "failure", "198.51.100.215", "invalid_user"),
    ]


def test_addresses_are_canonical() -> None:
    lines = [
        "Invalid user x from ::ffff:192.0.2.7 port 1",
        "Invalid user x from 2001:DB8:0:0:0:0:0:A11%enp3s0 port 1",
        "Invalid user x from example.com port 1",
        "Invalid user x from 192.030.0.6 port 1",
    ]
    assert [(n, address) for n, _, address, _ in transcript(lines)] == [
        (1, "192.0.2.7"),
        (2, "2001:db8::a11"),
    ]


def test_events_carry_user_category_time_and_origin() -> None:
    lines = messages(
        f"Failed password for root from {A} port 1 ssh2",
        f"Failed password for invalid user admin from {A} port 1 ssh2",
        f"Failed password for alice from {A} port 1 ssh2",
    ) + messages(f"Connection closed by {A} port 2 [preauth]", pid=7)
    found = events(lines, year=2025)
    assert [e.category for e in found] == [
        UserCategory.ROOT, UserCategory.INVALID, UserCategory.VALID, UserCategory.UNKNOWN
    ]
    first = found[0]
    assert (first.service, first.pid, first.host, first.family, first.user) == (
        "sshd", 4242, "web1", 4, "root")
    assert first.time == 1_741_947_720 * 10**9  # 2025-03-14T10:22:00Z


def test_memory_is_bounded_and_the_oldest_connection_is_forgotten() -> None:
    parser = SshdParser(max_sessions=2)
    records = RecordParser(ClassicYear(year=2025))
    lines = (
        messages(f"Failed password for invalid user x from {A} port 1 ssh2", pid=1)
        + messages(f"Invalid user y from {A} port 2", pid=2)
        + messages(f"Invalid user z from {A} port 3", pid=3)
        + messages(f"Disconnected from invalid user x {A} port 1 [preauth]", pid=1)
    )
    outcomes = []
    for number, text in enumerate(lines, 1):
        outcomes += [e.outcome for e in parser.feed(records.parse(text, number))]
        assert parser.open_sessions <= 2
    # pid 1 was forgotten: its close is a new connection's, which names a user
    assert outcomes.count(Outcome.FAILURE) == 2
