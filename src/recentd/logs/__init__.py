"""Auth evidence from logs: lines in, attributed events out (sans-I/O).

Layout: :mod:`.records` finds a line's format and header; :mod:`.sshd_messages`
reads one sshd/dropbear message; :mod:`.sshd` keeps per-connection state and counts;
:mod:`.custom` builds user-defined parsers from configuration; :mod:`.parsers`
names them (``"sshd"`` or a configured one); :mod:`.summary` aggregates events
per address; :mod:`.observe` turns a source's batches into observations, reading the
commonest sshd lines with :mod:`.fast` (a twin checked against the line-by-line path);
:mod:`.replay` runs old logs through the pipeline, chunks of classic lines in bulk with
the patterns of :mod:`.bulk` (a twin checked the same way).
Reading files is the caller's job (the CLI's).
"""

from recentd.logs.address import parse_address
from recentd.logs.custom import CustomParser, load_custom_parser
from recentd.logs.events import AuthEvent, Kind, Outcome, UserCategory
from recentd.logs.parsers import EventParser, make_parser
from recentd.logs.records import LineFormat, LogRecord, RecordParser
from recentd.logs.sshd import MAX_SESSIONS, SshdParser
from recentd.logs.timestamps import ClassicYear

__all__ = [
    "MAX_SESSIONS",
    "AuthEvent",
    "ClassicYear",
    "CustomParser",
    "EventParser",
    "Kind",
    "LineFormat",
    "LogRecord",
    "Outcome",
    "RecordParser",
    "SshdParser",
    "UserCategory",
    "load_custom_parser",
    "make_parser",
    "parse_address",
]
