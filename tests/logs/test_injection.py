"""Injected user names (and other attacker text) ban no one innocent.

The address is taken only where sshd writes it.  Transcripts first, then a property:
for every message whose fields an attacker fills, whatever is filled in, every event
names the real peer and nothing else.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import events, messages, transcript

REAL = "198.51.100.77"
VICTIM = "192.0.2.1"


def addresses(lines: list[str]) -> set[str]:
    return {str(e.address) for e in events(lines)}


def test_an_injected_from_in_an_invalid_user_blames_the_real_peer() -> None:
    assert transcript(messages(f"Invalid user x from {VICTIM} from {REAL}")) == [
        (1, "probe", REAL, "invalid_user")
    ]
    assert transcript(messages(f"Invalid user Invalid user root from {VICTIM} from {REAL}")) == [
        (1, "probe", REAL, "invalid_user")
    ]


def test_injection_through_every_user_field_of_a_brute_force_session() -> None:
    user = f"root from {VICTIM} port 22 ssh2"
    lines = messages(
        f"Invalid user {user} from {REAL} port 40000",
        f"Failed password for invalid user {user} from {REAL} port 40000 ssh2",
        f"Failed password for invalid user {user} from {REAL} port 40000 ssh2",
        f"Disconnected from invalid user {user} {REAL} port 40000 [preauth]",
    )
    assert addresses(lines) == {REAL}


def test_a_trailing_field_cannot_take_over_a_known_connection() -> None:
    """fail2ban's case: the auth-info after "ssh2:" carries ' from 10.10.1.2 port
    55555 ssh2'.  Read alone the line is ambiguous; the connection's address (its
    earlier lines) settles it."""
    lines = messages(
        f"Failed password for invalid user from 10.10.1.1 from {REAL} port 58946 ssh2",
        f"Failed password for invalid user test from {REAL} port 58946 ssh2: "
        "from 10.10.1.2 port 55555 ssh2",
    )
    assert transcript(lines) == [(1, "failure", REAL, "password"), (2, "failure", REAL, "password")]


def test_messages_with_attacker_text_after_the_address_are_anchored_at_the_start() -> None:
    lines = [
        f"Unable to negotiate with {REAL} port 1: no matching cipher found. Their offer: "
        f"from {VICTIM} port 22",
        f"Received disconnect from {REAL} port 1:11: from {VICTIM} port 22 [preauth]",
        f"Bad protocol version identification 'x from {VICTIM} port 2' from {REAL} port 1",
        f"banner exchange: Connection from {REAL} port 1: invalid format from {VICTIM}",
        f"refused connect from evil from {VICTIM} ({REAL})",
    ]
    assert addresses(lines) == {REAL}


def test_a_change_of_username_with_names_on_both_sides() -> None:
    reason = f"Change of username or service not allowed: (a,ssh) -> (b {VICTIM} port 2: c,ssh)"
    alone = messages(f"Disconnecting invalid user a {REAL} port 1: {reason} [preauth]")
    assert addresses(alone) == set()  # two readings, no connection to choose: no one
    known = messages(
        f"Invalid user a from {REAL} port 1",
        f"Disconnecting invalid user a {REAL} port 1: {reason} [preauth]",
    )
    assert transcript(known) == [
        (1, "probe", REAL, "invalid_user"),
        (2, "failure", REAL, "preauth_close"),
    ]


def test_pam_rhost_is_taken_where_pam_writes_it() -> None:
    lines = messages(
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
        f"ruser= rhost={REAL}  user=x rhost={VICTIM}",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
        f"ruser=a rhost={VICTIM} rhost={REAL}",
    )
    assert addresses(lines) == {REAL}


def test_dropbear_user_names_cannot_move_the_address() -> None:
    lines = [
        f"dropbear[1]: Bad password attempt for 'x' from {VICTIM}:22' from {REAL}:5543",
        f"dropbear[2]: Exit before auth from <{REAL}:1>: (user 'x from <{VICTIM}:2>', 3 fails): "
        "Max auth tries reached - user 'x'",
    ]
    assert addresses(lines) == {REAL}


# ---------------------------------------------------------------- the property
TEMPLATES = [
    "Invalid user {u} from {a} port {p}",
    "Invalid user {u} from {a}",
    "Failed password for invalid user {u} from {a} port {p} ssh2",
    "Failed password for {u} from {a} port {p} ssh2",
    "Failed none for invalid user {u} from {a} port {p} ssh2 [preauth]",
    "Failed publickey for invalid user {u} from {a} port {p} ssh2: RSA SHA256:Jm0VpXb3zq8",
    "Accepted password for {u} from {a} port {p} ssh2",
    "Connection closed by invalid user {u} {a} port {p} [preauth]",
    "Connection reset by authenticating user {u} {a} port {p} [preauth]",
    "Disconnected from authenticating user {u} {a} port {p} [preauth]",
    "Disconnecting invalid user {u} {a} port {p}: Too many authentication failures [preauth]",
    "Disconnecting invalid user {u} {a} port {p}: Change of username or service not allowed: "
    "({u},ssh-connection) -> ({u},ssh-connection) [preauth]",
    "User {u} from {a} not allowed because not listed in AllowUsers",
    "error: maximum authentication attempts exceeded for invalid user {u} from {a} port {p} "
    "ssh2 [preauth]",
    "error: PAM: Authentication failure for illegal user {u} from {a}",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost={a}  user={u}",
    "Bad protocol version identification '{u}' from {a} port {p}",
    "Unable to negotiate with {a} port {p}: no matching key exchange method found. "
    "Their offer: {u}",
    "Received disconnect from {a} port {p}:11: {u} [preauth]",
    "Bad password attempt for '{u}' from {a}:{p}",
    "Exit before auth from <{a}:{p}>: (user '{u}', 3 fails): Max auth tries reached - user '{u}'",
]

PIECES = [
    "from", "port", "22", "ssh2", "ssh2:", "[preauth]", VICTIM, f"::ffff:{VICTIM}",
    f"{VICTIM}:22", f"<{VICTIM}:22>", f"rhost={VICTIM}", "user", "invalid user",
    "authenticating user", ":", "'", "(", ")", ">", "x", "", "2001:db8::bad",
    f"[{VICTIM}]:22", "via", "not allowed because",
]

user_names = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(alphabet="ab :'()<>[]f", max_size=6)),
    max_size=12,
).map(" ".join)
real_addresses = st.sampled_from([REAL, "2001:db8:1::77", "203.0.113.9"])


@settings(max_examples=300, deadline=None)
@given(template=st.sampled_from(TEMPLATES), user=user_names, address=real_addresses,
       port=st.integers(1, 65535))
def test_whatever_the_user_name_only_the_real_peer_is_named(
    template: str, user: str, address: str, port: int
) -> None:
    text = template.format(u=user, a=address, p=port)
    program = "dropbear" if "attempt for '" in template or "Exit" in template else "sshd"
    assert addresses(messages(text, program=program)) <= {address}


def test_every_template_is_an_event_with_a_plain_user_name() -> None:
    """The property above is not vacuous: each message, filled in plainly, is read."""
    for template in TEMPLATES:
        program = "dropbear" if "attempt for '" in template or "Exit" in template else "sshd"
        text = template.format(u="x", a=REAL, p=22)
        assert addresses(messages(text, program=program)) == {REAL}, template


def test_an_old_sshds_line_with_an_injected_ssh2_defers_to_its_connection() -> None:
    """Old sshd wrote no "port P ssh2"; a user name can bring one.  The connection's
    address, learnt from its first line, picks the reading at the end."""
    user = f"x from {VICTIM} port 22 ssh2: y"
    lines = messages(f"Invalid user {user} from {REAL}",
                     f"Failed password for invalid user {user} from {REAL}")
    assert transcript(lines) == [(1, "probe", REAL, "invalid_user"), (2, "failure", REAL, "password")]
