"""The 43 real rule files from public repositories (``../shared/real-rules/``).

Each either loads or fails with a RuleError naming FILE:LINE:COL — never another
exception, never a save file read as the wrong family. Which ones iptables itself
accepts, and agreeing with it on all of them, is issue 16's work.
"""

from __future__ import annotations

import pytest

from recentd.cli.main import main
from recentd.errors import RuleError
from recentd.rules import load_rules
from recentd.rules.family import section_families
from tests.shared import REAL_RULES

REAL = REAL_RULES


def _manifest() -> list[tuple[str, str, str]]:
    if not (REAL / "manifest.tsv").is_file():
        return []
    rows = (line.split("\t") for line in (REAL / "manifest.tsv").read_text().splitlines())
    return [(name, kind, family) for name, kind, family in rows if not name.startswith("#")]


MANIFEST = _manifest()


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    if not MANIFEST:
        print(f"skipping real rule files: {REAL} is absent on this machine")
        pytest.skip(f"{REAL} is absent")


@pytest.mark.parametrize("row", MANIFEST or [("-", "-", "-")], ids=lambda row: row[0])
def test_loads_or_fails_with_a_located_rule_error(
    row: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, kind, family = row
    path = REAL / "files" / name
    try:
        result = load_rules(path)
    except RuleError as exc:
        assert exc.source == str(path) and exc.line > 0
        assert main(["rules", "check", str(path)]) == 2
        assert capsys.readouterr().err.startswith(f"{path}:{exc.line}:")
        return
    assert main(["rules", "check", str(path)]) == 0
    if kind == "save":
        assert result.ruleset.families() == (int(family),)
    else:
        assert any(True for _ in result.ruleset.rules()), "a script that loads makes rules"


@pytest.mark.parametrize("row", [r for r in MANIFEST if r[1] == "save"] or [("-", "-", "4")],
                         ids=lambda row: row[0])
def test_save_files_are_read_as_their_family(row: tuple[str, str, str]) -> None:
    name, _, family = row
    text = (REAL / "files" / name).read_text(encoding="utf-8", errors="surrogateescape")
    assert set(section_families(text.split("\n"), None, name).values()) == {int(family)}
