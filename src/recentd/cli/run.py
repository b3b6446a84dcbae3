"""``recentd run``: protect this host with a rules file, live, through NFQUEUE.

The rules file is evaluated in user space; only recentd's own NFQUEUE hooks (and,
with offload, its ``inet recentd`` nftables table) are put into the kernel.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from recentd.daemon import Daemon, DaemonConfig, RulesLoader, load_rules
from recentd.live.hooks import Hooks, parse_queue_filter
from recentd.live.offload import BanBackend, NftBanBackend
from recentd.live.policy import OffloadCase, find_offload_case


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="protect this host: evaluate a rules file on live traffic (root)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=Path, required=True, help="iptables-style rules file")
    parser.add_argument("--queue-num", type=int, default=0, help="NFQUEUE number (default 0)")
    parser.add_argument("--fail-closed", action="store_true",
                        help="drop instead of accept when recentd is down or overloaded")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="print the iptables commands and the offload plan, change nothing")  # fmt: skip
    parser.add_argument("--no-offload", action="store_true",
                        help="keep every ban in user space (no nftables set)")  # fmt: skip
    parser.add_argument("--queue-filter", action="append", default=[], metavar="SPEC",
                        help="queue only [4|6|46:]CHAIN[:PROTO[:PORTS]] (repeatable); "
                        "default: derived from the rules")  # fmt: skip
    parser.add_argument("--socket", type=Path, default=None, help="control socket path")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every ban")


def nft_backend(case: OffloadCase) -> BanBackend:
    backend = NftBanBackend(case.ban_class)
    backend.install()
    return backend


def run(args: argparse.Namespace, loader: RulesLoader | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="recentd: %(message)s", stream=sys.stderr,
    )  # fmt: skip
    config = DaemonConfig(
        rules=args.rules, queue_num=args.queue_num, fail_open=not args.fail_closed,
        offload=not args.no_offload,
        filters=[f for spec in args.queue_filter for f in parse_queue_filter(spec)],
    )  # fmt: skip
    loader = loader or functools.partial(load_rules, hz=config.hz)
    daemon = Daemon(config, loader, backend_factory=nft_backend)
    if args.dry_run:
        return _dry_run(daemon)
    _attach_control(daemon, args.socket)
    print(f"recentd: {daemon.describe()}", flush=True)
    daemon.run()
    return 0


def _dry_run(daemon: Daemon) -> int:
    hooks: Hooks = daemon.hooks
    for argv in hooks.install_plan():
        print(shlex.join(argv))
    case = find_offload_case(daemon.rules.ruleset) if daemon.config.offload else None
    print(f"# {daemon.describe()}")
    if case is not None:
        print(f"# offload: {case}")
    return 0


def _attach_control(daemon: Daemon, path: Path | None) -> None:
    """Wire the control socket when that module offers a selector adapter."""
    if path is None:
        return
    try:
        from recentd.control import server  # noqa: PLC0415
    except ImportError:
        print("recentd: control socket not available in this build", file=sys.stderr)
        return
    make = getattr(server, "selector_adapter", None)
    if make is None:
        print("recentd: control server has no selector adapter yet; --socket ignored", file=sys.stderr)
        return
    daemon.adapters.append(make(path, daemon.rules.tables))
