"""The sans-I/O rule, checked mechanically: the core modules import nothing that
reads a clock, a file, a socket or a process (STYLE practice 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "recentd"
CORE = sorted((SRC / "recent").glob("*.py"))
BANNED = {
    "time",
    "socket",
    "os",
    "subprocess",
    "threading",
    "selectors",
    "asyncio",
    "pathlib",
    "logging",
    "random",
    "datetime",
    "io",
    "shutil",
    "signal",
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_module_does_no_io(path: Path) -> None:
    assert imported_modules(path) & BANNED == set()


def test_there_is_a_core_to_check() -> None:
    assert len(CORE) >= 8
