"""The sans-I/O core: recent tables with the kernel's exact semantics.

Nothing in this package reads a clock, a file or a socket: time is the integer
``now`` (ticks) its callers pass in, and results are returned as values.
"""

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
from recentd.recent.ticks import DEFAULT_HZ, initial_jiffies, ns_to_ticks, ticks_to_ns, window_ticks

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
