# The compiled twin of LogReplay._bulk_chunk (recentd/logs/_bulk.c): its two functions.
from typing import Any

def scan(text: str, first: int, context: tuple[Any, ...], /) -> tuple[int, int | None, int, int]:
    """(known, last_ns, lines read in bulk, lines) of LogReplay._bulk_chunk's loop."""

def count_lines(text: str, prefix: str, /) -> tuple[int, int]:
    """``text.count("\\n")`` and ``text.count("\\n" + prefix) + text.startswith(prefix)``."""
