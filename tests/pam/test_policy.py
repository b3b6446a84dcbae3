"""What a login does to the lists (pam_recent's +LIST / -LIST), as transcripts."""

from __future__ import annotations

import ipaddress

import pytest

from recentd.errors import ConfigError
from recentd.observation import Action, Evidence, Observation, Origin, Route, TableWrite
from recentd.pam.policy import Forget, apply_login, login_routes
from recentd.recent import Command, RecentMatch, RecentTables

ADMIN = ipaddress.ip_address("192.0.2.7")
ORIGIN = Origin("pam", "sshd", "user alice")


def tables(*names: str) -> RecentTables:
    registry = RecentTables(hz=250)
    for name in names:
        registry.acquire(RecentMatch(Command.SET, name=name))
    return registry


def login(event: str = "open", address=ADMIN) -> Observation:
    return Observation(Evidence.LOGIN, address, 1_000, ORIGIN, user="alice", kind=event)


def test_routes_from_the_config_mapping():
    assert login_routes({"SSH": "-", "GOOD": "+"}) == (
        Route(Evidence.LOGIN, "SSH", Action.REMOVE, kind="open"),
        Route(Evidence.LOGIN, "GOOD", Action.ADD, kind="open"),
    )


@pytest.mark.parametrize("sign", ["", "+-", "add", "remove", 1, None])
def test_an_action_other_than_plus_or_minus_is_a_config_error(sign):
    with pytest.raises(ConfigError, match="SSH") as caught:
        login_routes({"SSH": sign}, source="/etc/recentd/recentd.toml")
    assert caught.value.key == "login.SSH"


def test_a_list_needs_a_name():
    with pytest.raises(ConfigError, match="name"):
        login_routes({"": "-"})


def test_minus_list_forgets_the_failures_and_says_so():
    registry = tables("SSH")
    registry["SSH"].add(4, int(ADMIN), 10)  # two failures counted against the address
    registry["SSH"].add(4, int(ADMIN), 20)
    effect = apply_login(registry, login_routes({"SSH": "-"}), login(), 30)
    assert effect.writes == (TableWrite("SSH", Action.REMOVE, ADMIN, changed=True),)
    assert effect.forgets == (Forget("SSH", ADMIN, "alice", ORIGIN, 1_000),)
    assert str(effect.forgets[0]) == (
        "login of alice from 192.0.2.7 (pam sshd (user alice)) removed it from SSH: "
        "its record there is forgotten"
    )
    assert len(registry["SSH"]) == 0


def test_minus_list_of_an_address_it_does_not_hold_forgets_nothing():
    effect = apply_login(tables("SSH"), login_routes({"SSH": "-"}), login(), 30)
    assert effect.writes == (TableWrite("SSH", Action.REMOVE, ADMIN, changed=False),)
    assert effect.forgets == ()


def test_plus_list_adds_the_address():
    registry = tables("GOOD")
    effect = apply_login(registry, login_routes({"GOOD": "+"}), login(), 30)
    assert effect.writes == (TableWrite("GOOD", Action.ADD, ADMIN),)
    assert effect.forgets == ()
    assert [entry.addr for entry in registry["GOOD"]] == [int(ADMIN)]


def test_a_session_closing_adds_and_removes_nothing():
    registry = tables("SSH", "GOOD")
    registry["SSH"].add(4, int(ADMIN), 10)
    effect = apply_login(registry, login_routes({"SSH": "-", "GOOD": "+"}), login("close"), 30)
    assert effect.writes == () and effect.forgets == ()
    assert len(registry["SSH"]) == 1 and len(registry["GOOD"]) == 0


def test_both_at_once_in_config_order():
    registry = tables("SSH", "GOOD")
    registry["SSH"].add(4, int(ADMIN), 10)
    effect = apply_login(registry, login_routes({"GOOD": "+", "SSH": "-"}), login(), 30)
    assert [(w.table, w.action) for w in effect.writes] == [
        ("GOOD", Action.ADD),
        ("SSH", Action.REMOVE),
    ]
    assert [f.table for f in effect.forgets] == ["SSH"]


def test_a_list_no_rule_holds_is_not_written():
    effect = apply_login(tables(), login_routes({"SSH": "-"}), login(), 30)
    assert effect.writes == () and effect.forgets == ()
