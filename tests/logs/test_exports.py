"""The public surface of recentd.logs, listed once."""

from __future__ import annotations

import recentd.logs


def test_exported_names() -> None:
    assert sorted(recentd.logs.__all__) == sorted([
        "MAX_SESSIONS", "AuthEvent", "ClassicYear", "CustomParser", "EventParser", "Kind",
        "LineFormat", "LogRecord", "Outcome", "RecordParser", "SshdParser", "UserCategory",
        "load_custom_parser", "make_parser", "parse_address",
    ])
    for name in recentd.logs.__all__:
        assert getattr(recentd.logs, name) is not None
