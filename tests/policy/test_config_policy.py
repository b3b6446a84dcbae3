"""``[allow]``, ``[lists.NAME]`` and per-category ``[[watch]]`` keys: read into values,
and every error names FILE:LINE and the key."""

from __future__ import annotations

import ipaddress

import pytest

from recentd.config import load_config
from recentd.errors import ConfigError
from recentd.observation import Action, Evidence, Route
from recentd.policy.settings import ListPolicy

GOOD = """\
rules = "/etc/iptables/rules.v4"

[allow]
addresses = ["192.0.2.0/24", "2001:db8::1"]
login_session = "12h"

[lists.SSH]
ip_list_tot = 5000
ip_list_perms = "0600"
purge_after = "7d"
ban_multiplier = 2
ban_max = "1w"
login = "-"
cut_connections = true

[lists.RECIDIVE]
on_ban_of = ["SSH"]

[[watch]]
source = "journal"
failure = "SSH"
failure_root = "SSH_ROOT"
failure_invalid = "SSH_INVALID"
"""


def test_a_policy_file_read_into_values(tmp_path):
    path = tmp_path / "recentd.toml"
    path.write_text(GOOD)
    config = load_config(path)
    policy = config.policy()
    assert [str(e.network) for e in policy.allow] == ["192.0.2.0/24", "2001:db8::1/128"]
    assert policy.allow[0].detail == f"[allow] {path}:4"
    assert policy.log_session_s == 12 * 3600
    assert policy.lists == (
        ListPolicy("SSH", {"ip_list_tot": 5000, "ip_list_perms": 0o600}, 7 * 86400, (), 2.0,
                   7 * 86400, "-", True, f"{path}:7"),
        ListPolicy("RECIDIVE", {}, 0, ("SSH",), origin=f"{path}:16"),
    )  # fmt: skip
    assert policy.ban_routes() == (Route(Evidence.BAN, "RECIDIVE", Action.ADD, kind="SSH"),)
    assert policy.login_routes() == (Route(Evidence.LOGIN, "SSH", Action.REMOVE, kind="open"),)
    assert config.watch[0].routes()[1:] == (
        Route(Evidence.AUTH_FAILURE, "SSH_ROOT", Action.ADD, category="root"),
        Route(Evidence.AUTH_FAILURE, "SSH_INVALID", Action.ADD, category="invalid"),
    )
    assert ipaddress.ip_address("192.0.2.9") in policy.allow[0].network


@pytest.mark.parametrize(("change", "line", "message"), [
    (('"192.0.2.0/24"', '"192.0.2.0/33"'), 4,
     "allow.addresses: not an address or network"),
    (('login_session = "12h"', 'login_session = "half a day"'), 5,
     "allow.login_session: 'half a day' is not a duration"),
    (('login_session', 'session'), 5, "allow.session: unknown key"),
    (("ip_list_tot = 5000", "ip_list_tot = 0"), 8, "lists.SSH.ip_list_tot: "),
    (('purge_after = "7d"', 'purge_after = "7 days"'), 10, "lists.SSH.purge_after: "),
    (("ban_multiplier = 2", "ban_multiplier = 0.5"), 11,
     "lists.SSH.ban_multiplier: expected a number from 1 to 1000"),
    (('login = "-"', 'login = "forget"'), 13, 'lists.SSH.login: a login does "+"'),
    (("cut_connections = true", 'cut_connections = "yes"'), 14,
     "lists.SSH.cut_connections: expected true or false"),
    (('on_ban_of = ["SSH"]', 'on_ban_of = [""]'), 17, "lists.RECIDIVE.on_ban_of: "),
    (("cut_connections = true", "cut = true"), 14, "lists.SSH.cut: unknown key"),
    (('failure_root = "SSH_ROOT"', 'failure_admin = "SSH_ROOT"'), 19,
     "watch.failure_admin: unknown key"),
])  # fmt: skip
def test_errors_name_file_line_and_key(tmp_path, change, line, message):
    path = tmp_path / "recentd.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}:{line}: {message}")
