"""``recentd rules check|save|list FILE…``: validate and render iptables rule files.

Several files make one rule set (a host's ``rules.v4`` and ``rules.v6``); each file's
family is its own (header, content, name) unless ``--family`` says it. Output is
written byte for byte as the files have it (a Latin-1 byte stays that byte).
Exit status: 0 valid, 2 invalid (``FILE:LINE:COL: message`` on stderr) or
unreadable. Notices and warnings always go to stderr, so the output
of ``save`` and ``list`` can be piped into ``iptables-restore`` or diffed.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from recentd.errors import RuleError, SourceError
from recentd.rules import MATCHES, TARGETS, load_rule_files, render_list, render_save
from recentd.rules.lexer import wire_bytes
from recentd.rules.model import ParseResult, Ruleset
from recentd.rules.parser import check_rule_file

if TYPE_CHECKING:
    from recentd.rules.split import Part

DESCRIPTION = """\
Read a rule file the way iptables 1.8.9 (legacy) would and report on it. A rule
file may be an iptables-save/ip6tables-save dump, a shell script of `iptables …`
and `ip6tables …` lines (other lines are skipped with a notice), or both.
Rules pasted from web pages with typographic dashes (`–dport`) are accepted with
a warning that shows the corrected line.

supported matches: {matches}
supported targets: ACCEPT, DROP, RETURN, {targets}, user chains (-j/-g)
"""

EPILOG = """\
examples:
  recentd rules check /etc/iptables/rules.v4
      rules.v4:12:31: recent: option "--seconds" cannot be inverted.
  recentd rules save ssh-recipe.sh > rules.v4     # then: iptables-restore < rules.v4
  recentd rules list rules.v4                      # like iptables -L -n -v
  recentd rules check rules.v4 rules.v6            # a host's two files, one rule set
  recentd rules check --family 6 my-firewall.rules # say the family the file does not

exit status: 0 valid, 2 invalid rules or an unreadable file.
"""

_COMMANDS = {
    "check": "validate FILE; print notices and errors as FILE:LINE:COL: message",
    "save": "print FILE in iptables-save form (both families if both are present)",
    "list": "print FILE as `iptables -L -n -v` would (add -x for exact counters)",
}


def register(subparsers: Any) -> None:
    """Add ``rules`` and its subcommands to the ``recentd`` parser."""
    description = DESCRIPTION.format(matches=", ".join(sorted(MATCHES)),
                                     targets=", ".join(sorted(TARGETS)))
    parser = subparsers.add_parser(
        "rules", help="check, save or list an iptables rule file", description=description,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    for name, help_text in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("files", metavar="FILE", nargs="+",
                         help="rule file (iptables-save dump or script); several files make "
                              "one rule set (rules.v4 and rules.v6)")
        sub.add_argument("--family", type=int, choices=(4, 6), default=None,
                         help="the files' family (default: from each file's header, "
                              "content and name)")
        if name == "save":
            sub.add_argument("-c", "--counters", action="store_true",
                             help="include [packets:bytes] counters, as iptables-save -c")
        if name == "list":
            sub.add_argument("-x", "--exact", action="store_true",
                             help="exact counters instead of K/M/G units")
        sub.set_defaults(func=run)


def _write(stream: TextIO, text: str) -> None:
    """Write ``text`` with each byte of the rule file as it was (a Latin-1 ``ü`` stays
    one byte ``\\xfc``), so the output reads back into iptables-restore unchanged."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        return
    stream.flush()
    buffer.write(wire_bytes(text))
    buffer.flush()


def _say(text: str) -> None:
    _write(sys.stderr, text + "\n")


def _load(paths: list[str], family: int | None, *, every: bool = False) -> ParseResult | int:
    try:
        result = load_rule_files(paths, family)
    except SourceError as exc:
        _say(f"recentd: {exc}")
        return 2
    except RuleError as exc:
        # `rules check` names every error of every file; the other actions the first.
        errors = [error for path in paths for error in check_rule_file(path, family)] if every \
            else []
        for error in [*errors, *([] if any(_same(exc, e) for e in errors) else [exc])]:
            _report(error, paths[0])
        return 2
    for notice in result.notices:
        _say(str(notice))
    return result


def _same(one: RuleError, other: RuleError) -> bool:
    return (one.source, one.line, one.column, one.message) == (
        other.source, other.line, other.column, other.message)


def _report(exc: RuleError, default_source: str) -> None:
    _say(f"{exc.source or default_source}:{exc.line}:{exc.column}: {exc.message}")
    if exc.text:
        _say(f"    {exc.text.strip()}")


def _listing(ruleset: Ruleset, *, exact: bool) -> str:
    """One table: exactly ``iptables -L -n -v``; several: each under a ``#`` title."""
    if len(ruleset.tables) == 1:
        return render_list(ruleset.tables[0], exact=exact)
    blocks = []
    for table in ruleset.tables:
        program = "ip6tables" if table.family == 6 else "iptables"
        title = f"# {program} -t {table.name} -L -n -v{' -x' if exact else ''}\n"
        blocks.append(title + render_list(table, exact=exact))
    return "\n".join(blocks)


def _summary(ruleset: Ruleset, path: str) -> str:
    """``N rules OK (IPv6 filter, raw)``: how many rules, and the family and tables read,
    so a file read as the wrong family cannot pass unseen."""
    tables = [table for table in ruleset.tables if table.source == path]
    count = sum(len(chain.rules) for table in tables for chain in table.chains)
    read = "; ".join(
        f"IPv{family} " + ", ".join(t.name for t in tables if t.family == family)
        for family in sorted({t.family for t in tables}))
    return f"{count} rules OK ({read or 'no table'})"


def _stamp() -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y")


def run(args: argparse.Namespace) -> int:
    """Carry out one ``rules`` action; returns the exit status."""
    loaded = _load(args.files, args.family, every=args.rules_command == "check")
    if isinstance(loaded, int):
        return loaded
    ruleset = loaded.ruleset
    if args.rules_command == "save":
        for family in ruleset.families():
            _write(sys.stdout, render_save(ruleset, family, counters=args.counters,
                                           stamp=_stamp))
    elif args.rules_command == "list":
        _write(sys.stdout, _listing(ruleset, exact=args.exact))
    else:
        for path in args.files:
            _say(f"{path}: {_summary(ruleset, path)}")
        _say(_split_summary(ruleset))
    return 0


def _split_summary(ruleset: Ruleset) -> str:
    """One line of who runs what (docs/split.md): a whole host's file must not pass
    ``check`` without the admin seeing which chains the kernel keeps."""
    from recentd.rules.split import split_ruleset  # noqa: PLC0415 - only check needs it

    split = split_ruleset(ruleset)

    def chains(parts: tuple[Part, ...]) -> str:
        rules = sum(part.rules for part in parts)
        return f"{len(parts)} chain{'s' * (len(parts) != 1)} ({rules} rule{'s' * (rules != 1)})"

    if not split.by_recentd:
        return f"no chain reads a recent list: the kernel runs all {chains(split.by_kernel)}"
    if not split.by_kernel:
        return f"recentd evaluates all {chains(split.by_recentd)}; the kernel keeps none"
    return (f"recentd evaluates {chains(split.by_recentd)}, the kernel keeps "
            f"{chains(split.by_kernel)}: `recentd run --rules … --dry-run` shows which and why")
