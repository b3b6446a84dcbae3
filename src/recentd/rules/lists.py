"""Shell lists on one script line, as the shell runs them: ``;``, ``&&``, ``||``.

Rules (the idioms admins write to make a firewall script re-runnable):

1. A line is cut at each ``;``, ``&&`` and ``||`` outside quotes; each part keeps its
   columns (the rest of the line is blanked, not removed), so errors still point
   into the line as written.
2. Redirections (``2>/dev/null``, ``>/dev/null 2>&1``, ``&>/dev/null``) change no
   rule and are blanked too.
3. The parts run left to right with the shell's short-circuit: after ``&&`` only if
   the last status was success, after ``||`` only if it was failure. A status comes
   from ``true``/``:`` (success), ``false`` (failure), or an iptables command:
   failure when the command is valid but the rule set refuses it as it stands
   (``-C`` finds no such rule, ``-N`` an existing chain, ``-D`` no such rule) —
   never when the command itself is invalid: that stays an error, as a rule
   recentd cannot read must never be skipped silently.

Pure text in, parts out; :mod:`recentd.rules.parser` runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REDIRECT = re.compile(r"^(?:\d*|&)>>?(?:&\d+|[^\s]+)?$")
_OPERATORS = ("&&", "||", ";")


@dataclass(frozen=True, slots=True)
class Part:
    """One command of a list: the operator before it ("" for the first) and its text,
    as long as the whole line with everything else blanked."""

    operator: str
    text: str


def split_list(line: str) -> list[Part] | None:
    """The parts of ``line``, or None when it holds no list operator outside quotes."""
    if ";" not in line and "&&" not in line and "||" not in line:
        return None  # most lines: no scan
    cuts: list[tuple[int, int, str]] = []
    quote, index = "", 0
    while index < len(line):
        char = line[index]
        if quote:
            quote = "" if char == quote else quote
        elif char == "\\":
            index += 1
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            break
        else:
            op = next((op for op in _OPERATORS if line.startswith(op, index)), None)
            if op is not None:
                cuts.append((index, index + len(op), op))
                index += len(op)
                continue
        index += 1
    if not cuts:
        return None
    bounds = [(0, "")] + [(end, op) for _, end, op in cuts]
    ends = [start for start, _, _ in cuts] + [len(line)]
    return [Part(op, blank_redirects(" " * start + line[start:stop] + " " * (len(line) - stop)))
            for (start, op), stop in zip(bounds, ends, strict=True)]


def silences_errors(line: str) -> bool:
    """Whether ``line`` sends its errors away (``2>/dev/null``, ``&>…``): the admin
    expects it may fail, and the shell goes on either way."""
    if ">" not in line:
        return False
    return any(_REDIRECT.match(word) and word.startswith(("2>", "&>"))
               for word in _unquoted_words(line))


def _unquoted_words(text: str) -> list[str]:
    return [match.group() for match in _words_outside_quotes(text)]


def _words_outside_quotes(text: str) -> list[re.Match[str]]:
    found = []
    for match in re.finditer(r"\S+", text):
        before = text[:match.start()]
        if before.count('"') % 2 == 0 and before.count("'") % 2 == 0 and not (
                set(match.group()) & {'"', "'"}):
            found.append(match)
    return found


def blank_redirects(text: str) -> str:
    """``text`` with its redirections (outside quotes) replaced by spaces."""
    if ">" not in text:
        return text
    out, blank_next = text, False
    for match in _words_outside_quotes(text):
        word = match.group()
        if blank_next or _REDIRECT.match(word):
            blank_next = word in (">", ">>", "2>", "2>>", "&>", "1>")
            out = out[:match.start()] + " " * len(word) + out[match.end():]
    return out
