"""The policy's pure modules import nothing that reads a clock, a file, a socket or a
process (STYLE practice 1); ``core.py`` adds only logging; the adapters are the rest."""

from __future__ import annotations

import pytest

from tests.test_core_purity import BANNED, SRC, imported_modules

POLICY = SRC / "policy"
PURE = ("allow", "durations", "escalation", "history", "purge", "settings")
ADAPTERS = {"conntrack", "hostaddrs", "store", "control", "__init__", "core"}


@pytest.mark.parametrize("name", PURE)
def test_pure_module_does_no_io(name: str) -> None:
    assert imported_modules(POLICY / f"{name}.py") & BANNED == set()


def test_core_only_logs() -> None:
    assert imported_modules(POLICY / "core.py") & BANNED == {"logging"}


def test_every_module_is_named_here() -> None:
    assert {p.stem for p in POLICY.glob("*.py")} == set(PURE) | ADAPTERS
