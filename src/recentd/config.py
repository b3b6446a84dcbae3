"""The daemon's options, each declared once, feeding argparse, the TOML file and ``--help``.

Every option is one field of :class:`Config`: its type, default and help text,
and whether it is also a command-line flag. From that single declaration come
the ``recentd run`` flags (:func:`add_arguments`), the keys accepted in
``/etc/recentd/recentd.toml`` (:func:`load_config`), and the help text.

Precedence: built-in default < config file < command line. Errors name the key
and where the value came from (``FILE:LINE`` or ``command line``)::

    # /etc/recentd/recentd.toml
    rules = "/etc/iptables/rules.v4"
    state_dir = "/var/lib/recentd"
    ip_list_tot = 2000
    ip_list_perms = 0o640
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
from recentd.errors import ConfigError
from recentd.recent import ModuleParams

DEFAULT_CONFIG = Path("/etc/recentd/recentd.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
_COMMAND_LINE = "command line"


def _about(help_text: str, *, cli: bool = True, metavar: str | None = None) -> dict[str, Any]:
    """A field's metadata: its help, whether it is a flag, and the flag's metavar."""
    return {"help": help_text, "cli": cli, "metavar": metavar}


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``recentd run`` needs to know; immutable once loaded."""

    rules: Path | None = field(
        default=None, metadata=_about("iptables-style rules file", metavar="FILE")
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
    ip_list_tot: int = field(default=100, metadata=_about("most entries per table", cli=False))
    ip_pkt_list_tot: int = field(
        default=0, metadata=_about("stamps kept per entry (0: sized by rules)", cli=False)
    )
    ip_list_perms: int = field(
        default=0o644, metadata=_about("mode of each table's file", cli=False)
    )
    ip_list_uid: int = field(default=0, metadata=_about("owner of each table's file", cli=False))
    ip_list_gid: int = field(default=0, metadata=_about("group of each table's file", cli=False))

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

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _options() -> tuple[Option, ...]:
    hints = typing.get_type_hints(Config)
    result = []
    for f in dataclasses.fields(Config):
        args = typing.get_args(hints[f.name])
        kind = next((a for a in args if a is not type(None)), hints[f.name])
        result.append(
            Option(f.name, kind, type(None) in args, f.default, f.metadata["help"],
                   f.metadata["cli"], f.metadata["metavar"])
        )  # fmt: skip
    return tuple(result)


OPTIONS: tuple[Option, ...] = _options()
_BY_NAME = {option.name: option for option in OPTIONS}


# ---- argparse -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and every command-line option to ``parser``.

    Flags not given stay absent from the namespace, so the file's values survive.
    """
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE",
        help=f"TOML configuration file (e.g. {DEFAULT_CONFIG}); flags override it",
    )  # fmt: skip
    for option in OPTIONS:
        if option.cli:
            _add_flag(parser, option)


def _add_flag(parser: argparse.ArgumentParser, option: Option) -> None:
    help_text = f"{option.help} (default: {_show(option.default)})"
    if option.kind is bool:
        parser.add_argument(
            option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
            default=argparse.SUPPRESS, help=help_text,
        )  # fmt: skip
        return
    parser.add_argument(
        option.flag, dest=option.name, type=_CLI_TYPES[option.kind], metavar=option.metavar,
        default=argparse.SUPPRESS, help=help_text,
    )  # fmt: skip


def _show(value: Any) -> str:
    return (
        "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


_CLI_TYPES: dict[type, Callable[[str], Any]] = {Path: Path, int: int, str: str}


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options the command line gave (by :func:`add_arguments`' flags)."""
    return {o.name: getattr(args, o.name) for o in OPTIONS if o.cli and hasattr(args, o.name)}


def config_from_args(args: argparse.Namespace) -> Config:
    """``load_config(args.config, <flags given>)``."""
    return load_config(getattr(args, "config", None), overrides_from_args(args))


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
            values[key], origins[key] = _convert(key, value, origin), origin
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
    return {key: (value, f"{path}:{_line_of(text, key)}") for key, value in data.items()}


def _line_of(text: str, key: str) -> int:
    """The line a top-level key is set on (tomllib does not say; 0 when not found)."""
    pattern = re.compile(rf"^[ \t]*(?:{re.escape(key)}|\"{re.escape(key)}\")[ \t]*=", re.MULTILINE)
    found = pattern.search(text) or re.search(rf"^[ \t]*\[{re.escape(key)}\]", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def _convert(key: str, value: Any, origin: str) -> Any:
    option = _BY_NAME.get(key)
    if option is None:
        known = ", ".join(sorted(_BY_NAME))
        raise ConfigError(f"unknown option (known: {known})", key=key, value=value, source=origin)
    if value is None and option.optional:
        return None
    if option.kind is Path and isinstance(value, str | Path) and str(value):
        return Path(value)
    if option.name == "ip_list_perms" and isinstance(value, str) and _is_octal(value):
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
        lines.append(f"  {option.name} = {_show(option.default)}  {where}\n      {option.help}")
    return "\n".join(lines)
