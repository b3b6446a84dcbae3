"""The sans-I/O rule, checked mechanically and transitively (STYLE practice 1): every
module meant to be pure — the core, rule parsing and evaluation, packet decoding,
connection tracking, ban planning, replay's report — imports nothing that reads a clock, a file, a
socket or a process, or flips a switch of the whole process, neither itself nor
through any recentd module it imports, at any depth.

How imports are followed: every ``import``/``from … import`` statement of a module,
at any place in it (a lazy import inside a function runs too), except under ``if
TYPE_CHECKING:`` (never run). ``from recentd.a import b`` follows ``recentd.a.b`` when
that is a module, else ``recentd.a`` (the package's ``__init__``). The ``__init__``
of a package Python loads on the way to a submodule is not followed: what counts is
the code a module uses, not what its package re-exports.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "recentd"

#: Every module meant to be pure, by name (a package: all of its modules).
PURE_PACKAGES = ("recentd.recent", "recentd.rules.extensions", "recentd.logs")
PURE_MODULES = (
    # rule language: parsing, the model, rendering, evaluation, remembered decisions
    "recentd.rules.lexer", "recentd.rules.command", "recentd.rules.builder",
    "recentd.rules.parser", "recentd.rules.model", "recentd.rules.netaddr",
    "recentd.rules.ippart", "recentd.rules.render", "recentd.rules.compile",
    "recentd.rules.evaluate", "recentd.rules.counters", "recentd.rules.limit",
    "recentd.rules.memo", "recentd.rules.rawmemo", "recentd.rules.interest",
    # packet decoding
    "recentd.packets.packet", "recentd.packets.layout", "recentd.packets.decode",
    # connection tracking
    "recentd.packets.conntrack", "recentd.packets.conntrack_keys",
    "recentd.packets.conntrack_model", "recentd.packets.tcp_conntrack",
    # ban planning
    "recentd.live.policy", "recentd.commands", "recentd.backends",
    # replay's report and its strategies' contract (the replayer takes captured records,
    # whose module also reads capture files)
    "recentd.replay.summary", "recentd.replay.strategy",
    # evidence: observations, what a login does; the policy's decisions (allow lists,
    # escalation, purge, history, settings) — its adapters are conntrack, hostaddrs, store
    "recentd.observation", "recentd.pam.policy",
    "recentd.policy.allow", "recentd.policy.durations", "recentd.policy.escalation",
    "recentd.policy.history", "recentd.policy.purge", "recentd.policy.settings",
    # the fleet's rules: the event format and the merge
    "recentd.fleet.events", "recentd.fleet.merge",
)  # fmt: skip
#: What a pure module never imports.
BANNED = frozenset({
    "time", "datetime",  # clocks
    "os", "io", "pathlib", "shutil", "tempfile", "glob", "fcntl", "mmap",  # files
    "socket", "select", "selectors", "asyncio", "ssl",  # sockets
    "subprocess", "signal", "threading", "multiprocessing",  # processes
    "logging", "random",  # handlers, a hidden seed
    "gc",  # a switch of the whole process (replay's pause belongs to the CLI)
})  # fmt: skip
#: Known impurities, each with why and where it is to go: this list only shrinks.
ALLOWED: dict[str, frozenset[str]] = {
    # load_rules reads the file it is given; to move into an adapter module beside the
    # parser (parser.py is the rules helper's, issue 10)
    "recentd.rules.parser": frozenset({"pathlib"}),
    # calendar arithmetic and time zones for syslog times (a year, a zone's offset at a
    # date); the clock is never read: `now` is an argument
    "recentd.logs.timestamps": frozenset({"datetime"}),
}


def _path(module: str) -> Path | None:
    """The module's Python source; for a compiled module (a ``.c`` file beside it), its
    stub (what Python sees of it: the C file imports nothing, see
    :func:`test_compiled_modules_include_no_io`)."""
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py", base.with_suffix(".pyi")):
        if path.is_file():
            return path
    return None


#: The headers a compiled module of the package may include: the C API and memory,
#: nothing that reads a clock, a file, a socket or a process.
C_HEADERS = frozenset({"Python.h", "structmember.h", "limits.h", "stdint.h", "string.h"})
#: C API calls a compiled module never makes: importing (what Python would see as an
#: import), the collector's switch, files and the OS.
C_BANNED = re.compile(r"\b(?:PyImport_|PyGC_|PyFile_|PyOS_|PySys_)\w*"
                      r"|\b(?:fopen|open|read|write|getenv|clock_gettime|gettimeofday|time)\s*\(")


def _pure_modules() -> list[str]:
    names = list(PURE_MODULES)
    for package in PURE_PACKAGES:
        folder = SRC.joinpath(*package.split("."))
        names += [f"{package}.{path.stem}" if path.stem != "__init__" else package
                  for path in sorted(folder.glob("*.py"))]
    return names


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@cache
def imports(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """A recentd module's direct imports: (other top-level packages, recentd modules)."""
    path = _path(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    outside: set[str] = set()
    inside: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            names = [f"{base}.{alias.name}" if _path(f"{base}.{alias.name}") else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == ROOT:
                inside.add(name)
            else:
                outside.add(top)
    return frozenset(outside), frozenset(inside - {module})


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def banned_imports(module: str) -> dict[str, list[str]]:
    """Each banned import reached from ``module``, with the chain of recentd modules
    that reaches it (breadth first: a shortest chain)."""
    found: dict[str, list[str]] = {}
    chains = {module: [module]}
    queue = [module]
    while queue:
        current = queue.pop(0)
        outside, inside = imports(current)
        for name in sorted(outside & BANNED - ALLOWED.get(current, frozenset())):
            found.setdefault(name, chains[current])
        for name in sorted(inside):
            if name not in chains:
                chains[name] = [*chains[current], name]
                queue.append(name)
    return found


@pytest.mark.parametrize("module", _pure_modules())
def test_pure_module_reaches_no_io(module: str) -> None:
    found = banned_imports(module)
    assert not found, "\n".join(f"{name}: via {' -> '.join(chain)}"
                                for name, chain in found.items())


def test_compiled_modules_include_no_io() -> None:
    """A compiled module's C file includes only the C API and memory headers and calls
    none of the C API's doors to imports, the collector, files or the OS; its stub is
    what the import check above reads."""
    sources = sorted(SRC.rglob("*.c"))
    assert sources, "recentd/logs/_bulk.c"
    for source in sources:
        text = source.read_text()
        included = set(re.findall(r'#include [<"]([^>"]+)[>"]', text))
        assert included <= C_HEADERS, (source.name, included - C_HEADERS)
        assert not C_BANNED.findall(text), (source.name, C_BANNED.findall(text))
        assert source.with_suffix(".pyi").is_file(), source.name


def test_every_listed_module_exists_and_the_list_is_whole() -> None:
    assert all(_path(module) for module in _pure_modules())
    assert len([m for m in _pure_modules() if m.startswith("recentd.recent")]) >= 8
    assert len(_pure_modules()) >= 40


def test_the_check_sees_through_imports() -> None:
    """The check itself: a lazy import counts, TYPE_CHECKING does not, and a chain of
    recentd modules is followed (the CLI reads files through several modules)."""
    _, inside = imports("recentd.cli.replay")
    assert "recentd.replay" in inside and "recentd.cli.process" in inside
    assert "gc" in imports("recentd.cli.process")[0]
    chain = banned_imports("recentd.cli.replay")
    assert "pathlib" in chain and "gc" in chain
    assert "numpy" not in imports("recentd.packets.layout")[0]  # typing only


def test_allowed_impurities_are_still_there() -> None:
    """An entry of ALLOWED that is no longer needed is removed (the list only shrinks)."""
    for module, names in ALLOWED.items():
        assert names <= imports(module)[0], module
