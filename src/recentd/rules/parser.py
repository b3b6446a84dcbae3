"""Rule text → :class:`Ruleset`: iptables-save files, shell scripts, or both mixed.

Rules of the file format (one loop over the lines a ``\\n`` ends; both forms may be mixed):

1. **Save files, byte for byte as iptables-restore 1.8.9 reads them.** ``*TABLE``
   at the start of a line opens a section and a line that is exactly ``COMMIT``
   followed by a newline closes it (a final ``COMMIT`` without one is refused, as
   iptables-restore refuses it). Inside, ``:CHAIN POLICY [p:b]`` declares chains,
   ``[p:b] -A …`` lines are commands, an empty line or one starting with ``#`` is
   skipped; anything else is a command (``  COMMIT`` is a bad argument). Words are
   split on space, tab and newline only: a carriage return (CRLF line endings) is
   part of the last word, so ``-j ACCEPT\\r`` is refused exactly where iptables-restore
   refuses it. A byte-order mark is refused at 1:1 (iptables-restore: "line 1 failed").
   Each section's family is decided by :mod:`recentd.rules.family` (explicit
   ``family``, header, content, file name).
2. **Scripts.** Outside sections, a line whose command is ``iptables``/``ip6tables``
   (any path, ``-legacy``/``-nft``, after ``sudo``, or through a variable such as
   ``$IPT``) is a command for that family. Lines ending in ``\\`` continue on the
   next. Variables are followed as :mod:`recentd.rules.shell` says: simple top-level
   assignments are kept and expanded as the shell would; a value recentd cannot know
   is an error at its ``$``.
3. **What recentd does not understand is an error, never skipped**, with FILE:LINE:COL:
   an expansion it cannot resolve in a command that is or may be iptables; an
   ``iptables`` command that only runs inside a shell construct (``&& iptables …``,
   ``then iptables …``); a command that is not iptables but carries a rule (``-j
   TARGET`` given to ``firewall-cmd --direct``, a restore line outside a section);
   ``iptables-restore`` (it loads another file); save-file lines iptables-restore
   refuses (``COMMIT`` or ``*TABLE`` out of place).
4. **What is skipped with a notice** (understood as changing no rule): blank lines and
   ``#`` comments (silently); other commands (``modprobe``, ``service iptables
   save``, ``echo …``); listings (``iptables -L``, ``iptables-save``); prose,
   including prose that mentions iptables without options. A file that yields no
   rule at all but skipped such lines is an error, never "0 rules OK".
5. Typographic dashes before option names are accepted with a warning that shows
   the corrected line; two commands pasted on one line are split, also with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from recentd.errors import RuleError, SourceError
from recentd.rules import family as families
from recentd.rules.builder import RulesetBuilder
from recentd.rules.command import parse_command
from recentd.rules.lexer import (
    FILE_ENCODING,
    FILE_ERRORS,
    TYPOGRAPHIC_DASHES,
    Token,
    corrected_line,
    fix_dashes,
    foreign_character,
    tokenize,
    tokenize_restore,
)
from recentd.rules.lists import Part as ListPart
from recentd.rules.lists import blank_redirects, silences_errors, split_list
from recentd.rules.model import BUILTIN_CHAINS, Notice, ParseResult, Ruleset
from recentd.rules.shell import PROGRAM, SHELL_WORD, Shell

_RESTORE_PROGRAM = re.compile(r"^(?:.*/)?ip6?tables(?:-legacy|-nft)?-restore$")
_SAVE_PROGRAM = re.compile(r"^(?:.*/)?ip6?tables(?:-legacy|-nft)?-save$")
_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]$")
#: How iptables-restore reads a chain line's counters (sscanf "[%llu:%llu]": the rest is ignored).
_DECLARED_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]")
_RESTORE_BLANKS = re.compile(r"[ \t]+")
#: ``-L``/``-S`` alone or bundled with ``-n -v -x`` (``-nvL``): a listing, not an edit.
_LISTING = re.compile(r"^-[nvx]*[LS][nvx]*$|^--list(-rules)?$")
#: Options whose argument may legitimately be the word "iptables".
_TEXT_OPTIONS = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--name"})
_BOM = "\ufeff"


@dataclass
class _Section:
    table: str
    line: int
    family: int


@dataclass
class _Reader:
    source: str
    explicit: int | None
    #: Family of the section each ``*TABLE`` line opens, decided before reading.
    section_families: dict[int, int]
    builder: RulesetBuilder = field(default_factory=RulesetBuilder)
    notices: list[Notice] = field(default_factory=list)
    section: _Section | None = None
    shell: Shell = field(default_factory=Shell)
    skipped: int = 0
    first_skipped: int = 0
    #: When set, an invalid line is recorded here and reading goes on (``rules check``).
    errors: list[RuleError] | None = None
    #: Whether the last iptables command of a shell list failed as the shell sees it
    #: (the rule set refused it as it stands; :mod:`recentd.rules.lists`).
    failed: bool = False
    in_list: bool = False

    def notice(self, message: str, line: int, *, column: int = 0, corrected: str = "",
               warning: bool = False) -> None:
        self.notices.append(Notice(message, self.source, line, column, corrected, warning))

    def skip(self, message: str, line: int) -> None:
        """A command that is not iptables: noticed, and counted (a file of only these is
        not a rule file)."""
        self.skipped += 1
        self.first_skipped = self.first_skipped or line
        self.notice(message, line)


def parse_ruleset_text(text: str, source: str = "<text>", family: int | None = None) -> ParseResult:
    """Parse a script, a save file, or a mix of both.

    Args:
        text: the file's text (bytes decoded with :data:`~recentd.rules.lexer.FILE_ERRORS`).
        source: the file name, for errors and for the family rule on names.
        family: 4 or 6 to say the save file's family (script lines must then agree).

    Returns:
        the rule set and the notices (skipped lines, corrected dashes).

    Raises:
        RuleError: the first invalid line, with ``source``, ``line`` and ``column``.
    """
    return _parse(text, source, family, None)


def check_ruleset_text(text: str, source: str = "<text>",
                       family: int | None = None) -> list[RuleError]:
    """Every error of the file, each with FILE:LINE:COL, in line order (none: valid).

    Unlike :func:`parse_ruleset_text`, which stops at the first, reading goes on after
    an invalid line, as if it were not there; an error of the whole file (a jump to a
    chain never declared, nothing but prose) comes after the line errors.
    """
    errors: list[RuleError] = []
    try:
        _parse(text, source, family, errors)
    except RuleError as exc:
        errors.append(exc)
    return errors


def _parse(text: str, source: str, family: int | None,
           errors: list[RuleError] | None) -> ParseResult:
    if family not in (None, 4, 6):
        raise RuleError(f"family must be 4 or 6, not {family}", source=source)
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    if text.startswith(_BOM):
        raise RuleError("byte-order mark (U+FEFF) at the start of the file: iptables-restore "
                        "refuses the line (`line 1 failed'); save the file without it",
                        source=source, line=1, column=1)
    with _place(source):
        decided = families.section_families(lines, family, source)
    reader = _Reader(source, family, decided, errors=errors)
    _read(reader, lines, ends_with_newline)
    with _place(source):
        ruleset = reader.builder.build(source)
    if not ruleset.tables and reader.skipped:
        raise RuleError(f"no iptables rule in this file: {reader.skipped} line(s) skipped as "
                        "not iptables commands, the first here", source=source,
                        line=reader.first_skipped, column=1)
    return ParseResult(ruleset, reader.notices)


def _read(reader: _Reader, lines: list[str], ends_with_newline: bool) -> None:
    """Each line as a save-file line (inside a section, or opening one) or a script line
    (joined with the lines its trailing backslashes continue on)."""
    source = reader.source
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        if pending is None and (reader.section is not None or line.startswith("*")):
            with _kept(reader), _place(source, number, line):
                _restore_line(reader, line, number, ends_with_newline or number < len(lines))
            continue
        start, joined = pending if pending else (number, "")
        joined += line
        if joined.endswith("\\") and not joined.lstrip(" \t").startswith("#"):
            pending = (start, joined[:-1])
            continue
        pending = None
        with _kept(reader), _place(source, start, joined):
            _script_line(reader, joined, start)
    if pending is not None:
        with _kept(reader), _place(source, *pending):
            _script_line(reader, pending[1], pending[0])
    if reader.section is not None:
        raise RuleError(f"COMMIT expected at line {len(lines) + 1}", source=source,
                        line=len(lines) + 1)


@contextmanager
def _kept(reader: _Reader) -> Iterator[None]:
    """When the reader collects errors, an invalid line's error is kept, not raised."""
    try:
        yield
    except RuleError as exc:
        if reader.errors is None:
            raise
        reader.errors.append(exc)


@contextmanager
def _place(source: str, number: int = 0, line: str = "") -> Iterator[None]:
    """A RuleError raised inside leaves with its place in the file (and a word on CRLF)."""
    try:
        _check_text(line)
        yield
    except RuleError as exc:
        located = exc.located(source=source, line=exc.line or number, column=exc.column,
                              text=line)
        if "\r" in line or "\r" in exc.message:
            located.message = exc.message.replace("\r", "\\r") + (
                " (the line ends in a carriage return: CRLF line endings, which "
                "iptables-restore and the shell read as part of the last word; convert the "
                "file with dos2unix)")
            located.args = (located.message,)
        raise located from None


def _check_text(line: str) -> None:
    """Refuse text no file can hold, so every later step can turn text back into bytes."""
    index = foreign_character(line)
    if index >= 0:
        raise RuleError(f"character U+{ord(line[index]):04X} cannot come from a file",
                        column=index + 1)


# -- save-file lines -------------------------------------------------------------------------


def _restore_line(reader: _Reader, line: str, number: int, terminated: bool) -> None:
    if reader.section is None:
        _open_section(reader, line, number)
    elif line == "" or line.startswith("#"):
        return
    elif line == "COMMIT":
        if not terminated:
            raise RuleError("COMMIT without a newline at the end of the file: iptables-restore "
                            "refuses it (Bad argument `COMMIT'); end the file with a newline",
                            column=1)
        reader.section = None
    elif line.startswith("*"):
        raise RuleError(f"COMMIT expected before `{line}'", column=1)
    elif line.startswith(":"):
        _declare(reader, line)
    else:
        _restore_command(reader, line, number)


def _open_section(reader: _Reader, line: str, number: int) -> None:
    words = [word for word in _RESTORE_BLANKS.split(line[1:]) if word]
    table = words[0] if words else ""
    if table not in BUILTIN_CHAINS:
        raise RuleError(f"unsupported table `{table}'; supported: {', '.join(BUILTIN_CHAINS)}",
                        column=2)
    family = reader.section_families[number]
    reader.builder.table(family, table, fresh=True)
    reader.section = _Section(table, number, family)


def _declare(reader: _Reader, line: str) -> None:
    assert reader.section is not None
    parts = [word for word in _RESTORE_BLANKS.split(line[1:]) if word]
    if len(parts) < 2:
        raise RuleError("bad chain line; expected `:CHAIN POLICY [packets:bytes]'", column=1)
    counters = (0, 0)
    if len(parts) > 2:
        found = _DECLARED_COUNTERS.match(parts[2])
        if not found:
            raise RuleError(f"invalid counters `{parts[2]}'")
        counters = (int(found.group(1)), int(found.group(2)))
    reader.builder.declare(reader.section.family, reader.section.table, parts[0], parts[1],
                           counters)


def _restore_command(reader: _Reader, line: str, number: int) -> None:
    assert reader.section is not None
    tokens = _fix_dashes(reader, line, number, tokenize_restore(line))
    counters = (0, 0)
    if tokens and (found := _COUNTERS.match(tokens[0].text)):
        counters = (int(found.group(1)), int(found.group(2)))
        tokens = tokens[1:]
    if any(t.text in ("-t", "--table") for t in tokens):
        raise RuleError("The -t option cannot be used in iptables-restore")
    cmd = parse_command(tokens, reader.section.family, reader.section.table)
    reader.builder.apply(cmd, counters=counters, source=reader.source, line=number)


# -- script lines ----------------------------------------------------------------------------


_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "for", "while", "until", "do",
                       "done", "case", "esac", "{", "}", "function", "select", "!", "[[", "[",
                       "test"})


def _script_line(reader: _Reader, line: str, number: int) -> None:
    stripped = line.strip(" \t")
    if not stripped or stripped.startswith("#"):
        return
    parts = None if reader.in_list else split_list(line)
    if parts is not None and not any(
            (SHELL_WORD.findall(part.text) or [""])[0] in _KEYWORDS or "(" in part.text
            for part in parts):
        _run_list(reader, parts, number)
        return
    if not reader.in_list and silences_errors(line):  # `iptables -N X 2>/dev/null`
        _run_list(reader, [ListPart("", blank_redirects(line))], number)
        return
    line = blank_redirects(line)
    stripped = line.strip(" \t")
    if stripped:
        _one_command(reader, line, number, stripped)


def _run_list(reader: _Reader, parts: list[ListPart], number: int) -> None:
    """``A; B``, ``A && B``, ``A || B`` with the shell's short-circuit (module lists)."""
    status = True
    for part in parts:
        if (part.operator == "&&" and not status) or (part.operator == "||" and status):
            continue
        words = SHELL_WORD.findall(part.text)
        if not words or words[0] in ("true", ":"):
            status = True
            continue
        if words[0] == "false":
            status = False
            continue
        reader.in_list, reader.failed = True, False
        try:
            _script_line(reader, part.text, number)
        finally:
            reader.in_list = False
        status = not reader.failed


def _one_command(reader: _Reader, line: str, number: int, stripped: str) -> None:
    _out_of_section(stripped, line)
    words = SHELL_WORD.findall(stripped)
    reader.shell.track_blocks(words, stripped, number)
    if reader.shell.assignments(line, number):
        return
    command = words[1] if words[0] == "sudo" and len(words) > 1 else words[0]
    if command.lstrip('"').startswith("$"):
        _variable_command(reader, line, number)
    elif PROGRAM.match(command):
        if not any(w.lstrip("\"'").startswith(("-", "$", *TYPOGRAPHIC_DASHES)) for w in words[1:]):
            reader.notice("skipped: prose mentioning iptables, no options", number)
            return
        _iptables(reader, line, number, tokenize(line, reader.shell.variables))
    elif _SAVE_PROGRAM.match(command):
        reader.notice("skipped: listing command (changes nothing)", number)
    elif _RESTORE_PROGRAM.match(command):
        raise RuleError(f"`{command}' loads rules from another file, which recentd does not "
                        "read from here; give recentd that file", column=line.index(command) + 1)
    else:
        reader.shell.refuse_hidden_rules(line)
        reader.skip("skipped: not an iptables command", number)


def _out_of_section(stripped: str, line: str) -> None:
    """Save-file lines iptables-restore refuses outside a ``*TABLE`` section."""
    column = line.index(stripped[0]) + 1
    if stripped.startswith("*"):
        raise RuleError(f"`{stripped}' must start the line: iptables-restore refuses an "
                        "indented table line", column=column)
    if stripped == "COMMIT":
        raise RuleError("COMMIT without a `*TABLE' line before it", column=column)


def _variable_command(reader: _Reader, line: str, number: int) -> None:
    """A command run through a variable (``$IPT -A …``): iptables if the variable says so."""
    tokens = tokenize(line, reader.shell.variables)
    if tokens and tokens[0].text == "sudo":
        tokens = tokens[1:]
    if tokens and PROGRAM.match(tokens[0].text):
        _iptables(reader, line, number, tokens)
        return
    program = tokens[0].text if tokens else ""
    reader.skip(f"skipped: runs `{program}', not iptables", number)


def _iptables(reader: _Reader, line: str, number: int, tokens: list[Token]) -> None:
    if tokens[0].text == "sudo":
        tokens = tokens[1:]
    if any(_LISTING.match(t.text) for t in tokens if not t.quoted):
        reader.notice("skipped: listing command (changes nothing)", number)
        return
    tokens = _fix_dashes(reader, line, number, tokens)
    for family, program, command in _split_commands(reader, tokens, number):
        if reader.explicit is not None and family != reader.explicit:
            raise RuleError(f"`{program.text}' is an IPv{family} command in a file read as "
                            f"IPv{reader.explicit} (--family {reader.explicit})",
                            column=program.column)
        cmd = parse_command(command, family)
        try:
            reader.builder.apply(cmd, source=reader.source, line=number)
        except RuleError:
            # A valid command the rule set refuses as it stands is a failed status to
            # the shell: in a list (`-C … || -A …`) or a lone -C (it changes nothing).
            if not (reader.in_list or cmd.command == "-C"):
                raise
            reader.failed = True


def _split_commands(
    reader: _Reader, tokens: list[Token], number: int
) -> list[tuple[int, Token, list[Token]]]:
    """Split ``iptables … iptables …`` pasted on one line into its commands."""
    commands: list[tuple[int, Token, list[Token]]] = []
    for index, token in enumerate(tokens):
        # The first word is the program even quoted ("$IPT"); later, a quoted word is data.
        program = PROGRAM.match(token.text) if not (index and token.quoted) else None
        after_text_option = index > 0 and tokens[index - 1].text in _TEXT_OPTIONS
        if program and not after_text_option:
            if commands:
                reader.notice("two commands on one line; splitting before this word", number,
                              column=token.column, warning=True)
            commands.append((6 if program.group(1) == "ip6" else 4, token, []))
        else:
            commands[-1][2].append(token)
    return commands


def _fix_dashes(reader: _Reader, line: str, number: int, tokens: list[Token]) -> list[Token]:
    fixes = [(t, fixed) for t in tokens if (fixed := fix_dashes(t)) is not None]
    if not fixes:
        return tokens
    names = ", ".join(f"`{old.text}' → `{new.text}'" for old, new in fixes)
    reader.notice(f"typographic dash read as ASCII: {names}", number, column=fixes[0][0].column,
                  corrected=corrected_line(line, fixes).strip(), warning=True)
    replaced = {id(old): new for old, new in fixes}
    return [replaced.get(id(t), t) for t in tokens]


# -- files -----------------------------------------------------------------------------------


def load_ruleset(path: str | Path, family: int | None = None) -> Ruleset:
    """Read and parse a rule file (notices are dropped; use :func:`load_rules` for them)."""
    return load_rules(path, family).ruleset


def load_rules(path: str | Path, family: int | None = None) -> ParseResult:
    """Read and parse a rule file, keeping the notices.

    Args:
        path: the file.
        family: 4 or 6 to say its family (else decided from what the file says).

    Raises:
        SourceError: the file cannot be read (naming it and why).
        RuleError: a line is invalid.
    """
    try:
        text = Path(path).read_text(encoding=FILE_ENCODING, errors=FILE_ERRORS)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return parse_ruleset_text(text, source=str(path), family=family)


def check_rule_file(path: str | Path, family: int | None = None) -> list[RuleError]:
    """Every error of a rule file (see :func:`check_ruleset_text`).

    Raises:
        SourceError: the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding=FILE_ENCODING, errors=FILE_ERRORS)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return check_ruleset_text(text, source=str(path), family=family)


def load_rule_files(paths: Iterable[str | Path], family: int | None = None) -> ParseResult:
    """Read several rule files (a host's ``rules.v4`` and ``rules.v6``) into one rule set.

    Each file's family is its own (or ``family`` for all). A table of one family
    written by two files is an error naming both: the kernel keeps one of each.

    Raises:
        SourceError: a file cannot be read.
        RuleError: a line is invalid, or two files write the same table and family.
    """
    written: dict[tuple[int, str], tuple[int, str]] = {}
    merged: list[ParseResult] = []
    for index, path in enumerate(paths):
        result = load_rules(path, family)
        for table in result.ruleset.tables:
            first = written.setdefault((table.family, table.name), (index, table.source))
            if first[0] != index:  # another file, or the same file named twice
                raise RuleError(f"IPv{table.family} table `{table.name}' is also written by "
                                f"{first[1]}; give each table of each family in one file",
                                source=table.source)
        merged.append(result)
    return ParseResult(
        Ruleset(tuple(table for result in merged for table in result.ruleset.tables)),
        [notice for result in merged for notice in result.notices],
    )
