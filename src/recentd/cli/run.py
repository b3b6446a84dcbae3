"""``recentd run``: protect this host with a rules file, live, through NFQUEUE.

The rules file is evaluated in user space; only recentd's own NFQUEUE hooks (and,
with offload, its ``inet recentd`` nftables table) are put into the kernel.
Options come from :mod:`recentd.config` (each declared once: flag, TOML key,
help); the command line overrides ``--config FILE``.

Signals: SIGTERM/SIGINT stop (hooks removed, state saved); SIGHUP re-reads the
rules file, keeping the lists (a bad file keeps the old rules and logs why).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from recentd import config as options
from recentd.backends import BanBackend
from recentd.backends.nftables import NftBanBackend
from recentd.daemon import Daemon, DaemonConfig, RulesLoader, load_rules
from recentd.errors import ConfigError
from recentd.live.hooks import parse_queue_filter
from recentd.live.policy import OffloadCase, find_offload_case
from recentd.rules.split import split_ruleset

DESCRIPTION = """\
Protect this host: evaluate iptables rules with `-m recent` on live traffic, in user space.

Only recentd's own NFQUEUE hooks (chains RECENTD-IN/-FWD/-OUT, queueing just the traffic
the rules can decide on) and, where a drop can be carried by the kernel alone, an
nftables table `inet recentd` holding the banned addresses are put into the kernel.
Fail-open by default: a stopped or overloaded recentd never cuts the host off.

Signals: SIGTERM/SIGINT stop (hooks removed, state saved); SIGHUP re-reads the rules,
keeping the lists (a bad file keeps the old rules and logs FILE:LINE:COL)."""

EPILOG = """\
examples:
  recentd run --rules /etc/iptables/rules.v4
  recentd run --config /etc/recentd/recentd.toml --mount /run/recentd/tables
  recentd run --rules rules.v4 --dry-run        # print the hooks and the offload plan

configuration keys (TOML, --config FILE):
""" + options.describe_options()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="protect this host: evaluate a rules file on live traffic (root)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_arguments(parser)
    parser.add_argument("--fail-closed", dest="fail_open", action="store_false",
                        default=argparse.SUPPRESS,
                        help="drop instead of accept when recentd is down or overloaded "
                        "(same as --no-fail-open)")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="print the iptables commands and the offload plan, "
                        "change nothing")  # fmt: skip
    parser.add_argument("--queue-filter", action="append", default=[], metavar="SPEC",
                        help="queue only [4|6|46:]CHAIN[:PROTO[:PORTS]] (repeatable); "
                        "default: derived from the rules")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log at level info")


def nft_backend(case: OffloadCase) -> BanBackend:
    backend = NftBanBackend(case.ban_class)
    backend.install()
    return backend


def daemon_config(args: argparse.Namespace, config: options.Config) -> DaemonConfig:
    """The daemon's settings from the loaded options and the run-only flags.

    Raises:
        ConfigError: a bad option, or no rules file anywhere.
    """
    if not config.rules:
        raise ConfigError("no rules file: give --rules FILE or rules = in --config", key="rules")
    return DaemonConfig(
        rules=list(config.rules), queue_num=config.queue_num, fail_open=config.fail_open,
        offload=config.offload, hz=config.hz, socket=config.socket,
        state_dir=config.state_dir, mount=config.mount, params=config.module_params(),
        filters=[f for spec in args.queue_filter for f in parse_queue_filter(spec)],
    )  # fmt: skip


def run(args: argparse.Namespace, loader: RulesLoader = load_rules) -> int:
    loaded = options.config_from_args(args)
    config = daemon_config(args, loaded)
    level = "info" if args.verbose else loaded.log_level
    logging.basicConfig(level=level.upper(), format="recentd: %(message)s", stream=sys.stderr)
    if args.dry_run:  # the split first: it is what the admin needs even if loading fails
        for line in split_ruleset(loader([Path(p) for p in config.rules])).describe():
            print(f"# {line}")
    daemon = Daemon(config, loader, backend_factory=nft_backend)
    if args.dry_run:
        return _dry_run(daemon)
    print(f"recentd: {daemon.describe()}", flush=True)
    daemon.on_ready = lambda: print("recentd: ready", flush=True)
    daemon.run()
    return 0


def _dry_run(daemon: Daemon) -> int:
    for argv in daemon.hooks.install_plan():
        print(shlex.join(argv))
    case = find_offload_case(daemon.ruleset) if daemon.config.offload else None
    print(f"# {daemon.describe()}")
    if case is not None:
        print(f"# offload: {case.describe()}")
    return 0
