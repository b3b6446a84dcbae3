"""A private network namespace running the real iptables-legacy, for golden tests.

Every command is an argv list (never a shell string). The namespace is created
with a random name and always deleted by the context manager, so the host's
own firewall is never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

TOOLS = {4: "/usr/sbin/iptables-legacy", 6: "/usr/sbin/ip6tables-legacy"}
SAVE = {4: "/usr/sbin/iptables-legacy-save", 6: "/usr/sbin/ip6tables-legacy-save"}
#: ipsets made in every namespace: ``-m set``/``-j SET`` rules need them to exist.
SETS = (["ipset", "create", "bl", "hash:ip"], ["ipset", "create", "bl6", "hash:ip", "family", "inet6"])
RESTORE = {4: "/usr/sbin/iptables-legacy-restore", 6: "/usr/sbin/ip6tables-legacy-restore"}


def unavailable_reason() -> str | None:
    """Why the real-iptables tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    missing = [tool for tool in (*TOOLS.values(), *SAVE.values()) if not os.path.exists(tool)]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return None


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], input=stdin,
                              capture_output=True, text=True, check=False, timeout=60)

    def iptables(self, family: int, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([TOOLS[family], *args])

    def reset(self, family: int) -> None:
        for table in ("filter", "mangle", "raw", "nat", "security"):
            self.iptables(family, "-t", table, "-F")
            self.iptables(family, "-t", table, "-X")


@contextmanager
def namespace() -> Iterator[Namespace]:
    name = f"rdgold-{secrets.token_hex(4)}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                             check=False)
    if created.returncode != 0:
        raise RuntimeError(f"ip netns add failed: {created.stderr.strip()}")
    try:
        made = Namespace(name)
        for argv in SETS:  # the ipsets the golden corpus names (iptables checks they exist)
            made.run(argv)
        yield made
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def restore_test(ns: Namespace, family: int, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """``iptables-legacy-restore --test`` on ``data`` exactly as given (bytes: CR, BOM kept)."""
    return subprocess.run(["ip", "netns", "exec", ns.name, RESTORE[family], "--test"],
                          input=data, capture_output=True, check=False, timeout=60)
