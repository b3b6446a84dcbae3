"""Run a function in a forked child with another uid (the interpreter itself may not
be executable by that user, so the child never execs)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

NOBODY = 65534


def run_as(uid: int, gid: int, func: Callable[[], object]) -> object:
    """``func()``'s JSON-able result, computed as ``uid``/``gid`` (no extra groups)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(write_end, json.dumps(func()).encode())
            status = 0
        except BaseException as exc:
            os.write(write_end, json.dumps({"child error": repr(exc)}).encode())
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)
