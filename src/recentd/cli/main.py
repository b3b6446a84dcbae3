"""The ``recentd`` command: one entry point, one subcommand module per area.

Rules of the command line:

1. Each subcommand lives in its own module under :mod:`recentd.cli` and exposes
   ``register(subparsers)``; it sets ``func`` on its parser to a callable that takes the
   parsed namespace and returns the exit status.
2. Only the module of the subcommand being run is imported (:data:`SUBCOMMANDS` holds
   every subcommand's one-line help, so ``recentd --help`` imports none): a start costs
   what that command needs, not what every command needs.
3. Global options come before the subcommand, as with the peers' tools
   (``fail2ban-client -s``, ``docker -H``, ``git -C``), and are also accepted after it:
   ``recentd --socket PATH ctl status`` = ``recentd ctl --socket PATH status`` =
   ``recentd ctl status --socket PATH``. ``RECENTD_SOCKET`` and ``RECENTD_CONFIG`` stand in
   for ``--socket`` and ``--config`` when neither is given (see :mod:`recentd.cli.globals`).
4. Exit statuses (documented in ``recentd --help``): 0 success; 1 the operation failed
   (a backend refused, the daemon is unreachable …); 2 the input is invalid (rule file,
   capture, log, control line, option, configuration); 130 interrupted. Every error a
   command raises on purpose is a :class:`~recentd.errors.RecentError` and carries its
   status (:func:`recentd.errors.exit_status`); nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recentd import __version__
from recentd.cli.globals import add_global_options

#: Every subcommand and its one-line help, in the order ``--help`` lists them.
SUBCOMMANDS = {
    "rules": "check, save and list iptables rule files",
    "replay": "replay a capture through rules: what would they have done?",
    "logs": "read auth logs: what the parser sees, and what the rules would have banned",
    "run": "protect this host: evaluate rules on live traffic and logs (root)",
    "ctl": "inspect and change a running daemon's tables",
    "top": "a live view of a running daemon: bans, offenders, sources, events",
    "demo": "a live demo in two network namespaces (root)",
}

EPILOG = """\
global options (before or after the command):
  --socket PATH    the daemon's control socket (env RECENTD_SOCKET;
                   default /run/recentd/control.sock)
  --config FILE    TOML configuration (env RECENTD_CONFIG)

exit status: 0 success, 1 operation failed, 2 invalid input, 130 interrupted.

examples:
  recentd rules check /etc/iptables/rules.v4     # validate a rule set, FILE:LINE:COL errors
  recentd replay attack.pcap --rules rules.v4    # what would these rules do to this traffic?
  recentd run --rules rules.v4                   # protect this host (root)
  recentd --socket /tmp/r.sock ctl show SSH      # the SSH list, as /proc/net/xt_recent/SSH
  recentd COMMAND --help                         # each command, with examples
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``recentd`` parser with ``command``'s module loaded (``"*"``: every one).

    The other subcommands are placeholders that carry only their help line.
    """
    parser = argparse.ArgumentParser(
        prog="recentd",
        description="The netfilter `recent` match in user space: brute-force defence "
        "with the kernel's exact semantics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recentd {__version__}")
    add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        if command in ("*", name) and _register(subparsers, name):
            continue
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> bool:
    """Load ``recentd.cli.NAME`` and let it add its parser; False if it is not installed."""
    try:
        module = importlib.import_module(f"recentd.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"recentd.cli.{name}":
            raise
        return False
    module.register(subparsers)
    return True


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is one (global options and
    their values come before it); ``None`` when there is none."""
    takes_value = {"--socket", "--config"}
    words = iter(argv)
    for word in words:
        if word in SUBCOMMANDS:
            return word
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-") or word == "--":
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from recentd.errors import RecentError, exit_status  # noqa: PLC0415 - rule 2: start fast

    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except RecentError as exc:
        print(f"recentd: {exc}", file=sys.stderr)
        return exit_status(exc)
    except OSError as exc:
        # The last boundary: a file or socket the command needed is not usable. Named,
        # one line, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"recentd: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
