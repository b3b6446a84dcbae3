from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kernel import KernelBed

#: Filled by the tests, printed at the end of the session (the note quotes it).
STATS: dict[str, object] = {}


def _kernel_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables-legacy)"
    for tool in ("ip", "iptables-legacy-restore", "ip6tables-legacy-restore", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True)
    if probe.returncode != 0:
        return "ip netns is not available"
    return None


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelBed]:
    missing = _kernel_missing()
    if missing:
        pytest.skip(f"kernel-differential suite skipped: {missing}")
    bed = KernelBed(Path(tmp_path_factory.mktemp("kernel")))
    try:
        bed.up()
        yield bed
    finally:
        bed.down()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STATS:
        terminalreporter.write_line(
            "kernel-differential: "
            + ", ".join(f"{key}={value}" for key, value in sorted(STATS.items()))
        )
