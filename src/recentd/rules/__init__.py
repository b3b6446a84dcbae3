"""The iptables rule language: parse, evaluate and render as iptables 1.8.9 (legacy).

General layout: :mod:`lexer` (shell words, typographic dashes) → :mod:`command`
(one command line, with :mod:`ippart`) → :mod:`builder` (apply commands) ← :mod:`parser` (files,
scripts, iptables-save format); :mod:`model` holds the immutable values;
:mod:`extensions` one module per match/target family; :mod:`compile` and
:mod:`evaluate` run packets; :mod:`render` prints ``-S``, ``iptables-save`` and
``-L -n -v``; :mod:`limit` is the kernel's token-bucket arithmetic; :mod:`interest`
says which packets a rule set can act on.

Names are imported on first use (PEP 562): ``recentd rules check`` loads the parser and
the extensions, not the evaluator, the memo and connection tracking.

Example::

    result = parse_ruleset_text(open("rules.v4").read(), source="rules.v4")
    engine = Engine(result.ruleset, RecentTables())
    decision = engine.evaluate(packet, Hook.INPUT, now_ticks, ctstate=CtState.NEW)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recentd.packets.conntrack_model import CtState
    from recentd.rules.evaluate import Decision, Engine, Verdict
    from recentd.rules.extensions import MATCHES, TARGETS
    from recentd.rules.extensions.base import LogEvent
    from recentd.rules.interest import Interest
    from recentd.rules.model import (
        TRAVERSAL,
        Chain,
        Hook,
        IpSpec,
        Match,
        Notice,
        ParseResult,
        Rule,
        Ruleset,
        Table,
        Target,
    )
    from recentd.rules.parser import load_rule_files, load_rules, load_ruleset, parse_ruleset_text
    from recentd.rules.render import render_list, render_rules, render_save

_HOMES = {
    "CtState": "recentd.packets.conntrack_model",
    **dict.fromkeys(("Decision", "Engine", "Verdict"), "recentd.rules.evaluate"),
    **dict.fromkeys(("MATCHES", "TARGETS"), "recentd.rules.extensions"),
    "LogEvent": "recentd.rules.extensions.base",
    "Interest": "recentd.rules.interest",
    **dict.fromkeys(("TRAVERSAL", "Chain", "Hook", "IpSpec", "Match", "Notice", "ParseResult",
                     "Rule", "Ruleset", "Table", "Target"), "recentd.rules.model"),
    **dict.fromkeys(("load_rule_files", "load_rules", "load_ruleset", "parse_ruleset_text"),
                    "recentd.rules.parser"),
    **dict.fromkeys(("render_list", "render_rules", "render_save"), "recentd.rules.render"),
}

__all__ = [
    "MATCHES",
    "TARGETS",
    "TRAVERSAL",
    "Chain",
    "CtState",
    "Decision",
    "Engine",
    "Hook",
    "Interest",
    "IpSpec",
    "LogEvent",
    "Match",
    "Notice",
    "ParseResult",
    "Rule",
    "Ruleset",
    "Table",
    "Target",
    "Verdict",
    "load_rule_files",
    "load_rules",
    "load_ruleset",
    "parse_ruleset_text",
    "render_list",
    "render_rules",
    "render_save",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'recentd.rules' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
