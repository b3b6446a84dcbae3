"""User-defined parsers for other services, built from configuration (a TOML table).

The configuration a :func:`load_custom_parser` call takes::

    name = "myapp"
    programs = ["myapp"]            # optional: only lines of these programs
    [[pattern]]
    name = "bad-password"
    outcome = "failure"             # "failure", "success" or "probe"
    regex = '^login failed for (?P<user>.*) from (?P<addr>\\S+)$'
    examples = [{ line = "login failed for bob from 192.0.2.7", addr = "192.0.2.7" }]

Rules:

- Each pattern has a named group ``addr``; ``user`` is optional.  Patterns are
  tried in order with :meth:`re.Pattern.search` on the message (the text after the
  syslog header); the first that matches and names a valid address wins.
- Every pattern is checked at load against its examples: each example line must
  match and give exactly the address written beside it.
- A pattern whose address could be fed by attacker text is refused: when text of
  variable length that may hold a space (``.*``, ``[^:]+`` …) precedes the ``addr``
  group the pattern must end with ``$``, and when such text follows it the pattern
  must start with ``^``; with such text on both sides, or with neither anchor, the
  address has no fixed position at all, which is refused too.  The reason is in
  the error.
- Errors are :class:`~recentd.errors.ConfigError` naming the parser and pattern.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recentd.errors import ConfigError
from recentd.logs.address import parse_address
from recentd.logs.events import AuthEvent, Kind, Outcome
from recentd.logs.records import LogRecord
from recentd.logs.sshd_messages import MAX_MESSAGE

# The regex parser is private but stable, and the only way to see a pattern's
# structure; imported by name because typeshed does not describe it.
_sre: Any = importlib.import_module("re._parser")
_const: Any = importlib.import_module("re._constants")

_SPACE = ord(" ")
_SPACE_CATEGORIES = {"CATEGORY_SPACE", "CATEGORY_NOT_DIGIT", "CATEGORY_NOT_WORD"}


@dataclass(frozen=True, slots=True)
class CustomPattern:
    name: str
    outcome: Outcome
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class CustomParser:
    """A configured parser: no connection state, one event per matching line."""

    name: str
    patterns: tuple[CustomPattern, ...]
    programs: frozenset[str] | None = None

    def feed(self, record: LogRecord) -> list[AuthEvent]:
        if self.programs is not None and record.program not in self.programs:
            return []
        found = self.match(record.message)
        if found is None:
            return []
        pattern, address, user = found
        return [
            AuthEvent(
                pattern.outcome, address, record.time, Kind.CUSTOM, record.line, user, False,
                record.program or "", record.pid, record.host,
            )
        ]

    def close(self) -> list[AuthEvent]:
        return []

    def match(self, message: str) -> tuple[CustomPattern, Any, str | None] | None:
        """The first pattern matching ``message`` with its address and user."""
        if len(message) > MAX_MESSAGE:
            return None  # no service writes such lines; a user's regex may backtrack on them
        for pattern in self.patterns:
            found = pattern.regex.search(message)
            if found is None:
                continue
            address = parse_address(found.group("addr") or "")
            if address is not None:
                return pattern, address, found.groupdict().get("user")
        return None


def load_custom_parser(config: Mapping[str, Any], *, source: str = "") -> CustomParser:
    """Build and check a parser from its configuration table.

    Raises:
        ConfigError: a missing or wrong key, a regex that does not compile, has no
            ``addr`` group or lets attacker text choose the address, or an example
            that does not give its address.
    """
    name = _text(config, "name", "parser", source)
    raw_patterns = config.get("pattern")
    if not isinstance(raw_patterns, Sequence) or isinstance(raw_patterns, str) or not raw_patterns:
        raise ConfigError("needs at least one [[pattern]]", key=f"parser {name}", source=source)
    patterns = tuple(_pattern(name, raw, source) for raw in raw_patterns)
    programs = config.get("programs")
    if programs is not None and (
        isinstance(programs, str)
        or not isinstance(programs, Sequence)
        or not all(isinstance(p, str) for p in programs)
    ):
        raise ConfigError("programs must be a list of names", key=f"parser {name}",
                          value=programs, source=source)
    return CustomParser(name, patterns, frozenset(programs) if programs is not None else None)


def _text(table: Mapping[str, Any], key: str, where: str, source: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string", key=f"{where}.{key}",
                          value=value, source=source)
    return value


def _pattern(parser: str, raw: Any, source: str) -> CustomPattern:
    if not isinstance(raw, Mapping):
        raise ConfigError("a pattern is a table", key=f"parser {parser}", value=raw, source=source)
    name = _text(raw, "name", f"parser {parser} pattern", source)
    where = f"parser {parser} pattern {name}"
    outcome_text = _text(raw, "outcome", where, source)
    try:
        outcome = Outcome(outcome_text)
    except ValueError:
        raise ConfigError("outcome must be failure, success or probe", key=where,
                          value=outcome_text, source=source) from None
    text = _text(raw, "regex", where, source)
    try:
        regex = re.compile(text)
    except re.error as exc:
        raise ConfigError(f"regex does not compile: {exc}", key=where, value=text,
                          source=source) from None
    reason = injection_risk(text)
    if reason:
        raise ConfigError(f"refused: {reason}", key=where, value=text, source=source)
    pattern = CustomPattern(name, outcome, regex)
    _check_examples(pattern, raw.get("examples"), where, source)
    return pattern


def _check_examples(pattern: CustomPattern, examples: Any, where: str, source: str) -> None:
    if not isinstance(examples, Sequence) or isinstance(examples, str) or not examples:
        raise ConfigError("needs examples: [{line = …, addr = …}, …]", key=where, source=source)
    probe = CustomParser("check", (pattern,))
    for example in examples:
        if not isinstance(example, Mapping):
            raise ConfigError("an example is a table {line, addr}", key=where, value=example,
                              source=source)
        line, expected = example.get("line"), example.get("addr")
        found = probe.match(line) if isinstance(line, str) else None
        wanted = parse_address(expected) if isinstance(expected, str) else None
        if wanted is None:
            raise ConfigError("example addr is not an IP address", key=where, value=expected,
                              source=source)
        if found is None or found[1] != wanted:
            got = "no match" if found is None else f"address {found[1]}"
            raise ConfigError(f"example {line!r} gives {got}, not {wanted}", key=where,
                              value=line, source=source)


def injection_risk(regex: str) -> str:
    """Why ``regex``'s ``addr`` group could be fed by attacker text ("" if it cannot)."""
    parsed = _sre.parse(regex)
    items = list(parsed)
    index = _addr_index(items, parsed.state.groupdict.get("addr"))
    if index is None:
        return "no named group 'addr' at the top level of the pattern"
    before, after = items[:index], items[index + 1 :]
    free_before, free_after = _free(before), _free(after)
    starts = bool(items) and _is_at(items[0], "AT_BEGINNING", "AT_BEGINNING_STRING")
    ends = bool(items) and _is_at(items[-1], "AT_END", "AT_END_STRING")
    if free_before and free_after:
        return ("free text (which an attacker may fill) both before and after (?P<addr>…): "
                "the address has no fixed position")
    if free_before and not ends:
        return ("free text before (?P<addr>…) without a $ anchor at the end: an attacker's "
                "'from 1.2.3.4' in that text could be taken as the address")
    if free_after and not starts:
        return ("free text after (?P<addr>…) without a ^ anchor at the start: a match "
                "could begin inside attacker text")
    if not starts and not ends:
        return ("neither ^ nor $: the pattern may match inside attacker text anywhere "
                "in the line; anchor it where the service writes the address")
    return ""


def _addr_index(items: list[Any], number: int | None) -> int | None:
    for index, (op, av) in enumerate(items):
        if number is not None and str(op) == "SUBPATTERN" and av[0] == number:
            return index
    return None


def _is_at(item: tuple[Any, Any], *names: str) -> bool:
    op, av = item
    return str(op) == "AT" and str(av) in names


def _free(items: Any) -> bool:
    """Whether ``items`` can match text of variable length holding a space."""
    for op, av in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            if (high is _const.MAXREPEAT or high > low) and _spacey(sub):
                return True
            if _free(sub):
                return True
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            if _free(av[-1]):
                return True
        elif name == "BRANCH" and any(_free(branch) for branch in av[1]):
            return True
    return False


def _spacey(items: Any) -> bool:
    """Whether ``items`` can match a space (or a line break) somewhere."""
    return any(_item_spacey(str(op), av) for op, av in items)


def _item_spacey(name: str, av: Any) -> bool:
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return _spacey(av[2])
    if name in ("SUBPATTERN", "ATOMIC_GROUP"):
        return _spacey(av[-1])
    if name == "BRANCH":
        return any(_spacey(branch) for branch in av[1])
    return (
        name == "ANY"
        or (name == "LITERAL" and av == _SPACE)
        or (name == "NOT_LITERAL" and av != _SPACE)
        or (name == "IN" and _set_has_space(av))
    )


def _set_has_space(members: list[tuple[Any, Any]]) -> bool:
    negated = bool(members) and str(members[0][0]) == "NEGATE"
    has = False
    for op, av in members[1:] if negated else members:
        name = str(op)
        has = has or (
            (name == "LITERAL" and av == _SPACE)
            or (name == "RANGE" and av[0] <= _SPACE <= av[1])
            or (name == "CATEGORY" and str(av) in _SPACE_CATEGORIES)
        )
    return has != negated
