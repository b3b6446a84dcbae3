"""pyproject.toml declares exactly what the code imports: every third-party module the
package imports is declared (as a dependency or in an extra), every dependency of the
package's extras is imported by some module of the package, and the test-only and
bench-only ones are imported by tests/ and bench/."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Distribution name → the module it installs, where the two differ.
MODULE_OF = {"pip-nftables": "nftables", "NetfilterQueue": "netfilterqueue",
             "systemd-python": "systemd", "prometheus-client": "prometheus_client"}
EXTRAS_NOT_OF_THE_PACKAGE = {"dev": "tests", "bench": "bench"}
TOOLS = {"pytest", "hypothesis", "ruff", "mypy"}  # run, or imported by tests only


def _requirement_name(spec: str) -> str:
    for stop in "<>=![; ":
        spec = spec.split(stop, maxsplit=1)[0]
    return spec


def _imported(directory: Path) -> set[str]:
    names: set[str] = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"recentd", "tests", "__future__"}


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _modules(specs: list[str]) -> set[str]:
    return {MODULE_OF.get(name, name) for name in map(_requirement_name, specs)}


def test_every_module_the_package_imports_is_declared():
    project = _project()
    extras = project["optional-dependencies"]
    declared = _modules(project["dependencies"])
    for name, specs in extras.items():
        if name not in EXTRAS_NOT_OF_THE_PACKAGE and name != "all":
            declared |= _modules(specs)
    assert _imported(ROOT / "src" / "recentd") - declared == set()


def test_every_declared_dependency_is_imported_where_it_is_declared_for():
    project = _project()
    extras = project["optional-dependencies"]
    package = _imported(ROOT / "src" / "recentd")
    assert _modules(project["dependencies"]) - package == set()
    for name, specs in extras.items():
        if name == "all":
            continue
        where = EXTRAS_NOT_OF_THE_PACKAGE.get(name)
        used = package if where is None else _imported(ROOT / where)
        assert _modules(specs) - used - TOOLS == set(), f"extra {name!r}"
