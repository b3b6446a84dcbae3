"""The one interface every log parser has, and the parsers a ``[[watch]]`` can name.

Rules: a parser is fed records of one input in order (``feed``) and told when the
input ends (``close``); both return the events made, possibly none.  ``"sshd"`` is
built in (it also reads dropbear); other names are user-defined parsers from the
configuration (:mod:`recentd.logs.custom`).  A fresh parser per input: the sshd
parser keeps per-connection state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from recentd.errors import ConfigError
from recentd.logs.custom import CustomParser
from recentd.logs.events import AuthEvent
from recentd.logs.records import LogRecord
from recentd.logs.sshd import SshdParser


class EventParser(Protocol):
    def feed(self, record: LogRecord) -> list[AuthEvent]: ...

    def close(self) -> list[AuthEvent]: ...


BUILTIN_PARSERS = ("sshd",)


def make_parser(name: str, custom: Mapping[str, CustomParser] | None = None) -> EventParser:
    """A new parser called ``name``: built in, or one of the configured ``custom`` ones.

    Raises:
        ConfigError: no parser has that name.
    """
    if name == "sshd":
        return SshdParser()
    if custom and name in custom:
        return custom[name]
    known = ", ".join([*BUILTIN_PARSERS, *sorted(custom or {})])
    raise ConfigError(f"no parser called {name!r} (known: {known})", key="parser", value=name)
