"""``recentd run``: protect this host with a rules file, live, through NFQUEUE.

What goes into the kernel is :func:`recentd.live.hooks.plan_hooks`'s answer
(docs/split.md): recentd's own NFQUEUE hooks for a rule set it evaluates whole; no
hook at all when the ban set carries every decision; for a whole host's rule set with
rules only the kernel can run, the rule set itself, queueing at the jumps into
recentd's chains. With offload, its ``inet recentd`` nftables table too.
Options come from :mod:`recentd.config` (each declared once: flag, TOML key,
help); the command line overrides ``--config FILE``.

Evidence from logs: each ``[[watch]]`` source of the config is read live
(:mod:`recentd.sources.watches`), its events written into their lists at the lines'
own times; an event that makes the offloaded rule match bans at once.

Signals: SIGTERM/SIGINT stop (hooks removed, state saved); SIGHUP re-reads the
rules file, keeping the lists (a bad file keeps the old rules and logs why).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recentd import config as options
from recentd.backends import BanBackend
from recentd.backends.nftables import NftBanBackend
from recentd.clock import wall_now_ns
from recentd.daemon import Daemon, DaemonConfig, RulesLoader, SourceSpec, load_rules
from recentd.errors import ConfigError
from recentd.live.hooks import QUEUE, KernelRules, detect_flavour, parse_queue_filter
from recentd.live.nflog import NflogReader
from recentd.live.policy import OffloadCase, find_offload_case, offload_report
from recentd.observation import Route
from recentd.policy.allow import admin_address
from recentd.rules.split import split_ruleset
from recentd.sources.watches import watched_sources

log = logging.getLogger("recentd.run")

DESCRIPTION = """\
Protect this host: evaluate iptables rules with `-m recent` on live traffic, in user space.

What goes into the kernel (docs/split.md; --dry-run prints it):
- a rule set recentd evaluates whole: its own NFQUEUE hooks (chains RECENTD-IN/-FWD/-OUT,
  queueing just the traffic the rules can decide on);
- when every decision is carried by the kernel's ban set (lists read only by offloaded
  --rcheck drops, written by no packet): no NFQUEUE hook at all;
- a whole host's rule set with rules only the kernel can run (nat, ipsets, ...): the rule
  set itself, restored as it is, queueing to recentd only at the jumps into its chains
  (a RETURN resumes in the kernel after the jump); the tables as they were at stop;
and, where a drop can be carried by the kernel alone, an nftables table `inet recentd`
holding the banned addresses. Fail-open by default: a stopped or overloaded recentd
never cuts the host off.

Logs are evidence too: each [[watch]] of --config (a log file, the journal, or
stdin) is read live; its failures are +ADDR on their list at the line's own time,
and an event that makes the offloaded rule match bans the address at once.

Signals: SIGTERM/SIGINT stop (hooks removed, state saved); SIGHUP re-reads the rules,
keeping the lists (a bad file keeps the old rules and logs FILE:LINE:COL)."""

EPILOG = """\
examples:
  recentd run --rules /etc/iptables/rules.v4
  recentd run --config /etc/recentd/recentd.toml --mount /run/recentd/tables
  recentd run --rules rules.v4 --dry-run        # print the split, hooks and offload plan

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
    parser.add_argument("--hooks", choices=("auto", "split"), default="auto",
                        help="auto: the whole rule set queued to recentd, no queue at all when "
                        "the ban set carries every decision, or the split when some rule only "
                        "the kernel can run; split: the kernel runs the rule set and queues at "
                        "the jumps into recentd's chains (docs/split.md)")  # fmt: skip
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
        metrics=config.metrics, metrics_textfile=config.metrics_textfile,
        filters=[f for spec in args.queue_filter for f in parse_queue_filter(spec)],
        sources=source_specs(config),
        policy=config.policy(),
    )  # fmt: skip


def source_specs(config: options.Config) -> list[SourceSpec]:
    """Each ``[[watch]]`` source as the daemon opens it (:mod:`recentd.sources.watches`).

    Raises:
        ConfigError: two watches of one source name different parsers.
    """
    return [SourceSpec(watched.key, functools.partial(watched.open, now=wall_now_ns),
                       watched.routes) for watched in watched_sources(config.watch)]  # fmt: skip


def unheld_lists(daemon: Daemon, config: options.Config) -> list[str]:
    """Warnings for watched lists no rule holds: their events are written nowhere, as
    ``echo +ADDR > /proc/net/xt_recent/LIST`` would fail with no such file."""
    held = set(daemon.tables.names())
    return [f"[[watch]] {watched.source}: no rule holds list {name}; its events are "
            "written nowhere (the kernel would have no /proc/net/xt_recent file for it)"
            for watched in watched_sources(config.watch)
            for name in watched.lists if name not in held]  # fmt: skip


def run(args: argparse.Namespace, loader: RulesLoader = load_rules) -> int:
    loaded = options.config_from_args(args)
    flavour, why = detect_flavour()
    config = dataclasses.replace(daemon_config(args, loaded), iptables=flavour,
                                 hooks=getattr(args, "hooks", "auto"))  # fmt: skip
    level = "info" if args.verbose else loaded.log_level
    logging.basicConfig(level=level.upper(), format="recentd: %(message)s", stream=sys.stderr)
    if args.dry_run:  # the split first: it is what the admin needs even if loading fails
        for line in split_ruleset(loader([Path(p) for p in config.rules])).describe():
            print(f"# {line}")
    daemon = Daemon(config, loader, backend_factory=nft_backend, stamp_reader=NflogReader)
    print(f"{'# ' if args.dry_run else 'recentd: '}hooks in iptables-{flavour}: {why}",
          flush=True)  # fmt: skip
    for warning in unheld_lists(daemon, loaded):
        log.warning("%s", warning)
    if loaded.fleet is not None:
        from recentd.fleet.link import join  # noqa: PLC0415  (redis: the fleet extra)

        join(daemon, loaded.fleet)
    if args.dry_run:
        return _dry_run(daemon, loaded)
    print(f"recentd: {daemon.describe()}", flush=True)
    print(f"recentd: {protect_admin(daemon, os.environ)}", flush=True)
    daemon.on_ready = lambda: print("recentd: ready", flush=True)
    daemon.run()
    return 0


def protect_admin(daemon: Daemon, environ: Mapping[str, str]) -> str:
    """Whether the admin's address (``SSH_CONNECTION``) is protected; it is made so."""
    address = admin_address(environ)
    if address is None:
        return "admin address: none (not started over SSH: no SSH_CONNECTION)"
    return "admin address " + daemon.protect_admin(address)


def _dry_run(daemon: Daemon, config: options.Config) -> int:
    plan = daemon.plan
    print(f"# {plan.why}")
    for site in plan.sites:
        print(f"# {site.describe()}")
    for note in plan.notes:
        print(f"# note: {note}")
    if plan.kernel is not None:
        kernel = KernelRules(plan.kernel, flavour=daemon.config.iptables)
        for (family, text), argv in zip(kernel.texts().items(), kernel.install_plan(),
                                         strict=True):  # fmt: skip
            print(f"# the kernel's part (IPv{family}), restored by: {shlex.join(argv)}")
            print("".join(f"#   {line}\n" for line in text.splitlines()
                          if not line.startswith("# ")), end="")  # fmt: skip
    if plan.mode == QUEUE:
        for argv in daemon.hooks.install_plan():
            print(shlex.join(argv))
    offload = daemon.config.offload
    case = find_offload_case(daemon.ruleset, stamping=True) if offload else None
    print(f"# {daemon.describe()}")
    if case is not None:
        print(f"# offload: {case.describe()}")
    for watched in watched_sources(config.watch):
        print(f"# watch {_medium(watched.source)} ({watched.parser}): "
              f"{', '.join(_route_text(route) for route in watched.routes)}")
        if case is not None and case.name in watched.lists:
            print(f"#   an event that makes the rule on {case.name} match bans at once, "
                  "no packet needed")
    for line in offload_report(daemon.ruleset, stamping=True) if offload else ():
        print(f"# offload rule {line}")
    return 0


def _medium(source: str) -> str:
    return {options.JOURNAL: "the journal", options.STDIN: "standard input"}.get(
        source, f"file {source}")


def _route_text(route: Route) -> str:
    """``failure: +SSH_AUTH``, as /proc/net/xt_recent writes."""
    return f"{route.evidence.value}: {route.action.value}{route.table}"
