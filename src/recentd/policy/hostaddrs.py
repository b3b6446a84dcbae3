"""The host's own addresses (an adapter): ``ip -j addr show`` read as JSON.

Run at start and on the daemon's timer; an address the host holds is never banned
(a host banning itself cuts its own traffic on a shared address, a VIP, a NAT
hairpin). ``parse_ip_addr`` is the pure half, tested on a recorded sample.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

from recentd.errors import BackendError
from recentd.observation import Address

ARGV = ("ip", "-j", "addr", "show")


def parse_ip_addr(text: str) -> list[Address]:
    """Every ``local`` address of ``ip -j addr`` output (link-local zone ids dropped).

    Raises:
        ValueError: not that output.
    """
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of links")
    found: list[Address] = []
    for link in data:
        for info in link.get("addr_info", ()) if isinstance(link, dict) else ():
            local = info.get("local") if isinstance(info, dict) else None
            if isinstance(local, str):
                found.append(ipaddress.ip_address(local.split("%", 1)[0]))
    return found


def read_host_addresses() -> list[Address]:
    """The host's addresses now.

    Raises:
        BackendError: ``ip`` failed or printed something else.
    """
    try:
        done = subprocess.run(list(ARGV), capture_output=True, text=True, check=False,
                              timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendError(str(exc), backend="ip", argv=ARGV) from exc
    if done.returncode != 0:
        raise BackendError("ip -j addr failed", backend="ip", argv=ARGV,
                           returncode=done.returncode, stderr=done.stderr)  # fmt: skip
    try:
        return parse_ip_addr(done.stdout)
    except ValueError as exc:
        raise BackendError(f"unreadable output: {exc}", backend="ip", argv=ARGV) from None
