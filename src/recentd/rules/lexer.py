"""Split one line of rule text into tokens, as a POSIX shell would for iptables.

Rules of the lexer:

1. Words split on unquoted blanks; ``'…'`` is literal, ``"…"`` honours ``\\"``,
   ``\\\\``, ``\\$`` and ``\\``` only, and an unquoted backslash escapes the next
   character (how ``--log-prefix "SSH: "`` and ``--comment 'a b'`` reach iptables).
2. Each token keeps the 1-based column where it starts, so errors can point at it.
3. Nothing is expanded: ``$VAR`` and globs stay literal, because we never run a shell.
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


def tokenize(line: str) -> list[Token]:
    """Split ``line`` into shell words.

    Raises:
        RuleError: an unterminated quote (column of the opening quote).
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in " \t\r\n":
            i += 1
            continue
        if line[i] == "#":
            break  # a shell comment runs to the end of the line
        start = i
        text, i, quoted = _word(line, i)
        tokens.append(Token(text, start + 1, quoted))
    return tokens


def _word(line: str, i: int) -> tuple[str, int, bool]:
    parts: list[str] = []
    quoted = False
    n = len(line)
    while i < n and line[i] not in " \t\r\n":
        char = line[i]
        if char == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise RuleError("unterminated single quote", column=i + 1, text=line)
            parts.append(line[i + 1 : end])
            i, quoted = end + 1, True
        elif char == '"':
            text, i = _double_quoted(line, i)
            parts.append(text)
            quoted = True
        elif char == "\\" and i + 1 < n:
            parts.append(line[i + 1])
            i, quoted = i + 2, True
        else:
            parts.append(char)
            i += 1
    return "".join(parts), i, quoted


def _double_quoted(line: str, start: int) -> tuple[str, int]:
    parts: list[str] = []
    i = start + 1
    while i < len(line):
        char = line[i]
        if char == '"':
            return "".join(parts), i + 1
        if char == "\\" and i + 1 < len(line) and line[i + 1] in _DOUBLE_QUOTE_ESCAPES:
            parts.append(line[i + 1])
            i += 2
            continue
        parts.append(char)
        i += 1
    raise RuleError("unterminated double quote", column=start + 1, text=line)


def tokenize_restore(line: str) -> list[Token]:
    """Split an iptables-restore line as iptables-restore does (not as a shell would).

    Only double quotes group words; inside them a backslash takes the next
    character literally; outside them backslashes and single quotes are ordinary.
    This is how ``--comment "it\\'s"`` written by iptables-save reads back as ``it's``.
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in " \t\r\n":
            i += 1
            continue
        start, parts, quoted = i, [], False
        while i < n and line[i] not in " \t\r\n":
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
