"""The ``[fleet]`` table of the config file, validated, and how it becomes a connection.

Rules of this module:

1. Every key is checked here, once; a wrong one is a :class:`~recentd.errors.ConfigError`
   naming ``fleet.KEY`` and the value given.
2. The store is reached through ``unix:///path`` (a local socket), ``redis://`` on
   loopback only, or ``rediss://`` (TLS) anywhere: credentials never cross a network in
   clear text.
3. The password comes from ``password_file``, which must be owned by root and readable by
   its owner only; never from the command line or the config text.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from recentd.errors import ConfigError
from recentd.fleet.events import MAX_NAME, Network
from recentd.fleet.merge import Caps

DEFAULT_CAPS = Caps()
#: The commands a member needs (module rules of :mod:`recentd.fleet.link`), and only them.
MEMBER_COMMANDS = ("-@all", "+ping", "+hello", "+auth", "+client|setname", "+multi", "+exec",
                   "+xadd", "+xread", "+xrange", "+xrevrange", "+hset", "+hgetall", "+hscan",
                   "+hdel")  # fmt: skip
KEYS = frozenset({"url", "host", "lists", "password_file", "prefix", "protect", "quorum",
                  "rate_per_min", "max_duration_s", "max_count"})  # fmt: skip


@dataclass(frozen=True)
class FleetSettings:
    """What one fleet member needs to know.

    Attributes:
        url: where the store is (rule 2).
        host: this host's name: its ACL user name and the origin of its events.
        lists: the shared lists.
        caps: per-origin caps and the quorum.
        password_file: the ACL user's password (rule 3); ``None``: no password.
        prefix: the keys' prefix: ``PREFIX:events`` (the stream), ``PREFIX:bans`` (the
            snapshot hash).
        protect: networks never banned from the fleet (the host's own addresses).
    """

    url: str
    host: str
    lists: tuple[str, ...]
    caps: Caps = DEFAULT_CAPS
    password_file: Path | None = None
    prefix: str = "recentd"
    protect: tuple[Network, ...] = ()

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    @property
    def snapshot(self) -> str:
        return f"{self.prefix}:bans"


def _int(table: Mapping[str, object], key: str, default: int, source: str) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError("expected a whole number ≥ 1", key=f"fleet.{key}", value=value,
                          source=source)  # fmt: skip
    return value


def _name(value: object, key: str, source: str) -> str:
    if (not isinstance(value, str) or not value or len(value) > MAX_NAME
            or not all(c.isalnum() or c in "-_." for c in value)):  # fmt: skip
        raise ConfigError("expected a name (letters, digits, - _ .)", key=key, value=value,
                          source=source)  # fmt: skip
    return value


def settings_from_table(table: Mapping[str, object], source: str = "") -> FleetSettings:
    """Validate the ``[fleet]`` table.

    Raises:
        ConfigError: an unknown key or a wrong value (rule 1).
    """
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"unknown key (known: {', '.join(sorted(KEYS))})",
                          key=f"fleet.{unknown[0]}", value=table[unknown[0]], source=source)
    url = table.get("url")
    if not isinstance(url, str):
        raise ConfigError("expected a URL", key="fleet.url", value=url, source=source)
    check_url(url, source)
    lists = table.get("lists")
    if not isinstance(lists, list) or not lists:
        raise ConfigError("expected a list of list names", key="fleet.lists", value=lists,
                          source=source)  # fmt: skip
    protect: list[Network] = []
    for text in table.get("protect", []):  # type: ignore[attr-defined]
        try:
            protect.append(ipaddress.ip_network(text, strict=False))
        except (TypeError, ValueError):
            raise ConfigError("expected an address or network", key="fleet.protect",
                              value=text, source=source) from None  # fmt: skip
    password = table.get("password_file")
    if password is not None and not isinstance(password, str):
        raise ConfigError("expected a path", key="fleet.password_file", value=password,
                          source=source)  # fmt: skip
    caps = Caps(
        rate_per_min=_int(table, "rate_per_min", DEFAULT_CAPS.rate_per_min, source),
        max_duration_s=_int(table, "max_duration_s", DEFAULT_CAPS.max_duration_s, source),
        max_count=_int(table, "max_count", DEFAULT_CAPS.max_count, source),
        quorum=_int(table, "quorum", DEFAULT_CAPS.quorum, source),
    )
    return FleetSettings(
        url, _name(table.get("host"), "fleet.host", source),
        tuple(_name(name, "fleet.lists", source) for name in lists), caps,
        Path(password) if password else None,
        _name(table.get("prefix", "recentd"), "fleet.prefix", source), tuple(protect),
    )  # fmt: skip


def check_url(url: str, source: str = "") -> None:
    """Refuse a URL that would send credentials in clear text over a network (rule 2)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and parts.path:
        return
    if parts.scheme == "rediss" and parts.hostname:
        return
    if parts.scheme == "redis" and parts.hostname:
        if parts.hostname == "localhost" or _loopback(parts.hostname):
            return
        raise ConfigError("redis:// is for loopback only; use rediss:// (TLS) across a network",
                          key="fleet.url", value=url, source=source)  # fmt: skip
    raise ConfigError("expected unix:///PATH, redis://LOOPBACK:PORT or rediss://HOST:PORT",
                      key="fleet.url", value=url, source=source)  # fmt: skip


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password(path: Path) -> str:
    """The password in ``path`` (rule 3).

    Raises:
        ConfigError: the file is missing, not root's, or readable by others.
    """
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read(4096)
    except OSError as exc:
        raise ConfigError(f"unreadable: {exc.strerror}", key="fleet.password_file",
                          value=str(path)) from None  # fmt: skip
    if info.st_uid != 0 or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"must be owned by root and readable by root only (mode "
                          f"{stat.filemode(info.st_mode)}, owner uid {info.st_uid})",
                          key="fleet.password_file", value=str(path))  # fmt: skip
    return data.decode("utf-8", "replace").strip()


def acl_rule(host: str, password: str, prefix: str = "recentd") -> str:
    """The ACL rule (``ACL SETUSER`` / ``user`` directive) for member ``host``: its own
    password, only the fleet's keys, only the commands it needs."""
    return (f"{host} on >{password} resetkeys ~{prefix}:* resetchannels "
            f"{' '.join(MEMBER_COMMANDS)}")  # fmt: skip
