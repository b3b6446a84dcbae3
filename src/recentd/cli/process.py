"""Switches of the whole process, which only a command throws (never the library):
CPython's cycle collector paused while a replay runs."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """CPython's cycle collector off for a while, then as it was.

    A replay makes millions of short-lived objects while it keeps large tables that hold
    no reference cycles, and each collection would walk those tables again for nothing
    (4% of a flood's replay, measured with ``bench/replay.py``; ~8% of a failure's cost in
    ``logs replay``, whose tables and open connections are tens of thousands of tracked
    objects). A switch of the whole process: the command's to throw, never the library's.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
