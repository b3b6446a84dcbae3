"""The daemon's options, each declared once, feeding argparse, the TOML file and ``--help``.

Every option is one field of :class:`Config`: its type, default and help text,
and whether it is also a command-line flag. From that single declaration come
the ``recentd run`` flags (:func:`add_arguments`), the keys accepted in
``/etc/recentd/recentd.toml`` (:func:`load_config`), and the help text.

Precedence: built-in default < config file < command line. Errors name the key
and where the value came from (``FILE:LINE`` or ``command line``)::

    # /etc/recentd/recentd.toml
    rules = ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"]
    state_dir = "/var/lib/recentd"
    ip_list_tot = 2000
    ip_list_perms = 0o640

    [[watch]]                  # evidence from logs, into recent lists (see :class:`Watch`)
    source = "journal"         # or a file path, or "-" for standard input
    parser = "sshd"
    failure = "SSH_AUTH"       # each failed attempt: +ADDR, stamped at the line's own time
    success = "SSH_AUTH"       # a successful login: -ADDR
    failure_root = "SSH_ROOT"  # failures for root only (also _invalid, _valid)

    [allow]                    # never banned (docs/policy.md)
    addresses = ["192.0.2.0/24", "2001:db8::1"]
    login_session = "1d"       # a login seen only in a log keeps its address allowed so long

    [lists.SSH]                # one list's settings (docs/policy.md)
    ip_list_tot = 5000
    purge_after = "7d"
    cut_connections = true

Scalar options are declared once as :class:`Config` fields (:data:`OPTIONS`); tables of
tables (``[[watch]]``) each have one reader (:data:`_TABLES`), and the file is checked
against both: an unknown key is an error naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recentd import defaults
from recentd.cli.globals import add_global_options, config_path
from recentd.errors import ConfigError, RecentOptionError
from recentd.fleet.settings import FleetSettings, settings_from_table
from recentd.observation import Action, Evidence, Route
from recentd.policy.allow import CONFIG, Allowed
from recentd.policy.durations import parse_duration
from recentd.policy.settings import (
    LIST_PARAMS,
    AllowSettings,
    ListPolicy,
    PolicyConfig,
)
from recentd.recent import ModuleParams, check_table_name

LOG_LEVELS = ("debug", "info", "warning", "error")
_COMMAND_LINE = "command line"


def _about(
    help_text: str, *, cli: bool = True, metavar: str | None = None, table: bool = False
) -> dict[str, Any]:
    """A field's metadata: its help, whether it is a flag, the flag's metavar, and whether
    it is a TOML array of tables with a reader of its own (never a flag)."""
    return {"help": help_text, "cli": cli and not table, "metavar": metavar, "table": table}


#: The parsers a ``[[watch]]`` entry may name.
PARSERS = ("sshd",)
#: A ``[[watch]]`` source that is not a file.
JOURNAL, STDIN = "journal", "-"
#: The user categories the sshd parser tells apart (``failure_root = "LIST"`` …).
CATEGORIES = ("root", "invalid", "valid")


@dataclass(frozen=True, slots=True)
class Watch:
    """One ``[[watch]]`` table: where evidence comes from and which lists it writes.

    Attributes:
        source: ``"journal"``, ``"-"`` (standard input) or a log file's absolute path.
        parser: how its lines are read (:data:`PARSERS`).
        failure: each counted failed attempt does ``+ADDR`` on this list (at the line's time).
        success: a successful login does ``-ADDR`` on this list (DenyHosts' RESET_ON_SUCCESS).
        origin: ``FILE:LINE`` of the table, for messages.
        by_category: per user category (:data:`CATEGORIES`), the list its failures also
            go to (``failure_root = "SSH_ROOT"``: DenyHosts' per-category thresholds).
    """

    source: str
    parser: str = "sshd"
    failure: str | None = None
    success: str | None = None
    origin: str = ""
    by_category: tuple[tuple[str, str], ...] = ()

    def routes(self) -> tuple[Route, ...]:
        """What the entry's evidence does to the lists."""
        routes = []
        if self.failure:
            routes.append(Route(Evidence.AUTH_FAILURE, self.failure, Action.ADD))
        if self.success:
            routes.append(Route(Evidence.AUTH_SUCCESS, self.success, Action.REMOVE))
        for category, table in self.by_category:
            routes.append(Route(Evidence.AUTH_FAILURE, table, Action.ADD, category=category))
        return tuple(routes)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``recentd run`` needs to know; immutable once loaded."""

    rules: tuple[Path, ...] = field(
        default=(),
        metadata=_about("iptables rules file: a save file or a script (repeatable: a host "
                        "keeps rules.v4 and rules.v6)", metavar="FILE"),
    )
    socket: Path = field(
        default=defaults.SOCKET, metadata=_about("control socket", metavar="PATH")
    )
    mount: Path | None = field(
        default=None, metadata=_about("also show the tables as files in DIR (FUSE)", metavar="DIR")
    )
    metrics: str | None = field(
        default=None,
        metadata=_about("serve Prometheus metrics at ADDR:PORT (a bare PORT: 127.0.0.1)",
                        metavar="ADDR:PORT"),
    )
    metrics_textfile: Path | None = field(
        default=None,
        metadata=_about("write Prometheus metrics to FILE every second, for node_exporter's "
                        "textfile collector (atomic rename)", metavar="FILE"),
    )
    state_dir: Path = field(
        default=defaults.STATE_DIR,
        metadata=_about("where the journal and snapshot live", metavar="DIR"),
    )
    queue_num: int = field(
        default=defaults.QUEUE_NUM, metadata=_about("first NFQUEUE number", metavar="N")
    )
    fail_open: bool = field(
        default=True, metadata=_about("accept packets when recentd is down or overloaded")
    )
    hz: int = field(
        default=defaults.HZ, metadata=_about("ticks per second of the table stamps", metavar="HZ")
    )
    offload: bool = field(
        default=True, metadata=_about("install bans in an nftables set when the rules allow")
    )
    log_level: str = field(
        default="warning", metadata=_about(f"one of {', '.join(LOG_LEVELS)}", metavar="LEVEL")
    )
    ip_list_tot: int = field(default=100, metadata=_about(
        "most entries per table (the kernel's 100; under a spoofed flood more than spoofed "
        "sources/s x an attacker's pause, ~250 bytes each: docs/deviations.md)", cli=False))
    ip_pkt_list_tot: int = field(
        default=0, metadata=_about("stamps kept per entry (0: sized by rules)", cli=False)
    )
    ip_list_perms: int = field(
        default=0o644, metadata=_about("mode of each table's file", cli=False)
    )
    ip_list_uid: int = field(default=0, metadata=_about("owner of each table's file", cli=False))
    ip_list_gid: int = field(default=0, metadata=_about("group of each table's file", cli=False))
    watch: tuple[Watch, ...] = field(default=(), metadata=_about("[[watch]] tables", table=True))
    allow: AllowSettings = field(
        default=AllowSettings(), metadata=_about("[allow] table", table=True)
    )
    lists: tuple[ListPolicy, ...] = field(
        default=(), metadata=_about("[lists.NAME] tables", table=True)
    )

    def policy(self) -> PolicyConfig:
        """The allow lists and per-list settings, as the daemon takes them."""
        return PolicyConfig(self.allow.entries, self.allow.log_session_s, self.lists)
    fleet: FleetSettings | None = field(
        default=None, metadata=_about("[fleet]: share bans through Redis", table=True)
    )

    def module_params(self) -> ModuleParams:
        """The table defaults, as the core takes them."""
        return ModuleParams(
            ip_list_tot=self.ip_list_tot,
            ip_pkt_list_tot=self.ip_pkt_list_tot,
            ip_list_perms=self.ip_list_perms,
            ip_list_uid=self.ip_list_uid,
            ip_list_gid=self.ip_list_gid,
        )


@dataclass(frozen=True, slots=True)
class Option:
    """One option as the parsers see it, derived from a :class:`Config` field."""

    name: str
    kind: type
    optional: bool
    default: Any
    help: str
    cli: bool
    metavar: str | None
    #: A list of values (``--rules A --rules B``; ``rules = ["A", "B"]`` or one string).
    many: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _options() -> tuple[Option, ...]:
    hints = typing.get_type_hints(Config)
    result = []
    for f in dataclasses.fields(Config):
        if f.metadata["table"]:
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        many = typing.get_origin(hint) is tuple
        kind = next((a for a in args if a is not type(None)), hint)
        result.append(
            Option(f.name, kind, type(None) in args, f.default, f.metadata["help"],
                   f.metadata["cli"], f.metadata["metavar"], many)
        )  # fmt: skip
    return tuple(result)


OPTIONS: tuple[Option, ...] = _options()
_BY_NAME = {option.name: option for option in OPTIONS}


# ---- argparse -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and every command-line option to ``parser``.

    Flags not given stay absent from the namespace, so the file's values survive.
    """
    add_global_options(parser)
    for option in OPTIONS:
        if option.cli and option.name != "socket":
            _add_flag(parser, option)


def _add_flag(parser: argparse.ArgumentParser, option: Option) -> None:
    help_text = f"{option.help} (default: {_show(option.default, option.name)})"
    if option.kind is bool:
        parser.add_argument(
            option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
            default=argparse.SUPPRESS, help=help_text,
        )  # fmt: skip
        return
    parser.add_argument(
        option.flag, dest=option.name, type=_CLI_TYPES[option.kind], metavar=option.metavar,
        default=argparse.SUPPRESS, help=help_text, action="append" if option.many else "store",
    )  # fmt: skip


def _show(value: Any, name: str = "") -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return str(value).lower()
    if name in _OCTAL:
        return f"0o{value:03o}"
    return str(value)


#: Options that are file modes, shown (and accepted) in octal as chmod takes them.
_OCTAL = frozenset({"ip_list_perms"})


_CLI_TYPES: dict[type, Callable[[str], Any]] = {Path: Path, int: int, str: str}


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options the command line gave (by :func:`add_arguments`' flags)."""
    return {o.name: getattr(args, o.name) for o in OPTIONS if o.cli and hasattr(args, o.name)}


def config_from_args(args: argparse.Namespace) -> Config:
    """``load_config(--config or $RECENTD_CONFIG, <flags given>)``."""
    return load_config(config_path(args), overrides_from_args(args))


# ---- loading --------------------------------------------------------------------------


def load_config(path: Path | None, cli_overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then ``cli_overrides``.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key or bad value; it names
            the key and ``FILE:LINE`` (or ``command line``).
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        for key, (value, origin) in _read_file(Path(path)).items():
            reader = _TABLES.get(key)
            converted = reader(value, origin) if reader else _convert(key, value, origin)
            values[key], origins[key] = converted, origin
    for key, value in (cli_overrides or {}).items():
        values[key], origins[key] = _convert(key, value, _COMMAND_LINE), _COMMAND_LINE
    config = Config(**values)
    _validate(config, origins)
    return config


def _read_file(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(f"cannot read: {reason or exc}", source=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(path)) from None
    read: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        origin = f"{path}:{_line_of(text, key)}"
        if key in _KEYED_TABLES and isinstance(value, dict):
            read[key] = (_locate(text, path, key, value), origin)
        elif key in _TABLES and isinstance(value, list):
            # each table of the array with its own line: ``[[watch]]`` number i
            lines = [text.count("\n", 0, found.start()) + 1
                     for found in re.finditer(rf"^[ \t]*\[\[{re.escape(key)}\]\]", text, re.M)]
            located = [(entry, f"{path}:{line}") for entry, line in zip(value, lines, strict=False)]
            read[key] = (located, origin)
        else:
            read[key] = (value, origin)
    return read


def _line_of(text: str, key: str) -> int:
    """The line a top-level key is set on (tomllib does not say; 0 when not found)."""
    pattern = re.compile(rf"^[ \t]*(?:{re.escape(key)}|\"{re.escape(key)}\")[ \t]*=", re.MULTILINE)
    table = rf"^[ \t]*\[\[?{re.escape(key)}\]"
    found = pattern.search(text) or re.search(table, text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def _locate(text: str, path: Path, key: str, value: dict[str, Any]) -> Located:
    """``[allow]`` with each key's ``FILE:LINE``; ``[lists.NAME]``: each list's table so."""
    if key == "lists":
        return {name: (entry, _table_lines(text, path, f"lists.{name}"))
                for name, entry in value.items()}  # fmt: skip
    return {"": (value, _table_lines(text, path, key))}


#: A table's value with where each of its keys is: ``{"": FILE:LINE of the header}``.
Located = dict[str, tuple[Any, dict[str, str]]]


def _table_lines(text: str, path: Path, header: str) -> dict[str, str]:
    """``FILE:LINE`` of table ``[header]`` (key ``""``) and of each ``key =`` in it."""
    lines = text.splitlines()
    name = r"\.".join(rf"(?:{re.escape(p)}|\"{re.escape(p)}\")" for p in header.split("."))
    start = next((i for i, line in enumerate(lines)
                  if re.match(rf"^[ \t]*\[[ \t]*{name}[ \t]*\]", line)), None)  # fmt: skip
    if start is None:
        return {"": f"{path}:{_line_of(text, header.split('.', maxsplit=1)[0])}"}
    where = {"": f"{path}:{start + 1}"}
    for i in range(start + 1, len(lines)):
        if re.match(r"^[ \t]*\[", lines[i]):
            break
        found = re.match(r"^[ \t]*\"?([A-Za-z0-9_-]+)\"?[ \t]*=", lines[i])
        if found:
            where.setdefault(found.group(1), f"{path}:{i + 1}")
    return where


# ---- keyed tables: [allow], [lists.NAME] ---------------------------------------------


def _where(lines: dict[str, str], key: str) -> str:
    return lines.get(key, lines.get("", ""))


def _allow(value: Any, origin: str) -> AllowSettings:
    """``[allow]``: ``addresses`` (addresses and networks), ``login_session`` (a duration)."""
    if not isinstance(value, dict):
        raise ConfigError("expected an [allow] table", key="allow", value=value, source=origin)
    entry, lines = value[""]
    if not isinstance(entry, dict):
        raise ConfigError("expected an [allow] table", key="allow", value=entry, source=origin)
    unknown = sorted(set(entry) - {"addresses", "login_session"})
    if unknown:
        raise ConfigError("unknown key (known: addresses, login_session)",
                          key=f"allow.{unknown[0]}", source=_where(lines, unknown[0]))
    addresses = entry.get("addresses", [])
    where = _where(lines, "addresses")
    if not isinstance(addresses, list):
        raise ConfigError("expected a list of addresses and networks", key="allow.addresses",
                          value=addresses, source=where)  # fmt: skip
    entries = []
    for item in addresses:
        try:
            network = ipaddress.ip_network(item, strict=False) if isinstance(item, str) else None
        except ValueError:
            network = None
        if network is None:
            raise ConfigError("not an address or network (\"192.0.2.0/24\", \"2001:db8::1\")",
                              key="allow.addresses", value=item, source=where)  # fmt: skip
        entries.append(Allowed(CONFIG, network, f"[allow] {where}"))
    session = _duration(entry, "login_session", lines, "allow", LOG_SESSION_DEFAULT)
    return AllowSettings(tuple(entries), session)


LOG_SESSION_DEFAULT = AllowSettings().log_session_s


def _duration(entry: dict[str, Any], key: str, lines: dict[str, str], table: str,
              default: int) -> int:  # fmt: skip
    if key not in entry:
        return default
    try:
        return parse_duration(entry[key])
    except ValueError as exc:
        raise ConfigError(str(exc), key=f"{table}.{key}", value=entry[key],
                          source=_where(lines, key)) from None  # fmt: skip


_LIST_KEYS = (*LIST_PARAMS, "purge_after", "on_ban_of", "ban_multiplier", "ban_max", "login",
              "cut_connections")  # fmt: skip


def _lists(value: Any, origin: str) -> tuple[ListPolicy, ...]:
    """``[lists.NAME]`` tables, each checked (errors name ``lists.NAME.key`` and its line)."""
    if not isinstance(value, dict):
        raise ConfigError("expected [lists.NAME] tables", key="lists", value=value, source=origin)
    return tuple(_list(name, entry, lines) for name, (entry, lines) in value.items())


def list_policy(name: str, entry: Mapping[str, Any], origin: str) -> ListPolicy:
    """One ``[lists.NAME]`` table's settings from ``entry`` (as TOML gives them), checked
    as the file's are (``recentd ctl set`` changes a list's settings through it).

    Raises:
        ConfigError: a bad key or value, naming ``lists.NAME.key`` and ``origin``.
    """
    return _list(name, dict(entry), {"": origin})


def _list(name: str, entry: Any, lines: dict[str, str]) -> ListPolicy:
    table = f"lists.{name}"

    def fail(message: str, key: str = "", value: object = None) -> ConfigError:
        return ConfigError(message, key=f"{table}.{key}" if key else table, value=value,
                           source=_where(lines, key))  # fmt: skip

    try:
        check_table_name(name)
    except RecentOptionError as exc:
        raise fail(exc.message, value=name) from None
    if not isinstance(entry, dict):
        raise fail("expected a table")
    unknown = sorted(set(entry) - set(_LIST_KEYS))
    if unknown:
        raise fail(f"unknown key (known: {', '.join(_LIST_KEYS)})", unknown[0])
    params = _list_params(entry, fail)
    on_ban_of = _list_names(entry.get("on_ban_of", []), fail)
    multiplier = entry.get("ban_multiplier", 1.0)
    number = isinstance(multiplier, int | float) and not isinstance(multiplier, bool)
    if not number or not 1 <= multiplier <= 1000:
        raise fail("expected a number from 1 to 1000", "ban_multiplier", multiplier)
    login = entry.get("login", "")
    if login not in ("", "+", "-"):
        raise fail('a login does "+" (add the address) or "-" (remove it)', "login", login)
    cut = entry.get("cut_connections", False)
    if not isinstance(cut, bool):
        raise fail("expected true or false", "cut_connections", cut)
    return ListPolicy(
        name, params, _duration(entry, "purge_after", lines, table, 0), tuple(on_ban_of),
        float(multiplier), _duration(entry, "ban_max", lines, table, 0), login, cut,
        _where(lines, ""),
    )  # fmt: skip


Fail = Callable[..., ConfigError]


def _list_params(entry: dict[str, Any], fail: Fail) -> dict[str, int]:
    params = {}
    for key in LIST_PARAMS:
        if key in entry:
            value = entry[key]
            if key in _OCTAL and isinstance(value, str) and _is_octal(value):
                value = int(value, 8)
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail("expected an integer", key, value)
            params[key] = value
    try:
        ModuleParams().with_changes(**params)
    except ConfigError as exc:
        raise fail(exc.message, exc.key, params.get(exc.key)) from None
    return params


def _list_names(value: Any, fail: Fail) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise fail("expected a list of list names", "on_ban_of", value)
    for name in names:
        try:
            check_table_name(name)
        except RecentOptionError as exc:
            raise fail(exc.message, "on_ban_of", name) from None
    return names


# ---- arrays of tables -----------------------------------------------------------------


def _watches(value: Any, origin: str) -> tuple[Watch, ...]:
    """``[[watch]]`` tables as :class:`Watch` values (each checked, errors at its line)."""
    if not isinstance(value, list):
        raise ConfigError("expected [[watch]] tables", key="watch", value=value, source=origin)
    return tuple(_watch(entry, where) for entry, where in value)


_CATEGORY_KEYS = tuple(f"failure_{category}" for category in CATEGORIES)
_WATCH_KEYS = ("source", "parser", "failure", "success", *_CATEGORY_KEYS)


def _watch(entry: Any, origin: str) -> Watch:
    def fail(message: str, key: str = "watch", value: object = None) -> ConfigError:
        return ConfigError(message, key=key, value=value, source=origin)

    if not isinstance(entry, dict):
        raise fail("expected a table")
    unknown = sorted(set(entry) - set(_WATCH_KEYS))
    if unknown:
        raise fail(f"unknown key (known: {', '.join(_WATCH_KEYS)})", f"watch.{unknown[0]}")
    for key in _WATCH_KEYS:
        if key in entry and not isinstance(entry[key], str):
            raise fail("expected a string", f"watch.{key}", entry[key])
    source = entry.get("source")
    if not source:
        raise fail('no source: give "journal", "-" or a log file\'s absolute path',
                   "watch.source")
    if source not in (JOURNAL, STDIN) and not Path(source).is_absolute():
        raise fail('expected "journal", "-" or an absolute path', "watch.source", source)
    parser = entry.get("parser", "sshd")
    if parser not in PARSERS:
        raise fail(f"unknown parser (known: {', '.join(PARSERS)})", "watch.parser", parser)
    if not any(entry.get(key) for key in ("failure", "success", *_CATEGORY_KEYS)):
        raise fail("writes no list: give failure = LIST and/or success = LIST")
    for key in ("failure", "success", *_CATEGORY_KEYS):
        if key in entry:
            try:
                check_table_name(entry[key])
            except RecentOptionError as exc:
                raise fail(exc.message, f"watch.{key}", entry[key]) from None
    by_category = tuple((key.removeprefix("failure_"), entry[key])
                        for key in _CATEGORY_KEYS if entry.get(key))  # fmt: skip
    return Watch(source, parser, entry.get("failure"), entry.get("success"), origin, by_category)


def _fleet(value: Any, origin: str) -> FleetSettings:
    """The ``[fleet]`` table (docs/fleet.md); checked by :mod:`recentd.fleet.settings`."""
    if not isinstance(value, dict):
        raise ConfigError("expected a [fleet] table", key="fleet", value=value, source=origin)
    return settings_from_table(value, origin)


#: Readers of the tables and arrays of tables, by key.
_TABLES: dict[str, Callable[[Any, str], Any]] = {"watch": _watches, "allow": _allow,
                                                  "lists": _lists, "fleet": _fleet}  # fmt: skip
#: Tables (not arrays) read with each key's line: ``[allow]``, ``[lists.NAME]``.
_KEYED_TABLES = frozenset({"allow", "lists"})


def _convert(key: str, value: Any, origin: str) -> Any:
    option = _BY_NAME.get(key)
    if option is None:
        known = ", ".join(sorted([*_BY_NAME, *_TABLES]))
        raise ConfigError(f"unknown option (known: {known})", key=key, value=value, source=origin)
    if option.many:
        items = value if isinstance(value, list | tuple) else [value]
        single = dataclasses.replace(option, many=False)
        return tuple(_convert_one(single, item, origin) for item in items)
    return _convert_one(option, value, origin)


def _convert_one(option: Option, value: Any, origin: str) -> Any:
    key = option.name
    if value is None and option.optional:
        return None
    if option.kind is Path and isinstance(value, str | Path) and str(value):
        return Path(value)
    if option.name in _OCTAL and isinstance(value, str) and _is_octal(value):
        return int(value, 8)
    # bool is an int subclass: true must not pass for 1, nor 1 for true.
    if isinstance(value, option.kind) and (option.kind is bool) == isinstance(value, bool):
        return value
    raise ConfigError(
        f"expected {_type_name(option)}, got {type(value).__name__} {value!r}",
        key=key, value=value, source=origin,
    )  # fmt: skip


def _is_octal(text: str) -> bool:
    return bool(re.fullmatch(r"0?o?[0-7]{1,4}", text))


def _type_name(option: Option) -> str:
    names = {Path: "a path (string)", int: "an integer", bool: "true or false", str: "a string"}
    name = names[option.kind]
    return f"{name} or nothing" if option.optional else name


def _validate(config: Config, origins: Mapping[str, str]) -> None:
    def fail(key: str, message: str) -> ConfigError:
        value = getattr(config, key)
        return ConfigError(message, key=key, value=value, source=origins.get(key, "default"))

    if not 1 <= config.hz <= 100_000:
        raise fail("hz", "must be between 1 and 100000")
    if not 0 <= config.queue_num <= 65535:
        raise fail("queue_num", "must be between 0 and 65535")
    if config.log_level not in LOG_LEVELS:
        raise fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
    try:
        config.module_params()
    except ConfigError as exc:
        raise fail(exc.key, exc.message) from None


def describe_options() -> str:
    """Every option with its default and help, for docs and ``--help`` epilogs."""
    lines = []
    for option in OPTIONS:
        where = option.flag if option.cli else "(file only)"
        default = _show(option.default, option.name)
        lines.append(f"  {option.name} = {default}  {where}\n      {option.help}")
    return "\n".join([*lines, _WATCH_HELP])


_WATCH_HELP = f"""\
  [[watch]]  (file only; one table per log to watch)
      source = "journal" | "-" | "/var/log/auth.log"   where the evidence comes from
      parser = "sshd"       how its lines are read (one of: {", ".join(PARSERS)})
      failure = "LIST"      each failed login attempt: +ADDR on LIST, at the line's own time
      success = "LIST"      a successful login: -ADDR on LIST
      failure_root = "LIST" failures for root only (also failure_invalid, failure_valid)
  [allow]  (file only; never banned, see docs/policy.md)
      addresses = ["192.0.2.0/24", "2001:db8::1"]
      login_session = "1d"  how long a login seen only in a log keeps its address allowed
  [lists.NAME]  (file only; one list's settings)
      ip_list_tot, ip_pkt_list_tot, ip_list_perms, ip_list_uid, ip_list_gid
      purge_after = "7d"    remove entries idle longer than this
      on_ban_of = ["SSH"]   each ban from SSH does +ADDR here (escalation by rules)
      ban_multiplier = 2    the n-th ban lasts multiplier**(n-1) times the rule's
      ban_max = "1w"        cap of a multiplied ban
      login = "+" | "-"     what a PAM login does to this list (pam_recent)
      cut_connections = false  a ban also deletes the source's conntrack entries"""
