"""Split one line of rule text into tokens, as a POSIX shell would for iptables.

Rules of the lexer:

1. Words split on unquoted blanks (space, tab, newline: a carriage return is part
   of a word, for the shell and for iptables-restore alike); ``'…'`` is literal,
   ``"…"`` honours ``\\"``, ``\\\\``, ``\\$`` and ``\\``` only, and an unquoted
   backslash escapes the next character (how ``--log-prefix "SSH: "`` and
   ``--comment 'a b'`` reach iptables).
2. Each token keeps the 1-based column where it starts, so errors can point at it.
3. Without the script's variables nothing is expanded. With them (kept by
   :mod:`recentd.rules.shell`), ``$NAME``, ``${NAME}`` and ``${NAME:-word}`` (``-``,
   ``:=``, ``=``) are, in double quotes as one word and unquoted split on blanks, as
   the shell does; a value that cannot be known (unset, :class:`Unknown`), command
   substitution, positional and special parameters and other ``${…}`` forms are an
   :class:`UnresolvedError` at the ``$``. Globs stay literal (we never run a shell).
   A word starting with ``#`` starts a comment, as in the shell.
4. Typographic dashes (``–`` en, ``—`` em, ``−`` minus) at the start of an *unquoted*
   token are what a word processor makes of ``--``. They are rewritten to ASCII
   dashes and reported, so a pasted recipe still yields the rules it meant.
5. Text is bytes as iptables takes them: a file is decoded as UTF-8 with
   ``surrogateescape`` (:data:`FILE_ENCODING`), so a byte that is not UTF-8 (a
   Latin-1 ``ü``) is a lone surrogate in the text and :func:`wire_bytes` gives the
   same byte back. Every length iptables checks is a length of those bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from recentd.errors import RuleError

#: Characters a word processor substitutes for a typed ``-`` or ``--``.
TYPOGRAPHIC_DASHES = "\u2013\u2014\u2212"
_DOUBLE_QUOTE_ESCAPES = '"\\$`'
#: How a rule file's bytes become text, and back: one definition for reading and writing.
FILE_ENCODING = "utf-8"
FILE_ERRORS = "surrogateescape"
_FOREIGN = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def wire_bytes(text: str) -> bytes:
    """The bytes iptables would hold for ``text`` (rule text read with :data:`FILE_ERRORS`)."""
    return text.encode(FILE_ENCODING, FILE_ERRORS)


def wire_cut(text: str, size: int) -> str:
    """``text`` cut to its first ``size`` bytes, as a fixed-size C field holds it.

    A character cut in half stays as its first bytes (escaped), exactly what the
    kernel keeps.
    """
    return wire_bytes(text)[:size].decode(FILE_ENCODING, FILE_ERRORS)


def foreign_character(text: str) -> int:
    """Index of the first character no file can hold (a surrogate outside the escape
    range, only possible in text handed to the API), or -1."""
    found = _FOREIGN.search(text)
    return found.start() if found else -1


@dataclass(frozen=True, slots=True)
class Token:
    """One shell word: its text after quote removal, its column, and whether any
    part of it was quoted (a quoted ``!`` or ``-`` is data, not syntax)."""

    text: str
    column: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Unknown:
    """A variable the script sets in a way recentd cannot follow; ``why`` says how."""

    why: str


#: The script's variables so far: a value, or why its value cannot be known.
Variables = Mapping[str, "str | Unknown"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}")
#: ``$(which iptables)`` and its spellings: the one command substitution with a known answer.
_WHICH = re.compile(r"(\"?)(?:\$\(|`)\s*(?:which|command\s+-v|type\s+-P)\s+([\w./-]+)\s*[)`]\1"
                    r"(?=[\s;]|$)")
_BLANKS = " \t\n"  # the shell's IFS; a carriage return is part of a word, as in the shell
_PLAIN_WORD = re.compile(f"[^{_BLANKS}]+")
#: Characters that make the shell do more than split on blanks.
_SHELL_SYNTAX = re.compile(r"[\"'\\$`#]")


class UnresolvedError(RuleError):
    """A ``$`` expansion whose value recentd cannot know (column of the ``$``)."""


def tokenize(line: str, variables: Variables | None = None) -> list[Token]:
    """Split ``line`` into shell words; with ``variables``, expand ``$NAME``/``${NAME}``
    as the shell would (unquoted expansions are split into words).

    Raises:
        RuleError: an unterminated quote (column of the opening quote); an expansion
            that cannot be resolved (:class:`UnresolvedError`, column of the ``$``).
    """
    if _SHELL_SYNTAX.search(line) is None:  # most lines: plain words, found at C speed
        return [Token(found.group(), found.start() + 1) for found in _PLAIN_WORD.finditer(line)]
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in _BLANKS:
            i += 1
            continue
        if line[i] == "#":
            break  # a shell comment runs to the end of the line
        start = i
        segments, i = _word(line, i, variables)
        tokens.extend(Token(text, start + 1, quoted) for text, quoted in _fields(segments))
    return tokens


def expand_word(line: str, start: int, variables: Variables) -> tuple[str, int]:
    """The one word at ``start`` expanded without splitting (an assignment's value),
    and where it ends."""
    segments, end = _word(line, start, variables)
    return "".join(text for text, _, _ in segments), end


def which(line: str, start: int) -> tuple[str, int] | None:
    """``$(which NAME)`` (or `` `which NAME` ``, ``command -v``) at ``start``: NAME, and
    where the word ends. The one command substitution whose answer needs no shell."""
    found = _WHICH.match(line, start)
    return (found.group(2), found.end()) if found else None


#: A piece of a word: its text, whether the shell splits it into words (an
#: unquoted expansion), and whether it was quoted.
_Segment = tuple[str, bool, bool]


def _word(line: str, i: int, variables: Variables | None) -> tuple[list[_Segment], int]:
    segments: list[_Segment] = []
    n = len(line)
    while i < n and line[i] not in _BLANKS:
        char = line[i]
        if char == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise RuleError("unterminated single quote", column=i + 1, text=line)
            segments.append((line[i + 1 : end], False, True))
            i = end + 1
        elif char == '"':
            i = _double_quoted(line, i, variables, segments)
        elif char == "\\" and i + 1 < n:
            segments.append((line[i + 1], False, True))
            i += 2
        elif variables is not None and char in "$`":
            value, i = _expansion(line, i, variables)
            segments.append((value, value != "$", False))
        else:
            segments.append((char, False, False))
            i += 1
    return segments, i


def _fields(segments: list[_Segment]) -> list[tuple[str, bool]]:
    """Join a word's pieces into words, splitting unquoted expansions on blanks."""
    fields: list[tuple[str, bool]] = []
    current: str | None = None
    quoted = False
    for text, split, was_quoted in segments:
        pieces = re.split(f"[{_BLANKS}]+", text) if split else [text]
        for index, piece in enumerate(pieces):
            if index and current is not None:
                fields.append((current, quoted))
                current, quoted = None, False
            if piece or not split:
                current = (current or "") + piece
                quoted = quoted or was_quoted
    if current is not None:
        fields.append((current, quoted))
    return fields


def _double_quoted(line: str, start: int, variables: Variables | None,
                   segments: list[_Segment]) -> int:
    parts: list[str] = []
    i = start + 1
    while i < len(line):
        char = line[i]
        if char == '"':
            segments.append(("".join(parts), False, True))
            return i + 1
        if char == "\\" and i + 1 < len(line) and line[i + 1] in _DOUBLE_QUOTE_ESCAPES:
            parts.append(line[i + 1])
            i += 2
            continue
        if variables is not None and char in "$`":
            value, i = _expansion(line, i, variables)
            parts.append(value)
            continue
        parts.append(char)
        i += 1
    raise RuleError("unterminated double quote", column=start + 1, text=line)


def _expansion(line: str, i: int, variables: Variables) -> tuple[str, int]:
    """The value of the ``$…`` (or backquote) at ``i``, and where it ends."""
    rest = line[i + 1 :]
    if line[i] == "`" or rest.startswith("("):
        raise UnresolvedError("command substitution: recentd does not run commands; "
                              "set the value in the script, or give the iptables-save output",
                              column=i + 1, text=line)
    if rest.startswith("{"):
        braced = _BRACED.match(rest)
        if braced is None:
            raise UnresolvedError(f"`${rest.split('}')[0]}}}': only ${{NAME}} and "
                                  "${NAME:-default} are followed", column=i + 1, text=line)
        name, operator, default = braced.groups()
        return _value((name, operator, default), variables, i, line), i + 1 + braced.end()
    plain = _NAME.match(rest)
    if plain is not None:
        return _value((plain.group(), None, None), variables, i, line), i + 1 + plain.end()
    if rest[:1] and rest[0] in "0123456789@*#?$!-":
        raise UnresolvedError(f"`${rest[0]}' is set when the script runs, not in it",
                              column=i + 1, text=line)
    return "$", i + 1


def _value(parameter: tuple[str, str | None, str | None], variables: Variables, i: int,
           line: str) -> str:
    """``${NAME}``, or ``${NAME:-default}`` (``operator`` ``:-``/``-``/``:=``/``=``)."""
    name, operator, default = parameter
    value = variables.get(name)
    if isinstance(value, Unknown):
        raise UnresolvedError(f"cannot resolve `${name}': {value.why}; recentd does not run "
                              "the shell: give it the iptables-save output of the script",
                              column=i + 1, text=line)
    if operator is not None and (value is None or (operator.startswith(":") and not value)):
        return default or ""
    if value is None:
        raise UnresolvedError(f"cannot resolve `${name}': the script does not set it before "
                              "this line (recentd does not run the shell)", column=i + 1,
                              text=line)
    return value


def tokenize_restore(line: str) -> list[Token]:
    """Split an iptables-restore line as iptables-restore does (not as a shell would).

    Only double quotes group words; inside them a backslash takes the next
    character literally; outside them backslashes and single quotes are ordinary.
    This is how ``--comment "it\\'s"`` written by iptables-save reads back as ``it's``.
    """
    if '"' not in line:  # most lines: plain words, found at C speed
        return [Token(found.group(), found.start() + 1) for found in _PLAIN_WORD.finditer(line)]
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in _BLANKS:
            i += 1
            continue
        start, parts, quoted = i, [], False
        while i < n and line[i] not in _BLANKS:
            if line[i] == '"':
                text, i = _restore_quoted(line, i)
                parts.append(text)
                quoted = True
            else:
                parts.append(line[i])
                i += 1
        tokens.append(Token("".join(parts), start + 1, quoted))
    return tokens


def _restore_quoted(line: str, start: int) -> tuple[str, int]:
    parts: list[str] = []
    i = start + 1
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            parts.append(line[i + 1])
            i += 2
        elif line[i] == '"':
            return "".join(parts), i + 1
        else:
            parts.append(line[i])
            i += 1
    raise RuleError("unterminated double quote", column=start + 1, text=line)


def fix_dashes(token: Token) -> Token | None:
    """The ASCII spelling of a token that starts with typographic dashes, else None.

    ``–dport`` was typed as ``--dport``; ``–j`` (one letter) as ``-j``.
    """
    if token.quoted or not token.text or token.text[0] not in TYPOGRAPHIC_DASHES:
        return None
    name = token.text.lstrip("-" + TYPOGRAPHIC_DASHES)
    if not name:
        return None
    dashes = "-" if len(name) == 1 else "--"
    return Token(dashes + name, token.column, token.quoted)


def corrected_line(line: str, fixes: list[tuple[Token, Token]]) -> str:
    """``line`` with each fixed token's leading dashes replaced in place."""
    out = line
    for old, new in sorted(fixes, key=lambda pair: -pair[0].column):
        start = old.column - 1
        prefix_len = len(old.text) - len(old.text.lstrip("-" + TYPOGRAPHIC_DASHES))
        new_prefix = new.text[: len(new.text) - len(old.text) + prefix_len]
        out = out[:start] + new_prefix + out[start + prefix_len :]
    return out
