"""What the shell would make of a script's lines, as far as recentd follows it.

Rules (recentd never runs a shell; it follows only what a reader can be sure of):

1. **Variables.** A line of simple assignments (``NAME=value``, after ``export``,
   ``readonly``, ``declare``, ``typeset`` or ``local``) at the top level sets them,
   values expanded as the shell would (plain assignments left to right; a keyword's
   arguments all before it runs); ``$(which NAME)`` (or
   ``command -v``, backquotes) is ``NAME``. ``NAME=value command`` sets nothing
   (the value is that command's only).
2. **Values recentd cannot know** are kept as :class:`~recentd.rules.lexer.Unknown`,
   with why: set inside an ``if``/loop/``case``/function body (the nesting is
   followed by its keywords), by ``for``/``select``/``read``, after ``&&``/``||``/``;``,
   or by a command substitution. Using one is an error at its ``$``.
3. **Commands recentd does not follow** are refused, by the parser, from
   :meth:`Shell.refuse_hidden_rules`: an ``iptables`` word (or a variable holding one)
   at a command position inside a construct (after ``&&``, ``||``, ``;``, ``|``,
   ``then``, ``do``, ``if``, ``!`` …) followed by an option, and an unquoted
   ``-j TARGET`` on a line whose command is not iptables (``firewall-cmd --direct``,
   a restore line outside a section). Quoted text (``echo "… -j DROP"``) is data.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from recentd.errors import RuleError
from recentd.rules.command import COMMANDS
from recentd.rules.lexer import Token, Unknown, UnresolvedError, expand_word, tokenize, which

#: A command as the shell names it: iptables or ip6tables, any path and variant.
PROGRAM = re.compile(r"^(?:.*/)?(ip6?)tables(?:-legacy|-nft)?$")
#: A word as the shell splits a line (on blanks; every other character is part of a word).
SHELL_WORD = re.compile(r"[^ \t\n]+")
#: Words after which the shell expects a command: an iptables word there runs conditionally.
_COMMAND_POSITION = frozenset({"&&", "||", ";", "|", "then", "do", "else", "elif", "if",
                               "while", "until", "!", "{", "(", "exec", "command", "time",
                               "nohup", "xargs", "eval"})
_SEPARATOR_ENDINGS = (";", "&&", "||", "|")
_BLOCK_OPENERS = {"if": "fi", "for": "done", "while": "done", "until": "done", "case": "esac",
                  "select": "done"}
_BLOCK_CLOSERS = frozenset({"fi", "done", "esac", "}"})
_FUNCTION = re.compile(r"^\s*(?:function\s+[\w-]+|[\w-]+\s*\(\s*\))\s*(?:\(\s*\)\s*)?\{")
_ASSIGNMENT = re.compile(r"(?:(?:export|readonly|declare|typeset|local)(?:\s+-\w+)*\s+)?"
                         r"(?=[A-Za-z_]\w*=)")
_NAME_EQ = re.compile(r"([A-Za-z_]\w*)=")


def _carried_rule(words: Sequence[Token], jump: Token, target: str) -> RuleError:
    """A ``-j TARGET`` on a line whose command is not iptables: a rule recentd would miss."""
    first = words[0]
    if first.text in COMMANDS or first.text.startswith("--"):
        return RuleError("an iptables-restore rule line outside a `*TABLE' ... COMMIT section; "
                         "put it in one, or write it as an iptables command", column=first.column)
    return RuleError(f"`{jump.text} {target}': a rule given to `{first.text}', which recentd "
                     "does not read; write it as an iptables command or give recentd the "
                     "iptables-save output", column=jump.column)


def _at_command_position(before: str) -> bool:
    return before in _COMMAND_POSITION or before.endswith(_SEPARATOR_ENDINGS)


@dataclass
class Shell:
    """The script's variables and block nesting so far."""

    variables: dict[str, str | Unknown] = field(default_factory=dict)
    depth: int = 0

    def track_blocks(self, words: Sequence[str], stripped: str, number: int) -> None:
        """Follow if/loop/function nesting and the variables loops and ``read`` set."""
        first = words[0]
        if first in _BLOCK_OPENERS and _BLOCK_OPENERS[first] not in words:
            self.depth += 1
        elif first in _BLOCK_CLOSERS:
            self.depth = max(0, self.depth - 1)
        elif _FUNCTION.match(stripped) and "}" not in words:
            self.depth += 1
        if first in ("for", "select") and len(words) > 1:
            self.variables[words[1]] = Unknown(f"set by a `{first}' loop (line {number})")
        if first == "read":
            for name in words[1:]:
                if not name.startswith("-"):
                    self.variables[name] = Unknown(f"read from input (line {number})")
        for before, word in itertools.pairwise(words):
            assigned = _NAME_EQ.match(word)
            if assigned and _at_command_position(before):
                self.variables[assigned.group(1)] = Unknown(
                    f"set only when a shell construct runs it (line {number})")

    def assignments(self, line: str, number: int) -> bool:
        """Record ``NAME=value`` words that start the line; True if that is all it does."""
        found = _ASSIGNMENT.match(line.lstrip(" \t"))
        if found is None:
            return False
        i = len(line) - len(line.lstrip(" \t")) + found.end()
        # Plain assignments see each other left to right; `export A=1 B=$A' expands its
        # arguments before export runs, so B sees the old A (as bash does).
        scope = dict(self.variables)
        seen = scope if not found.group() else dict(self.variables)
        names: list[str] = []
        while (name := _NAME_EQ.match(line, i)) is not None:
            names.append(name.group(1))
            scope[name.group(1)], i = self._value(seen, line, name.end(), number)
            while i < len(line) and line[i] in " \t":
                i += 1
        rest = line[i:].strip(" \t")
        if rest and not rest.startswith("#") and not found.group():
            return False  # `NAME=value command …`: the value is for that command only
        for assigned in names:
            self.variables[assigned] = scope[assigned] if self.depth == 0 else Unknown(
                f"set inside an if, loop or function (line {number})")
        return True

    @staticmethod
    def _value(scope: dict[str, str | Unknown], line: str, start: int,
               number: int) -> tuple[str | Unknown, int]:
        named = which(line, start)
        if named is not None:
            return named
        try:
            return expand_word(line, start, scope)
        except UnresolvedError as exc:
            return Unknown(f"{exc.message} (line {number})"), len(line)

    def refuse_hidden_rules(self, line: str) -> None:
        """Refuse a line that is not an iptables command but evidently runs or carries one.

        Only unquoted words count; a line the shell could not split (an apostrophe in
        prose) is prose.

        Raises:
            RuleError: at the word recentd does not follow.
        """
        try:
            words = [token for token in tokenize(line) if not token.quoted]
        except RuleError:
            return
        for index, token in enumerate(words):
            before = words[index - 1].text if index else ""
            after = words[index + 1].text if index + 1 < len(words) else ""
            if index and _at_command_position(before) and after.startswith("-"):
                start = token.column - 1 + len(token.text) - len(token.text.lstrip("({"))
                if PROGRAM.match(self.program_at(line, start)):
                    raise RuleError(f"`{token.text}' runs only inside a shell construct (after "
                                    f"`{before}') that recentd does not follow; put the command "
                                    "on a line of its own, or give recentd the iptables-save "
                                    "output", column=token.column)
            if token.text in ("-j", "--jump") and after:
                raise _carried_rule(words, token, after)

    def program_at(self, line: str, start: int) -> str:
        """The command the word at ``start`` runs (a variable expanded)."""
        words = SHELL_WORD.findall(expand_word(line, start, self.variables)[0])
        return words[0] if words else ""
