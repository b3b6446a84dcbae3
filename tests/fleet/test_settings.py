"""The [fleet] table: every wrong value is a ConfigError naming fleet.KEY; no clear-text
credentials across a network; the password file is root's alone."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from recentd.errors import ConfigError
from recentd.fleet.events import FleetEvent, Op, encode
from recentd.fleet.merge import Caps
from recentd.fleet.outbox import Outbox
from recentd.fleet.settings import read_password, settings_from_table

GOOD = {"url": "rediss://store.example:6380", "host": "web-1", "lists": ["SSH_AUTH"]}


def test_a_full_table() -> None:
    settings = settings_from_table({**GOOD, "quorum": 2, "rate_per_min": 100,
                                    "protect": ["192.0.2.0/24"], "prefix": "prod"})  # fmt: skip
    assert settings.caps == Caps(rate_per_min=100, quorum=2)
    assert (settings.stream, settings.snapshot) == ("prod:events", "prod:bans")
    assert [str(n) for n in settings.protect] == ["192.0.2.0/24"]


@pytest.mark.parametrize(("change", "message"), [
    ({"url": "redis://store.example:6379"},
     "x.toml: fleet.url: redis:// is for loopback only; use rediss:// (TLS) across a network"),
    ({"url": "http://x"}, "x.toml: fleet.url: expected unix:///PATH, redis://LOOPBACK:PORT or "
                          "rediss://HOST:PORT"),
    ({"host": "web 1"}, "x.toml: fleet.host: expected a name (letters, digits, - _ .)"),
    ({"lists": []}, "x.toml: fleet.lists: expected a list of list names"),
    ({"quorum": 0}, "x.toml: fleet.quorum: expected a whole number ≥ 1"),
    ({"protect": ["nowhere"]}, "x.toml: fleet.protect: expected an address or network"),
    ({"password": "s3cret"}, "x.toml: fleet.password: unknown key (known: host, lists, "
     "max_count, max_duration_s, password_file, prefix, protect, quorum, rate_per_min, url)"),
])  # fmt: skip
def test_a_wrong_value_is_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_table({**GOOD, **change}, "x.toml")
    assert str(caught.value) == message


def test_loopback_and_unix_sockets_may_go_without_tls() -> None:
    for url in ("redis://127.0.0.1:6379", "redis://[::1]:6379", "redis://localhost",
                "unix:///run/redis/redis.sock"):  # fmt: skip
        assert settings_from_table({**GOOD, "url": url}).url == url


def test_the_password_file_must_be_roots_alone(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    if os.geteuid() == 0:
        assert read_password(path) == "s3cret"
    path.chmod(0o640)
    with pytest.raises(ConfigError, match=r"readable by root only \(mode -rw-r-----"):
        read_password(path)
    with pytest.raises(ConfigError, match=r"fleet\.password_file: unreadable"):
        read_password(tmp_path / "missing")


def _event(n: int) -> str:
    """The text of host-a's n-th ban."""
    return encode(FleetEvent(Op.BAN, ipaddress.IPv4Address(f"192.0.2.{n}"), 32, "SSH", n,
                             600_000, "host-a", "4 hits in 60 s", f"host-a:{n}"))  # fmt: skip


def test_the_outbox_keeps_what_was_not_acknowledged_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "outbox.txt"
    outbox = Outbox(path)
    outbox.append([_event(1), _event(2), _event(3)])
    outbox.sync()
    outbox.acknowledge(1)
    outbox.append([_event(4)])
    outbox.close()
    with path.open("a") as torn:
        torn.write(_event(5)[:20])  # power lost mid-line
    again = Outbox(path)
    assert again.pending() == [_event(2), _event(3), _event(4)] and again.skipped == 1
    again.append([_event(6)])
    again.close()
    with path.open("a") as damaged:
        damaged.write("not an event\n")
    last = Outbox(path)
    assert last.pending() == [_event(2), _event(3), _event(4), _event(6)]
    assert last.skipped == 1
    last.close()


def test_the_fleet_table_of_a_config_file(tmp_path: Path) -> None:
    from recentd.config import load_config  # noqa: PLC0415

    path = tmp_path / "recentd.toml"
    path.write_text('rules = ["/etc/iptables/rules.v4"]\n\n[fleet]\nurl = "unix:///run/r.sock"\n'
                    'host = "web-1"\nlists = ["SSH_AUTH"]\nquorum = 2\n')  # fmt: skip
    fleet = load_config(path).fleet
    assert fleet is not None and (fleet.host, fleet.lists, fleet.caps.quorum) == (
        "web-1", ("SSH_AUTH",), 2)
    path.write_text('[fleet]\nurl = "redis://10.0.0.5"\nhost = "web-1"\nlists = ["S"]\n')
    with pytest.raises(ConfigError, match=r"recentd.toml:1: fleet\.url: redis:// is for loopback"):
        load_config(path)
