"""The sshd parser: records in, counted :class:`~recentd.logs.events.AuthEvent` s out.

Rules (the counting rule is the ``attempts`` policy of the shared log generator):

- Every ``Failed <method> …`` line is one failure.  A connection (one sshd process,
  keyed by host and pid) that ends before authentication with a user and no
  ``Failed`` line is one failure, at its closing line.  ``maximum authentication
  attempts exceeded`` (and the old ``Disconnecting: Too many authentication
  failures``) is that closing count brought forward, so the close that follows does
  not count again.  PerSourcePenalties' ``srclimit_penalise`` lines count;
  ``drop connection`` lines (rate-limited, one per refused connection) do not.
- ``Invalid user``, ``not allowed``, PAM, ``Received disconnect``, banner and
  negotiation lines are *probes*: reported with their address, never counted.
- A line without an address takes its connection's; a count that has no address
  yet waits in its connection and is reported at the first line that brings one.
- Where a message can be read with two addresses (attacker text on both sides of
  the address), the connection's known address decides: one connection has one
  peer.  Without one, the reading sshd's grammar prefers (the rightmost) stands.
- Memory is bounded: at most :data:`MAX_SESSIONS` open connections are remembered;
  beyond that the least recently active is forgotten (a forgotten connection that
  later closes is treated as new).  Closed connections are forgotten at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from recentd.logs.events import AuthEvent, IPAddress, Kind, Outcome
from recentd.logs.records import SSH_PROGRAMS, LogRecord
from recentd.logs.sshd_messages import Action, Observation, observe

#: Open connections remembered at once (each costs ~200 bytes): far above what one
#: sshd holds open (MaxStartups defaults to 10:30:100).
MAX_SESSIONS = 65_536


@dataclass(slots=True)
class Session:
    """One open connection's state (the bulk replay path reads and moves it too)."""

    address: IPAddress | None = None
    port: int | None = None
    user: str | None = None
    user_invalid: bool = False
    counted: bool = False
    authenticated: bool = False
    pending: bool = False  #: a count waiting for an address
    banner: bool = False  #: the connection failed at the banner stage


SessionKey = tuple[str | None, int]

T = TypeVar("T")
#: How an event is built from its parts, in :class:`AuthEvent`'s field order (outcome,
#: address, time, kind, line, user, user_invalid, service, pid, host).  ``AuthEvent``
#: itself for :meth:`SshdParser.feed`; the observing parser builds its observation
#: straight from the parts (:mod:`recentd.logs.observe`), saving an ``AuthEvent`` per
#: event (1.9 µs of 2.5 µs, measured).
EventMaker = Callable[
    [Outcome, IPAddress, "int | None", Kind, int, "str | None", bool, str, "int | None",
     "str | None"],
    T,
]


class SshdParser:
    """Feed records of a log in order; get the events each one makes.

    Args:
        max_sessions: the bound on remembered open connections.
    """

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[SessionKey, Session] = OrderedDict()
        self._max_sessions = max_sessions

    def feed(self, record: LogRecord) -> list[AuthEvent]:
        """The events ``record`` makes (often none)."""
        return self.feed_as(record, AuthEvent)

    def feed_as(self, record: LogRecord, make: EventMaker[T]) -> list[T]:
        """:meth:`feed`, with each event built by ``make`` from its parts (the same
        events, the same state changes: only the value handed back differs)."""
        if record.program is not None and record.program not in SSH_PROGRAMS:
            return []
        observation = observe(record.message)
        if observation is None:
            return []
        key = (record.host, record.pid) if record.pid is not None else None
        session = self._session(key)
        events = _Step(record, session, observation, make).run()
        if observation.action is Action.CLOSE and key is not None:
            self._sessions.pop(key, None)
        return events

    def close(self) -> list[AuthEvent]:
        """End of input: forget every connection.  Nothing is counted for connections
        still open (their closing line is not in this input)."""
        self._sessions.clear()
        return []

    def feed_plain(  # noqa: PLR0917 (a message's parts, flat: no tuple to build)
        self, host: str, pid: int, time: int | None, line: int, program: str, action: Action,
        kind: Kind, address: IPAddress, port: int | None, user: str | None,
        user_invalid: bool, preauth: bool, who: str | None, make: EventMaker[T],
    ) -> list[T]:  # fmt: skip
        """:meth:`feed_as` for a message read as ``observe`` reads it, with a pid,
        an address and no alternative reading, whose action is a context line, a
        failure, a success or a close — the commonest sshd lines (:mod:`.fast`).

        The twin of :class:`_Step` for those actions, flattened: no record, observation
        or step object per line (the lines of a generated log went from ~12 to ~7 µs,
        measured on the loaded 2-core machine).  ``tests/logs/test_fast_path.py`` checks
        that both give the same events and leave the same sessions.
        """
        key = (host, pid)
        sessions = self._sessions
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = Session()
            if len(sessions) > self._max_sessions:
                sessions.popitem(last=False)
        else:
            sessions.move_to_end(key)
        events: list[T] = []
        session.address = address
        session.port = port or session.port
        if session.pending:
            session.pending = False
            events.append(make(Outcome.FAILURE, address, time, Kind.MAX_ATTEMPTS, line,
                               session.user, session.user_invalid, program, pid, host))  # fmt: skip
        if user is not None:
            session.user, session.user_invalid = user, user_invalid
        if action is Action.CONTEXT:
            events.append(make(Outcome.PROBE, address, time, kind, line, user, user_invalid,
                               program, pid, host))  # fmt: skip
        elif action is Action.FAILED:
            session.counted = True
            events.append(make(Outcome.FAILURE, address, time, kind, line, user, user_invalid,
                               program, pid, host))  # fmt: skip
        elif action is Action.ACCEPTED:
            session.authenticated = True
            events.append(make(Outcome.SUCCESS, address, time, kind, line, user, user_invalid,
                               program, pid, host))  # fmt: skip
        else:  # Action.CLOSE
            sessions.pop(key, None)
            if session.authenticated or who == "user" or session.counted:
                return events
            preauth = preauth or who is not None
            if preauth and session.user is not None:
                session.counted = True
                user, user_invalid = session.user, session.user_invalid
                events.append(make(Outcome.FAILURE, address, time, Kind.PREAUTH_CLOSE, line,
                                   user, user_invalid, program, pid, host))  # fmt: skip
            elif preauth or session.banner:
                events.append(make(Outcome.PROBE, address, time, Kind.PREAUTH_CLOSE, line,
                                   None, False, program, pid, host))  # fmt: skip
        return events

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    @property
    def sessions(self) -> OrderedDict[SessionKey, Session]:
        """The open connections, least recently active first: the bulk replay path
        (:meth:`recentd.logs.replay.LogReplay.feed_text`) moves them as ``feed_plain`` does."""
        return self._sessions

    @property
    def max_sessions(self) -> int:
        return self._max_sessions

    def _session(self, key: SessionKey | None) -> Session:
        if key is None:
            return Session()
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = Session()
            if len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
        return session


class _Step(Generic[T]):
    """One record applied to its connection."""

    __slots__ = ("events", "make", "observation", "record", "session")

    def __init__(self, record: LogRecord, session: Session, observation: Observation,
                 make: EventMaker[T]) -> None:  # fmt: skip
        self.record = record
        self.session = session
        self.observation = observation
        self.make = make
        self.events: list[T] = []

    def run(self) -> list[T]:
        address = self._address()
        session, observation = self.session, self.observation
        if address is not None:
            session.address = address
            session.port = observation.port or session.port
            if session.pending:
                session.pending = False
                self._emit(Outcome.FAILURE, Kind.MAX_ATTEMPTS, session.user, session.user_invalid)
        if observation.user is not None:
            session.user, session.user_invalid = observation.user, observation.user_invalid
        _ACTIONS[observation.action._value_](self)  # by value: see _ACTIONS
        return self.events

    def _address(self) -> IPAddress | None:
        observation, known = self.observation, self.session.address
        if observation.address is None:
            return None
        if known is not None and known in observation.alternatives:
            return known
        return observation.address

    def _emit(
        self, outcome: Outcome, kind: Kind, user: str | None = None, invalid: bool = False
    ) -> None:
        address = self.session.address
        if address is None:
            return
        record = self.record
        self.events.append(
            self.make(
                outcome, address, record.time, kind, record.line, user, invalid,
                record.program or "", record.pid, record.host,
            )
        )

    def _own(self, outcome: Outcome, kind: Kind | None = None) -> None:
        observation = self.observation
        self._emit(outcome, kind or observation.kind, observation.user, observation.user_invalid)

    def failed(self) -> None:
        self.session.counted = True
        self._own(Outcome.FAILURE)

    def accepted(self) -> None:
        self.session.authenticated = True
        self._own(Outcome.SUCCESS)

    def context(self) -> None:
        self._own(Outcome.PROBE)

    def max_attempts(self) -> None:
        session = self.session
        if session.counted:
            self._own(Outcome.PROBE)
            return
        session.counted = True
        if session.address is None:
            session.pending = True
            return
        self._emit(Outcome.FAILURE, Kind.MAX_ATTEMPTS, session.user, session.user_invalid)

    def close(self) -> None:
        session, observation = self.session, self.observation
        if session.authenticated or observation.who == "user" or session.counted:
            return
        preauth = observation.preauth or observation.who is not None
        if preauth and session.user is not None:
            session.counted = True
            self._emit(Outcome.FAILURE, Kind.PREAUTH_CLOSE, session.user, session.user_invalid)
        elif preauth or session.banner:
            self._emit(Outcome.PROBE, Kind.PREAUTH_CLOSE)

    def penalty(self) -> None:
        self._emit(Outcome.FAILURE, Kind.PENALTY)

    def note(self) -> None:
        """The address is learnt (above); the line itself reports nothing."""

    def banner_note(self) -> None:
        self.session.banner = True
        self._emit(Outcome.PROBE, Kind.BANNER)


#: Keyed by the action's value: an enum member hashes in Python code (3.11), a str in C.
_ACTIONS: dict[str, Callable[[_Step[Any]], None]] = {
    Action.FAILED.value: _Step.failed,
    Action.ACCEPTED.value: _Step.accepted,
    Action.CONTEXT.value: _Step.context,
    Action.MAX_ATTEMPTS.value: _Step.max_attempts,
    Action.CLOSE.value: _Step.close,
    Action.PENALTY.value: _Step.penalty,
    Action.BANNER_NOTE.value: _Step.banner_note,
    Action.NOTE.value: _Step.note,
}
