"""Spec §3 and §9.17: validation with iptables 1.8.9's words, and rendering as it prints."""

from __future__ import annotations

import pytest

from recentd.errors import RecentOptionError
from recentd.recent import check_recent, render_recent_print, render_recent_save

from .script import match

USERSPACE_ERRORS = {
    "--name SSH": "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'",
    "--set --rcheck": 'recent: option "--set" cannot be used together with "--rcheck".',
    "--set --set": 'recent: option "--set" can only be used once.',
    "! --rcheck ! --rcheck": 'recent: option "--rcheck" can only be used once.',
    "--set --rttl": 'recent: option "--rttl" cannot be used together with "--set".',
    "--rttl --remove": 'recent: option "--rttl" cannot be used together with "--remove".',
    "--rcheck --reap": 'recent: option "--reap" also requires "--seconds".',
    "--rcheck --seconds 0": 'recent: bad value for option "--seconds", or out of range (1-4294967295).',
    "--rcheck --seconds -1": 'recent: bad value for option "--seconds", or out of range (1-4294967295).',
    "--rcheck --seconds 4294967296": 'recent: bad value for option "--seconds", or out of range (1-4294967295).',
    "--rcheck --hitcount x": 'recent: bad value for option "--hitcount", or out of range (0-4294967295).',
    "--rcheck ! --seconds 5": 'recent: option "--seconds" cannot be inverted.',
    "--rcheck --mask 10.0.0.0/24": "getaddrinfo: Name or service not known",
}


@pytest.mark.parametrize(("text", "message"), USERSPACE_ERRORS.items())
def test_userspace_errors_use_iptables_words(text: str, message: str) -> None:
    with pytest.raises(RecentOptionError) as caught:
        match(text)
    assert caught.value.message == message
    assert caught.value.origin == "iptables"


@pytest.mark.parametrize(
    "text",
    [
        "--set --seconds 10",
        "--set --hitcount 10",
        "--remove --seconds 10 --reap",
        "--rcheck --hitcount 65536",
        "--set --name .",
        "--set --name ..",
        "--set --name a/b",
        "--set --name ''",
    ],
)
def test_kernel_rejections(text: str) -> None:
    rule = match(text)
    with pytest.raises(RecentOptionError) as caught:
        check_recent(rule)
    assert caught.value.origin == "kernel"


def test_kernel_accepts_set_with_hitcount_zero_and_hitcount_65535() -> None:
    check_recent(match("--set --hitcount 0"))
    check_recent(match("--rcheck --hitcount 65535"))


def test_hitcount_limit_message() -> None:
    with pytest.raises(RecentOptionError) as caught:
        check_recent(match("--rcheck --hitcount 65536"))
    assert (
        caught.value.message == "xt_recent: hitcount (65536) is larger than allowed maximum (65535)"
    )


def test_values_are_read_like_strtoul_base_0() -> None:
    assert match("--rcheck --seconds 0x3c").seconds == 60
    assert match("--rcheck --seconds 010").seconds == 8
    assert match("--rcheck --seconds +5").seconds == 5


def test_name_is_cut_to_199_characters_and_rsource_rdest_last_wins() -> None:
    assert len(match("--set --name " + "n" * 250).name) == 199
    assert match("--set --rdest --rsource").side.value == "source"
    assert match("--set --rsource --rdest").side.value == "dest"


def test_mask_is_a_host_in_the_rules_family() -> None:
    assert match("--set --mask 24").mask == 24 << 96  # inet_aton: 0.0.0.24, other 12 bytes 0
    assert match("--set --mask localhost").mask >> 96 == 0x7F000001
    assert match("--set --mask ffff:ffff:ffff:ffff::", family=6).mask == ((1 << 64) - 1) << 64


RENDERED = [
    (
        "--rcheck --seconds 60 --hitcount 4 --name SSH",
        4,
        " recent: CHECK seconds: 60 hit_count: 4 name: SSH side: source mask: 255.255.255.255",
        " --rcheck --seconds 60 --hitcount 4 --name SSH --mask 255.255.255.255 --rsource",
    ),
    (
        "! --update --seconds 60 --reap --hitcount 4 --rttl --name SSH --rdest",
        4,
        " ! recent: UPDATE seconds: 60 reap hit_count: 4 TTL-Match name: SSH side: dest"
        " mask: 255.255.255.255",
        " ! --update --seconds 60 --reap --hitcount 4 --rttl --name SSH --mask 255.255.255.255 --rdest",
    ),
    (
        "! --set",
        4,
        " ! recent: SET name: DEFAULT side: source mask: 255.255.255.255",
        " ! --set --name DEFAULT --mask 255.255.255.255 --rsource",
    ),
    (
        "--rcheck --seconds 60 --hitcount 4 --name SSH",
        6,
        " recent: CHECK seconds: 60 hit_count: 4 name: SSH side: source"
        " mask: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        " --rcheck --seconds 60 --hitcount 4 --name SSH --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        " --rsource",
    ),
    (
        "--rcheck --seconds 4294967295 --name X",
        4,
        " recent: CHECK seconds: -1 name: X side: source mask: 255.255.255.255",
        " --rcheck --seconds -1 --name X --mask 255.255.255.255 --rsource",
    ),
    (
        "--set --hitcount 0 --name X",
        4,
        " recent: SET name: X side: source mask: 255.255.255.255",
        " --set --name X --mask 255.255.255.255 --rsource",
    ),
    (
        "--set --mask ffff:ffff:ffff:ffff:: --name X",
        6,
        " recent: SET name: X side: source mask: ffff:ffff:ffff:ffff::",
        " --set --name X --mask ffff:ffff:ffff:ffff:: --rsource",
    ),
]


@pytest.mark.parametrize(("text", "family", "printed", "saved"), RENDERED)
def test_rendering_is_iptables_byte_for_byte(
    text: str, family: int, printed: str, saved: str
) -> None:
    rule = match(text, family)
    assert render_recent_print(rule, family) == printed
    assert render_recent_save(rule, family) == saved
