"""The sans-I/O core: recent tables with the kernel's exact semantics.

Nothing in this package reads a clock, a file or a socket: time is the integer
``now`` (ticks) its callers pass in, and results are returned as values.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recentd.recent.match import ALL_ONES_MASK, DEFAULT_RING, Command, RecentMatch, Side
    from recentd.recent.options import (
        RECENT_OPTIONS,
        RecentOption,
        check_recent,
        check_table_name,
        parse_recent,
    )
    from recentd.recent.params import MAX_NSTAMPS, ModuleParams, Quirks
    from recentd.recent.procfs import (
        PROC_WRITE_MAX,
        ProcAction,
        ProcCommand,
        ProcFile,
        apply_proc_command,
        format_entry,
        parse_proc_write,
        render_listing,
    )
    from recentd.recent.registry import RecentTables
    from recentd.recent.render import render_recent_print, render_recent_save
    from recentd.recent.table import (
        EntryView,
        RecentTable,
        Subscription,
        TableChanges,
        forwarded_ttl,
        key_of,
    )
    from recentd.recent.ticks import (
        DEFAULT_HZ,
        initial_jiffies,
        ns_to_ticks,
        ticks_to_ns,
        window_ticks,
    )

#: Where each name is defined: imported on first use (PEP 562), so a rule file's
#: ``-m recent`` loads the option parser, not the tables and the /proc language.
_HOMES = {
    **dict.fromkeys(
        ("ALL_ONES_MASK", "DEFAULT_RING", "Command", "RecentMatch", "Side"), "recentd.recent.match"
    ),
    **dict.fromkeys(
        ("RECENT_OPTIONS", "RecentOption", "check_recent", "check_table_name", "parse_recent"),
        "recentd.recent.options",
    ),
    **dict.fromkeys(("MAX_NSTAMPS", "ModuleParams", "Quirks"), "recentd.recent.params"),
    **dict.fromkeys(
        (
            "PROC_WRITE_MAX",
            "ProcAction",
            "ProcCommand",
            "ProcFile",
            "apply_proc_command",
            "format_entry",
            "parse_proc_write",
            "render_listing",
        ),
        "recentd.recent.procfs",
    ),
    **dict.fromkeys(("RecentTables",), "recentd.recent.registry"),
    **dict.fromkeys(("render_recent_print", "render_recent_save"), "recentd.recent.render"),
    **dict.fromkeys(
        ("EntryView", "RecentTable", "Subscription", "TableChanges", "forwarded_ttl", "key_of"),
        "recentd.recent.table",
    ),
    **dict.fromkeys(
        ("DEFAULT_HZ", "initial_jiffies", "ns_to_ticks", "ticks_to_ns", "window_ticks"),
        "recentd.recent.ticks",
    ),
}

__all__ = [
    "ALL_ONES_MASK",
    "DEFAULT_HZ",
    "DEFAULT_RING",
    "MAX_NSTAMPS",
    "PROC_WRITE_MAX",
    "RECENT_OPTIONS",
    "Command",
    "EntryView",
    "ModuleParams",
    "ProcAction",
    "ProcCommand",
    "ProcFile",
    "Quirks",
    "RecentMatch",
    "RecentOption",
    "RecentTable",
    "RecentTables",
    "Side",
    "Subscription",
    "TableChanges",
    "apply_proc_command",
    "check_recent",
    "check_table_name",
    "format_entry",
    "forwarded_ttl",
    "initial_jiffies",
    "key_of",
    "ns_to_ticks",
    "parse_proc_write",
    "parse_recent",
    "render_listing",
    "render_recent_print",
    "render_recent_save",
    "ticks_to_ns",
    "window_ticks",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'recentd.recent' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value
