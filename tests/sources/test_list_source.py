"""The in-memory source passes the conformance suite every real source passes."""

from __future__ import annotations

from recentd.testing.sources import ListHarness, check_source


def test_list_source_conforms() -> None:
    check_source(ListHarness())
