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

Scalar options are declared once as :class:`Config` fields (:data:`OPTIONS`); tables of
tables (``[[watch]]``) each have one reader (:data:`_TABLES`), and the file is checked
against both: an unknown key is an error naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from recentd.observation import Action, Evidence, Route
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


@dataclass(frozen=True, slots=True)
class Watch:
    """One ``[[watch]]`` table: where evidence comes from and which lists it writes.

    Attributes:
        source: ``"journal"``, ``"-"`` (standard input) or a log file's absolute path.
        parser: how its lines are read (:data:`PARSERS`).
        failure: each counted failed attempt does ``+ADDR`` on this list (at the line's time).
        success: a successful login does ``-ADDR`` on this list (DenyHosts' RESET_ON_SUCCESS).
        origin: ``FILE:LINE`` of the table, for messages.
    """

    source: str
    parser: str = "sshd"
    failure: str | None = None
    success: str | None = None
    origin: str = ""

    def routes(self) -> tuple[Route, ...]:
        """What the entry's evidence does to the lists."""
        routes = []
        if self.failure:
            routes.append(Route(Evidence.AUTH_FAILURE, self.failure, Action.ADD))
        if self.success:
            routes.append(Route(Evidence.AUTH_SUCCESS, self.success, Action.REMOVE))
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
        if key in _TABLES and isinstance(value, list):
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


# ---- arrays of tables -----------------------------------------------------------------


def _watches(value: Any, origin: str) -> tuple[Watch, ...]:
    """``[[watch]]`` tables as :class:`Watch` values (each checked, errors at its line)."""
    if not isinstance(value, list):
        raise ConfigError("expected [[watch]] tables", key="watch", value=value, source=origin)
    return tuple(_watch(entry, where) for entry, where in value)


_WATCH_KEYS = ("source", "parser", "failure", "success")


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
    if not entry.get("failure") and not entry.get("success"):
        raise fail("writes no list: give failure = LIST and/or success = LIST")
    for key in ("failure", "success"):
        if key in entry:
            try:
                check_table_name(entry[key])
            except RecentOptionError as exc:
                raise fail(exc.message, f"watch.{key}", entry[key]) from None
    return Watch(source, parser, entry.get("failure"), entry.get("success"), origin)


#: Readers of the arrays of tables, by key.
_TABLES: dict[str, Callable[[Any, str], Any]] = {"watch": _watches}


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
      success = "LIST"      a successful login: -ADDR on LIST"""
