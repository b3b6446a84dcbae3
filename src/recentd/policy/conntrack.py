"""Cutting a banned source's open connections (an adapter): ``conntrack -D -s ADDR``.

The kernel ban set drops only packets that open a connection (``ct state new``), so
sessions already established would go on. Deleting their conntrack entries makes
their next packet look new again (the kernel picks up a mid-stream TCP packet as a
new connection: ``nf_conntrack_tcp_loose``, on by default), and the set drops it. The
argv is a list; the address is validated by :mod:`ipaddress` before it is passed.
``conntrack`` exits 1 when nothing matched: that is no error.
"""

from __future__ import annotations

import re
import subprocess

from recentd.errors import BackendError
from recentd.observation import Address


def cut_argv(address: Address) -> list[str]:
    family = "ipv4" if address.version == 4 else "ipv6"
    return ["conntrack", "-D", "-f", family, "-s", str(address)]


def cut_connections(address: Address) -> int:
    """Delete every conntrack entry whose original source is ``address``; how many.

    Raises:
        BackendError: the tool is missing or failed.
    """
    argv = cut_argv(address)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendError(str(exc), backend="conntrack", argv=tuple(argv)) from exc
    found = re.search(r"(\d+) flow entr", done.stderr + done.stdout)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not found):
        raise BackendError("conntrack -D failed", backend="conntrack", argv=tuple(argv),
                           returncode=done.returncode, stderr=done.stderr)  # fmt: skip
    return int(found.group(1)) if found else 0
