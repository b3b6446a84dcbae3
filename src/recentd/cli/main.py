"""The ``recentd`` command: one entry point, one subcommand module per area.

Each subcommand lives in its own module under :mod:`recentd.cli` and exposes
``register(subparsers)``; it sets ``func`` on its parser to a callable that takes
the parsed namespace and returns the exit status.

Exit statuses (documented in ``recentd --help``):

- 0: success.
- 1: the operation failed (a backend refused, the daemon is unreachable …).
- 2: the input is invalid (rule file, capture, control line, option).
- 130: interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recentd import __version__
from recentd.errors import RecentError

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("rules", "replay", "run", "ctl", "demo", "logs")

EPILOG = """\
exit status: 0 success, 1 operation failed, 2 invalid input, 130 interrupted.

examples:
  recentd rules check /etc/iptables/rules.v4     # validate a rule set, FILE:LINE:COL errors
  recentd replay attack.pcap --rules rules.v4    # what would these rules do to this traffic?
  recentd run --rules rules.v4                   # protect this host (root)
  recentd ctl show SSH                           # the SSH list, as /proc/net/xt_recent/SSH
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recentd",
        description="The netfilter `recent` match in user space: brute-force defence "
        "with the kernel's exact semantics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recentd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"recentd.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"recentd.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except RecentError as exc:
        print(f"recentd: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    except OSError as exc:
        # The last boundary: a file or socket the command needed is not usable. Named,
        # one line, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"recentd: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
