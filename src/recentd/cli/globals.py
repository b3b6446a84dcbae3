"""The global options: given before the subcommand, or after it, or by environment.

``--socket`` and ``--config`` are declared here once and added to the top-level parser
and to every parser that uses them, each with ``default=SUPPRESS``: argparse then sets the
attribute only where the option appears, so ``recentd --socket A ctl status`` and
``recentd ctl status --socket A`` both leave ``args.socket == A`` (the later one wins when
both are given). :func:`socket_path` and :func:`config_path` fall back to the environment
(``RECENTD_SOCKET``, ``RECENTD_CONFIG``), then to :mod:`recentd.defaults`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from recentd import defaults


def add_global_options(parser: argparse.ArgumentParser, *, config: bool = True,
                       socket: bool = True) -> None:
    """Add ``--socket`` and ``--config`` to ``parser`` (each unless told False)."""
    if socket:
        _add_socket(parser)
    if config:
        parser.add_argument(
            "--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
            help=f"TOML configuration file, e.g. {defaults.CONFIG} (env {defaults.CONFIG_ENV}); "
            "command-line flags override it",
        )  # fmt: skip


def _add_socket(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket", type=Path, default=argparse.SUPPRESS, metavar="PATH",
        help=f"the daemon's control socket (env {defaults.SOCKET_ENV}; "
        f"default: {defaults.SOCKET})",
    )  # fmt: skip


def socket_path(args: argparse.Namespace) -> Path:
    """The control socket: ``--socket``, else ``$RECENTD_SOCKET``, else the default."""
    given: Path | None = getattr(args, "socket", None)
    if given is not None:
        return given
    env = os.environ.get(defaults.SOCKET_ENV)
    return Path(env) if env else defaults.SOCKET


def config_path(args: argparse.Namespace) -> Path | None:
    """The configuration file: ``--config``, else ``$RECENTD_CONFIG``, else none."""
    given: Path | None = getattr(args, "config", None)
    if given is not None:
        return given
    env = os.environ.get(defaults.CONFIG_ENV)
    return Path(env) if env else None
