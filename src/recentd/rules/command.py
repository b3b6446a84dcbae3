"""One ``iptables``/``ip6tables`` command line → a :class:`ParsedCommand`.

Rules of the command grammar (iptables 1.8.9's ``do_parse``):

1. Options come in any order; exactly one command (``-A``, ``-I`` …) is required.
2. ``!`` inverts the next option only; it is refused before options that cannot
   be inverted.
3. An option not known to the rule's target or any of its ``-m`` matches, in the
   order they were loaded, loads the protocol's match (``-p tcp --dport 22``
   loads ``-m tcp``) – which is why it is saved as ``-p tcp -m tcp --dport 22``.
4. ``-s``/``-d`` may list several networks; the rule is repeated for each pair.
5. Unsupported matches, targets and options are errors naming what *is*
   supported: the engine never silently ignores part of a rule.
6. A long option may be abbreviated as getopt_long allows: ``--second 500`` is
   ``--seconds 500`` when no other option known at that point (iptables' own, the
   loaded extensions', the protocol's match) starts so; aliases of one option
   (``--dport``/``--destination-port``) are one option. Otherwise it is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from recentd.errors import RuleError
from recentd.rules.extensions import MATCHES, PROTOCOL_MATCHES, TARGETS
from recentd.rules.extensions.base import (
    Extension,
    GivenOption,
    MatchExtension,
    ParseContext,
    TargetExtension,
    check_common,
)
from recentd.rules.ippart import ip_part
from recentd.rules.lexer import Token
from recentd.rules.model import BUILTIN_CHAINS, STANDARD_VERDICTS, IpSpec, Match, Target
from recentd.rules.netaddr import parse_protocol

#: Commands: short form → (long form, how many chain/argument words follow).
COMMANDS: Mapping[str, tuple[str, str]] = {
    "-A": ("--append", "chain"), "-C": ("--check", "chain"), "-I": ("--insert", "chain [rulenum]"),
    "-D": ("--delete", "chain [rulenum]"), "-R": ("--replace", "chain rulenum"),
    "-F": ("--flush", "[chain]"), "-X": ("--delete-chain", "[chain]"),
    "-Z": ("--zero", "[chain]"), "-N": ("--new-chain", "chain"),
    "-P": ("--policy", "chain target"), "-E": ("--rename-chain", "chain newname"),
    "-L": ("--list", "[chain]"), "-S": ("--list-rules", "[chain]"),
}
#: Options of the IP part and the rule: short → long.
RULE_OPTIONS: Mapping[str, str] = {
    "-t": "--table", "-s": "--source", "-d": "--destination", "-i": "--in-interface",
    "-o": "--out-interface", "-p": "--protocol", "-f": "--fragment", "-m": "--match",
    "-j": "--jump", "-g": "--goto", "-w": "--wait", "-W": "--wait-interval",
}
_LONG = {
    **{long: short for short, (long, _) in COMMANDS.items()},
    **{long: short for short, long in RULE_OPTIONS.items()},
    "--src": "-s", "--dst": "-d",
}
#: iptables' other long options, known to getopt (so they make abbreviations ambiguous).
_OTHER_LONG = ("--check", "--version", "--help", "--modprobe", "--set-counters", "--ipv4",
               "--ipv6")
_INVERTIBLE = frozenset(["-s", "-d", "-i", "-o", "-p", "-f"])
_IGNORED = frozenset({"-4", "-6", "-n", "-v", "-x", "--numeric", "--verbose", "--exact",
                      "--line-numbers"})
MAX_CHAIN_NAME = 28


@dataclass
class _Ext:
    """An extension loaded on this command line, with the options given to it."""

    ext: Extension[Any]
    column: int
    given: list[GivenOption] = field(default_factory=list)


@dataclass
class ParsedCommand:
    """A command ready to apply: what to do, where, and the rule(s) it carries."""

    family: int
    table: str
    command: str
    column: int
    words: tuple[str, ...] = ()
    ip_variants: tuple[IpSpec, ...] = ()
    matches: tuple[Match, ...] = ()
    target: Target | None = None

    @property
    def chain(self) -> str:
        return self.words[0] if self.words else ""


@dataclass
class _State:
    family: int
    table: str
    command: str = ""
    command_column: int = 0
    words: list[str] = field(default_factory=list)
    invert: Token | None = None
    ip: dict[str, tuple[str, bool, int]] = field(default_factory=dict)
    matches: list[_Ext] = field(default_factory=list)
    loaded: list[_Ext] = field(default_factory=list)
    target: str = ""
    target_column: int = 0
    goto: bool = False
    target_ext: _Ext | None = None


def supported_list() -> str:
    return ("supported matches: " + ", ".join(sorted(MATCHES)) + "; supported targets: "
            + ", ".join([*STANDARD_VERDICTS, *sorted(TARGETS)]) + ", or a user chain")


def parse_command(tokens: Sequence[Token], family: int, table: str = "filter") -> ParsedCommand:
    """Parse the tokens after the program name.

    Raises:
        RuleError: with ``column`` set to the offending token.
    """
    state = _State(family, table)
    i = 0
    while i < len(tokens):
        i = _step(tokens, i, state)
    if state.invert is not None:
        raise RuleError("`!' must precede an option", column=state.invert.column)
    return _finish(state)


def _take(
    tokens: Sequence[Token], i: int, count: int, option: Token, attached: str | None
) -> list[str]:
    values = [] if attached is None else [attached]
    needed = count - len(values)
    if len(tokens) < i + needed or any(
        not t.quoted and t.text.startswith("-") and len(t.text) > 1 and not t.text[1].isdigit()
        for t in tokens[i : i + needed]
    ):
        raise RuleError(f'option "{option.text}" requires an argument', column=option.column,
                        option=option.text)
    return values + [t.text for t in tokens[i : i + needed]]


def _step(tokens: Sequence[Token], i: int, state: _State) -> int:
    token = tokens[i]
    if token.text == "!" and not token.quoted:
        if state.invert is not None:
            raise RuleError("multiple consecutive ! not allowed", column=token.column)
        state.invert = token
        return i + 1
    name, sep, attached_text = token.text.partition("=") if token.text.startswith("--") else (
        token.text, "", "")
    attached = attached_text if sep else None
    if name.startswith("--") and not token.quoted:
        name = _unabbreviated(name, state)
    short = _LONG.get(name, name)
    if token.quoted or not name.startswith("-") or name == "-":
        raise RuleError(f"Bad argument `{token.text}'", column=token.column, text=token.text)
    if short in COMMANDS:
        return _command(tokens, i + 1, short, token, state)
    if short in RULE_OPTIONS or short in _IGNORED:
        return _rule_option(tokens, i + 1, short, token, attached=attached, state=state)
    return _extension_option(tokens, i + 1, name, token, attached=attached, state=state)


def _unabbreviated(name: str, state: _State) -> str:
    """The long option ``name`` abbreviates (getopt_long), or ``name`` itself."""
    if name in _LONG or name in _IGNORED or any(
            name in loaded.ext.options or name in getattr(loaded.ext, "aliases", {})
            for loaded in state.loaded):
        return name  # the common case, written in full: no table of every option needed
    known: dict[str, object] = {long: ("", short) for long, short in _LONG.items()}
    known.update({long: ("", long) for long in (*_OTHER_LONG, *_IGNORED) if long[1] == "-"})
    for ext in [*(loaded.ext for loaded in state.loaded), *_implicit(state)]:
        aliases: Mapping[str, str] = getattr(ext, "aliases", {})
        for option in [*ext.options, *aliases]:
            known.setdefault(option, (ext.name, aliases.get(option, option)))
    if name in known:
        return name
    found = {long: who for long, who in known.items() if long.startswith(name)}
    return next(iter(found)) if len(set(found.values())) == 1 else name


def _implicit(state: _State) -> list[Extension[Any]]:
    """The protocol's match ``-p`` would load for an unknown option, if not loaded yet."""
    if "-p" not in state.ip or state.ip["-p"][1]:
        return []
    try:
        implicit = PROTOCOL_MATCHES.get((state.family, parse_protocol(state.ip["-p"][0])))
    except RuleError:
        return []
    if implicit is None or implicit in [m.ext.name for m in state.matches]:
        return []
    return [MATCHES[implicit]]


def _command(tokens: Sequence[Token], i: int, short: str, token: Token, state: _State) -> int:
    if state.command:
        raise RuleError(f"Cannot use -{short[1]} with -{state.command[1]}", column=token.column)
    _no_invert(state, token)
    state.command, state.command_column = short, token.column
    shape = COMMANDS[short][1].split()
    for word in shape:
        optional = word.startswith("[")
        if i < len(tokens) and not (tokens[i].text.startswith("-") and not tokens[i].quoted) and (
            tokens[i].text != "!" or tokens[i].quoted
        ):
            if word == "[rulenum]" and not tokens[i].text.isdigit():
                break
            state.words.append(tokens[i].text)
            i += 1
        elif not optional:
            raise RuleError(f"option \"{token.text}\" requires an argument ({' '.join(shape)})",
                            column=token.column, option=token.text)
    return i


def _no_invert(state: _State, token: Token) -> bool:
    inverted = state.invert is not None
    if inverted and token.text not in _INVERTIBLE and _LONG.get(token.text) not in _INVERTIBLE:
        raise RuleError(f"cannot have ! before {token.text}", column=token.column)
    state.invert = None
    return inverted


def _rule_option(tokens: Sequence[Token], i: int, short: str, token: Token, *,
                 attached: str | None, state: _State) -> int:
    inverted = _no_invert(state, token)
    if short in _IGNORED or short in ("-w", "-W"):
        if short in ("-w", "-W") and i < len(tokens) and tokens[i].text.isdigit():
            return i + 1
        return i
    if short == "-f":
        state.ip["-f"] = ("", inverted, token.column)
        return i
    (value,) = _take(tokens, i, 1, token, attached)
    i += 0 if attached is not None else 1
    if short == "-t":
        state.table = value
    elif short == "-m":
        _load_match(value, token.column, state)
    elif short in ("-j", "-g"):
        if state.target:
            raise RuleError("multiple -j flags not allowed", column=token.column)
        # The column of the target's name: iptables' own errors name the target.
        named_at = token.column + len(short) if attached is not None else tokens[i - 1].column
        state.target, state.target_column, state.goto = value, named_at, short == "-g"
        if value in TARGETS and state.family in TARGETS[value].families:
            state.target_ext = _Ext(TARGETS[value], token.column)
            state.loaded.append(state.target_ext)
    else:
        if short in state.ip:
            raise RuleError(f"multiple {short} flags not allowed", column=token.column)
        state.ip[short] = (value, inverted, token.column)
    return i


def _load_match(name: str, column: int, state: _State) -> _Ext:
    ext = MATCHES.get(name)
    if ext is None or state.family not in ext.families:
        raise RuleError(f"unsupported match `{name}'; {supported_list()}", column=column,
                        option="-m")
    loaded = _Ext(ext, column)
    state.matches.append(loaded)
    state.loaded.append(loaded)
    return loaded


def _owner(name: str, state: _State) -> tuple[_Ext, str] | None:
    # libxtables merges each newly loaded extension's options *before* the older
    # ones, so the most recently loaded extension that knows an option gets it.
    for loaded in reversed(state.loaded):
        canonical = getattr(loaded.ext, "aliases", {}).get(name, name)
        if canonical in loaded.ext.options:
            return loaded, canonical
    return None


def _extension_option(tokens: Sequence[Token], i: int, name: str, token: Token, *,
                      attached: str | None, state: _State) -> int:
    found = _owner(name, state)
    if found is None and "-p" in state.ip and not state.ip["-p"][1]:
        proto = parse_protocol(state.ip["-p"][0])
        implicit = PROTOCOL_MATCHES.get((state.family, proto))
        if implicit and implicit not in [m.ext.name for m in state.matches]:
            candidate = MATCHES[implicit]
            canonical = getattr(candidate, "aliases", {}).get(name, name)
            if canonical in candidate.options:
                found = _load_match(implicit, token.column, state), canonical
    if found is None:
        raise RuleError(f"unknown option \"{name}\"; {_option_help(state)}",
                        column=token.column, option=name)
    loaded, canonical = found
    inverted = state.invert is not None
    state.invert = None
    nargs = loaded.ext.options[canonical].nargs
    args = _take(tokens, i, nargs, token, attached) if nargs else []
    loaded.given.append(GivenOption(canonical, tuple(args), inverted, token.column))
    return i + nargs - (1 if attached is not None and nargs else 0)


def _option_help(state: _State) -> str:
    loaded = [*state.matches, *([state.target_ext] if state.target_ext else [])]
    if not loaded:
        return "load the match first with -m NAME; " + supported_list()
    return "options of " + "; ".join(
        f"{m.ext.name}: {', '.join(m.ext.options)}" for m in loaded
    )


def _finish(state: _State) -> ParsedCommand:
    if not state.command:
        raise RuleError("no command specified (one of -A, -C, -I, -D, -R, -F, -X, -Z, -N, -P, -E)")
    if state.table not in BUILTIN_CHAINS:
        raise RuleError(f"unsupported table `{state.table}'; supported: "
                        f"{', '.join(BUILTIN_CHAINS)}", option="-t")
    words = tuple(state.words)
    if words and len(words[0]) > MAX_CHAIN_NAME:
        raise RuleError(f"chain name `{words[0]}' too long (must be under 29 chars)")
    command = ParsedCommand(state.family, state.table, state.command, state.command_column, words)
    if state.command in ("-A", "-C", "-I", "-R") or (state.command == "-D" and len(words) == 1):
        _build_rule(state, command)
    elif state.ip or state.matches or state.target:
        raise RuleError(f"Illegal option with this command ({state.command})")
    return command


def _build_rule(state: _State, command: ParsedCommand) -> None:
    base, srcs, dsts = ip_part(state.ip, state.family, command.chain)
    command.ip_variants = tuple(
        IpSpec(src=s, dst=d, **base) for s in srcs for d in dsts
    )
    ctx = ParseContext(state.family, command.ip_variants[0], state.table, command.chain)
    command.matches = tuple(
        Match(cast(MatchExtension[Any], m.ext), _parse_ext(m, ctx)) for m in state.matches
    )
    command.target = _target(state, ctx)


def _parse_ext(loaded: _Ext, ctx: ParseContext) -> Any:
    columns = {option.name: option.column for option in loaded.given}
    try:
        if loaded.ext.common_checks:
            check_common(loaded.ext, loaded.given)
        return loaded.ext.parse(loaded.given, ctx)
    except RuleError as exc:
        if not exc.column:
            exc.column = columns.get(exc.option, loaded.column)
        raise


def _target(state: _State, ctx: ParseContext) -> Target:
    if state.target_ext is not None:
        ext = state.target_ext.ext
        tables = getattr(ext, "tables", None)
        if tables is not None and state.table not in tables:
            raise RuleError(f"target {ext.name} is only valid in table(s) {', '.join(tables)}",
                            column=state.target_column)
        spec = _parse_ext(state.target_ext, ctx)
        return Target(ext.name, cast(TargetExtension[Any], ext), spec, state.goto,
                      state.target_column)
    return Target(state.target, goto=state.goto, column=state.target_column)
