"""Our annotated samples (tests/data/logs): each line's expected events beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import transcript

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
SAMPLES = sorted(p for p in DATA.iterdir() if p.suffix in (".log", ".jsonl"))


def load(path: Path) -> tuple[list[str], list[tuple[int, str, str, str]]]:
    lines: list[str] = []
    expected: list[tuple[int, str, str, str]] = []
    pending: str | None = None
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.startswith("# expect:"):
            pending = text.removeprefix("# expect:").strip()
            continue
        if text.startswith("#") or not text:
            continue
        assert pending is not None, f"{path.name}: no '# expect:' before {text!r}"
        lines.append(text)
        if pending != "none":
            for event in pending.split(" ; "):
                outcome, address, kind = event.split()
                expected.append((len(lines), outcome, address, kind))
        pending = None
    return lines, expected


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample(path: Path) -> None:
    lines, expected = load(path)
    assert transcript(lines, year=2025) == expected


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 3
