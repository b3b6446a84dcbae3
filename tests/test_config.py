"""Configuration: one declaration per option; file, flags and help all come from it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from recentd.config import (
    OPTIONS,
    Config,
    add_arguments,
    config_from_args,
    describe_options,
    load_config,
)
from recentd.errors import ConfigError
from recentd.observation import Action, Evidence, Route


def write(tmp_path, text):
    path = tmp_path / "recentd.toml"
    path.write_text(text)
    return path


def parser():
    p = argparse.ArgumentParser(prog="recentd run")
    add_arguments(p)
    return p


def test_defaults():
    config = load_config(None, {})
    assert config == Config()
    assert (config.fail_open, config.hz, config.offload, config.state_dir) == (
        True, 250, True, Path("/var/lib/recentd"),
    )  # fmt: skip
    assert config.module_params().ip_list_perms == 0o644


def test_the_file_then_the_command_line(tmp_path):
    path = write(
        tmp_path,
        'rules = "/etc/iptables/rules.v4"\nip_list_tot = 2000\nip_list_perms = 0o640\n'
        "fail_open = false\nhz = 100\n",
    )
    args = parser().parse_args(["--config", str(path), "--hz", "1000", "--fail-open"])
    config = config_from_args(args)
    assert config.rules == (Path("/etc/iptables/rules.v4"),)
    assert (config.ip_list_tot, config.ip_list_perms) == (2000, 0o640)
    assert (config.hz, config.fail_open) == (1000, True)  # flags win


def test_flags_not_given_leave_the_file_alone(tmp_path):
    path = write(tmp_path, "offload = false\n")
    config = config_from_args(parser().parse_args(["--config", str(path)]))
    assert config.offload is False


def test_perms_as_an_octal_string(tmp_path):
    assert load_config(write(tmp_path, 'ip_list_perms = "0600"\n')).ip_list_perms == 0o600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hz = 250\nbogus = 1\n", "recentd.toml:2: bogus: unknown option (known: allow, fail_open,"),
        ('\n\nhz = "fast"\n', "recentd.toml:3: hz: expected an integer, got str 'fast'"),
        ("fail_open = 1\n", "recentd.toml:1: fail_open: expected true or false, got int 1"),
        ("hz = true\n", "recentd.toml:1: hz: expected an integer, got bool True"),
        ("hz = 0\n", "recentd.toml:1: hz: must be between 1 and 100000"),
        ("ip_list_tot = 0\n", "recentd.toml:1: ip_list_tot: must be between 1 and 4294967295"),
        ('log_level = "loud"\n', "recentd.toml:1: log_level: must be one of debug, info,"),
        ("[daemon]\nhz = 1\n", "recentd.toml:1: daemon: unknown option"),
        ("hz = = 3\n", "not valid TOML: Invalid value (at line 1, column 6)"),
    ],
)
def test_bad_files_name_the_key_file_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path))


def test_bad_command_line_values_say_so():
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"queue_num": 70000})
    assert str(caught.value) == "command line: queue_num: must be between 0 and 65535"


def test_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load_config(tmp_path / "nope.toml")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().hz = 1  # type: ignore[misc]


def test_every_option_is_in_help_once():
    text = parser().format_help()
    body = text[text.index("options:") :]
    for option in OPTIONS:
        if option.cli:
            assert body.count(option.flag + " ") + body.count(option.flag + ",") == 1, option.name
        else:
            assert option.flag not in text
    assert "--no-fail-open" in text
    assert "first NFQUEUE number (default: 0)" in " ".join(text.split())
    assert "ip_list_perms = 0o644  (file only)" in describe_options()


def test_options_cover_the_brief():
    names = {option.name for option in OPTIONS}
    assert names >= {
        "rules", "socket", "mount", "state_dir", "queue_num", "fail_open", "hz",
        "ip_list_tot", "ip_pkt_list_tot", "ip_list_perms", "ip_list_uid", "ip_list_gid",
        "offload", "log_level",
    }  # fmt: skip


# ---- several rule files; [[watch]] tables ------------------------------------------------


def test_rules_repeat_on_the_command_line_and_list_in_the_file(tmp_path):
    path = write(tmp_path, 'rules = ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"]\n')
    assert load_config(path).rules == (Path("/etc/iptables/rules.v4"),
                                       Path("/etc/iptables/rules.v6"))  # fmt: skip
    args = parser().parse_args(["--config", str(path), "--rules", "a.v4", "--rules", "a.v6"])
    assert config_from_args(args).rules == (Path("a.v4"), Path("a.v6"))  # flags win, whole


WATCH = """\
rules = "/etc/iptables/rules.v4"

[[watch]]
source = "journal"
parser = "sshd"
failure = "SSH_AUTH"
success = "SSH_AUTH"

[[watch]]
source = "/var/log/auth.log"
failure = "SSH_LOG"
"""


def test_watch_tables_become_routes(tmp_path):
    config = load_config(write(tmp_path, WATCH))
    journal, file = config.watch
    assert (journal.source, journal.parser, journal.origin) == (
        "journal", "sshd", f"{tmp_path / 'recentd.toml'}:3",
    )  # fmt: skip
    assert journal.routes() == (
        Route(Evidence.AUTH_FAILURE, "SSH_AUTH", Action.ADD),
        Route(Evidence.AUTH_SUCCESS, "SSH_AUTH", Action.REMOVE),
    )
    assert (file.source, file.parser, file.origin) == (
        "/var/log/auth.log", "sshd", f"{tmp_path / 'recentd.toml'}:9",
    )  # fmt: skip
    assert file.routes() == (Route(Evidence.AUTH_FAILURE, "SSH_LOG", Action.ADD),)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('source = "/var/log/auth.log"', 'source = "auth.log"'),
         ':9: watch.source: expected "journal", "-" or an absolute path'),
        (('failure = "SSH_LOG"', 'failure = "a/b"'), ":9: watch.failure: xt_recent: invalid table"),
        (('failure = "SSH_LOG"', 'fail = "SSH_LOG"'), ":9: watch.fail: unknown key"),
        (('failure = "SSH_LOG"', 'parser = "sshd"'), ":9: watch: writes no list"),
        (('parser = "sshd"', 'parser = "apache"'), ":3: watch.parser: unknown parser"),
        (('failure = "SSH_LOG"', "failure = 5"), ":9: watch.failure: expected a string"),
    ],
)
def test_a_bad_watch_table_is_named_by_its_line(tmp_path, edit, message):
    old, new = edit
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, WATCH.replace(old, new)))
    assert message in str(raised.value)
