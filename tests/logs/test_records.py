"""Line formats, headers and times: one raw line in, its record out."""

from __future__ import annotations

import calendar
import json
import time
from zoneinfo import ZoneInfo

import pytest

from recentd.logs import ClassicYear, LineFormat, RecordParser

NS = 10**9
UTC = ZoneInfo("UTC")


def epoch(*fields: int) -> int:
    return calendar.timegm((*fields, 0, 0, 0)) * NS


def parse(text: str, **policy: object) -> tuple:
    record = RecordParser(ClassicYear(**policy)).parse(text, 7)  # type: ignore[arg-type]
    return (record.format, record.time, record.host, record.program, record.pid, record.message)


HEADERS = {
    "Mar 14 10:22:01 web1 sshd[4242]: Failed password": ("web1", "sshd", 4242, "Failed password"),
    "Jul  3 14:59:17 host sshd-session[1571]: Failed x": ("host", "sshd-session", 1571, "Failed x"),
    "May 9 11:11:17 sshd[30876]: Invalid user www": (None, "sshd", 30876, "Invalid user www"),
    "Jan  1 00:00:00 <10.5> foxtrot sshd[1234]: Invalid": ("foxtrot", "sshd", 1234, "Invalid"),
    "Jun 20 02:18:39 vps auth.info sshd[13482]: Invalid": ("vps", "sshd", 13482, "Invalid"),
    "Mar  3 00:17:22 [sshd]: User root from": (None, "sshd", None, "User root from"),
    "Jun 25 23:53:34 [sshd] User root from": (None, "sshd", None, "User root from"),
    "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed": (
        "dusky", "sshd", 20878, "[ID 800047 auth.info] Failed"),
    "Jun  5 12:34:56.000 myhost sshd[12345]: Invalid": ("myhost", "sshd", 12345, "Invalid"),
    "Nov 28 09:16:03 srv CRON[77]: pam_unix(cron:session)": ("srv", "CRON", 77,
                                                             "pam_unix(cron:session)"),
}


@pytest.mark.parametrize(("text", "expected"), HEADERS.items())
def test_classic_headers(text: str, expected: tuple) -> None:
    fmt, time, *parts = parse(text, year=2025, tz=UTC)
    assert fmt is LineFormat.CLASSIC and time is not None
    assert tuple(parts) == expected


def test_bare_messages_and_bare_headers() -> None:
    assert parse("Invalid user inexu from 6.6.6.0")[0:6] == (
        LineFormat.BARE, None, None, None, None, "Invalid user inexu from 6.6.6.0")
    assert parse(" sshd[123]: Connection closed by 21.21.21.21 [preauth]")[3:] == (
        "sshd", 123, "Connection closed by 21.21.21.21 [preauth]")
    # a level word is no program: the message stays whole
    assert parse("error: PAM: authentication failure for mario from 6.6.6.0")[3:] == (
        None, None, "error: PAM: authentication failure for mario from 6.6.6.0")


def test_rfc3339_offsets_and_full_precision() -> None:
    fmt, time, host, program, pid, _ = parse(
        "2025-03-14T10:22:07.123456789+01:00 web1 sshd-session[4246]: Disconnected")
    assert (fmt, host, program, pid) == (LineFormat.RFC3339, "web1", "sshd-session", 4246)
    assert time == epoch(2025, 3, 14, 9, 22, 7) + 123_456_789
    # journalctl short-iso writes the offset without a colon
    assert parse("2025-03-14T10:22:01+0100 web1 sshd[1]: x")[1] == epoch(2025, 3, 14, 9, 22, 1)
    assert parse("2025-03-14T10:22:01Z web1 sshd[1]: x")[1] == epoch(2025, 3, 14, 10, 22, 1)
    assert parse("2019-07-08T17:40:16.954167-04:00 h sshd[1]: x")[1] == (
        epoch(2019, 7, 8, 21, 40, 16) + 954_167_000)


def test_rfc3339_without_offset_is_local_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse("2015-05-27T04:31:27.46667 auth.info: Invalid", tz=berlin)[1] == (
        epoch(2015, 5, 27, 2, 31, 27) + 466_670_000)


def test_rfc5424_with_structured_data() -> None:
    text = ('<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - '
            '[timeQuality tzKnown="1" isSynced="0"][xxx@123 test="[brackets]"] Failed unknown')
    fmt, time, host, program, pid, message = parse(text)
    assert (fmt, host, program, pid, message) == (
        LineFormat.RFC5424, "hostname.example.com", "sshd", 55555, "Failed unknown")
    assert time == epoch(2019, 7, 8, 21, 40, 17) + 954_167_000
    assert parse("<38>1 - - sshd - - - Invalid user x from 1.2.3.4")[1:] == (
        None, None, "sshd", None, "Invalid user x from 1.2.3.4")


def test_journal_json_with_message_as_bytes() -> None:
    message = "Failed password for invalid user \xff\xfe from 192.0.2.9 port 22 ssh2"
    raw = [*b"Failed password for invalid user ", 0xFF, 0xFE,
           *b" from 192.0.2.9 port 22 ssh2"]
    entry = {"__REALTIME_TIMESTAMP": "1700000000123456", "_HOSTNAME": "srv",
             "SYSLOG_IDENTIFIER": "sshd-session", "_PID": "812", "MESSAGE": raw}
    fmt, time, host, program, pid, text = parse(json.dumps(entry))
    assert (fmt, time, host, program, pid) == (
        LineFormat.JOURNAL, 1_700_000_000_123_456_000, "srv", "sshd-session", 812)
    assert text == message.replace("\xff", "\ufffd").replace("\xfe", "\ufffd")
    # _COMM and SYSLOG_PID stand in for missing fields; a broken line is a bare message
    entry = {"_COMM": "sshd", "SYSLOG_PID": "9", "MESSAGE": "x"}
    assert parse(json.dumps(entry))[3:] == ("sshd", 9, "x")
    assert parse('{"MESSAGE": "trunc')[0] is LineFormat.BARE


def test_classic_year_from_the_first_line_and_new_year() -> None:
    records = RecordParser(ClassicYear(year=2024, tz=UTC))
    times = [records.parse(text, n).time for n, text in enumerate([
        "Dec 31 23:59:59 h sshd[1]: a",
        "Jan  1 00:00:00 h sshd[1]: b",  # crossed New Year: 2025
        "Dec 31 23:59:58 h sshd[1]: c",  # a late line: back a second, not a year on
        "Feb  1 00:00:00 h sshd[1]: d",
        "Jan 31 23:59:59 h sshd[1]: e",  # out of order across a month: same year
    ], 1)]
    assert times == [epoch(2024, 12, 31, 23, 59, 59), epoch(2025, 1, 1, 0, 0, 0),
                     epoch(2024, 12, 31, 23, 59, 58), epoch(2025, 2, 1, 0, 0, 0),
                     epoch(2025, 1, 31, 23, 59, 59)]


def test_classic_year_without_year_is_the_latest_not_in_the_future() -> None:
    now = epoch(2026, 1, 2, 12, 0, 0)
    records = RecordParser(ClassicYear(now=now, tz=UTC))
    assert records.parse("Dec 30 10:00:00 h sshd[1]: a", 1).time == epoch(2025, 12, 30, 10, 0, 0)
    assert records.parse("Jan  2 11:00:00 h sshd[1]: b", 2).time == epoch(2026, 1, 2, 11, 0, 0)
    # a day of slack for skewed clocks and zones, then it is last year's
    assert records.parse("Jan  3 11:00:00 h sshd[1]: c", 3).time == epoch(2026, 1, 3, 11, 0, 0)
    assert records.parse("Jan  4 13:00:00 h sshd[1]: d", 4).time == epoch(2025, 1, 4, 13, 0, 0)


def test_classic_times_are_local_time_of_the_zone() -> None:
    text = "Jul  1 12:00:00 h sshd[1]: x"
    assert parse(text, year=2025, tz=ZoneInfo("Europe/Berlin"))[1] == epoch(2025, 7, 1, 10, 0, 0)
    assert parse(text, year=2025, tz=ZoneInfo("America/New_York"))[1] == epoch(2025, 7, 1, 16, 0, 0)
    # winter: Berlin is UTC+1; the hour cache must not carry the summer offset over
    records = RecordParser(ClassicYear(year=2025, tz=ZoneInfo("Europe/Berlin")))
    assert records.parse("Oct 26 01:30:00 h sshd[1]: x", 1).time == epoch(2025, 10, 25, 23, 30, 0)
    assert records.parse("Oct 26 03:30:00 h sshd[1]: x", 2).time == epoch(2025, 10, 26, 2, 30, 0)


def test_classic_times_follow_the_TZ_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert parse("Jul  1 12:00:00 h sshd[1]: x", year=2025, tz=None)[1] == (
            epoch(2025, 7, 1, 3, 0, 0))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_dates_that_do_not_exist_have_no_time() -> None:
    assert parse("Feb 29 10:00:00 h sshd[1]: x", year=2025, tz=UTC)[1] is None
    assert parse("Feb 29 10:00:00 h sshd[1]: x", year=2024, tz=UTC)[1] == (
        epoch(2024, 2, 29, 10, 0, 0))
    assert parse("2025-02-30T10:00:00Z h sshd[1]: x")[1] is None
