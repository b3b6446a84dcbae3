"""The log parser is sans-I/O: its modules import nothing that reads a file, a
socket, a process or the clock (the CLI adapter does that), and never ask the time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "recentd" / "logs"
MODULES = sorted(PACKAGE.glob("*.py"))
BANNED = {"time", "socket", "os", "subprocess", "threading", "selectors", "asyncio",
          "pathlib", "logging", "random", "io", "shutil", "signal", "gzip", "sys"}
CLOCK_CALLS = {"now", "today", "utcnow", "time_ns", "monotonic"}


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def called_attributes(tree: ast.AST) -> set[str]:
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert imported(tree) & BANNED == set()
    assert called_attributes(tree) & CLOCK_CALLS == set()


def test_the_package_is_there() -> None:
    assert len(MODULES) >= 8
