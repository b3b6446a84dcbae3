"""Answer control requests: a pure function from (request, context) to reply.

``dispatch`` is the only place requests touch the core. It is called from the
daemon's single thread (the server calls it), never concurrently, and tests call
it directly. Every refusal becomes an :class:`ErrorReply` carrying the error
class, the errno name where the kernel would have one, and the message; an
unknown request type is refused by name, never ignored.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recentd import __version__
from recentd.control.access import ROOT, Peer, may_read, may_write
from recentd.control.protocol import (
    Entry,
    ErrorReply,
    ListTables,
    Login,
    LoginResult,
    ParamsResult,
    Reply,
    Request,
    SetParams,
    ShowTable,
    Stats,
    StatsReply,
    Status,
    StatusReply,
    TableInfo,
    TableList,
    TableListing,
    WriteResult,
    WriteTable,
)
from recentd.errors import ConfigError, ControlError, ProcWriteError, RecentError
from recentd.observation import Evidence, Observation, Origin
from recentd.pam.address import address_text
from recentd.recent import ProcFile, RecentTable, RecentTables


def _no_op() -> None:
    pass


def _no_state() -> dict[str, int | str]:
    return {}


def _ignore(observation: Observation) -> None:
    pass


def _no_stats(readable: Callable[[str], bool]) -> dict[str, Any]:
    return {}


@dataclass
class Service:
    """What the control server serves: the daemon's tables and its hooks.

    Attributes:
        tables: the daemon's tables (touched only from the daemon's thread).
        clock: the current time in ticks, as the daemon stamps packets.
        after_write: called after a write changed a table and before the reply is
            sent; the daemon makes the change durable here (``store.record`` then
            ``store.sync``). An error it raises is reported to the client.
        adapters: adapter name → ``"ok"`` or ``"degraded: why"``, kept by the daemon.
        state: extra figures for ``Status`` (the store's ``status()``).
        monotonic: seconds, for uptime.
        wall: wall-clock nanoseconds, read with ``clock`` to date a listing's stamps.
        observe: takes the evidence a request brings (a PAM login); the daemon routes it
            into the lists. An error it raises is reported to the client.
        stats: the fields of a :class:`StatsReply` (``wall_ns`` defaults to ``wall``),
            given which lists the asker may read (the daemon's
            :func:`recentd.metrics.stats.daemon_stats`).
        logins: PAM events taken, by event (``open``, ``close``), for metrics.
    """

    tables: RecentTables
    clock: Callable[[], int]
    after_write: Callable[[], None] = _no_op
    adapters: dict[str, str] = field(default_factory=dict)
    state: Callable[[], dict[str, int | str]] = _no_state
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], int] = time.time_ns
    observe: Callable[[Observation], None] = _ignore
    stats: Callable[[Callable[[str], bool]], dict[str, Any]] = _no_stats
    logins: Counter[str] = field(default_factory=Counter)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.monotonic()


@dataclass(frozen=True, slots=True)
class Context:
    """One request's circumstances: the service and who is asking."""

    service: Service
    peer: Peer = ROOT


def dispatch(request: Request, context: Context) -> Reply:
    """Answer one request. Never raises for a refusal: refusals are replies."""
    handler = _HANDLERS.get(type(request))
    if handler is None:
        return ErrorReply("ProtocolError", f"unknown request {type(request).__name__}")
    try:
        return handler(request, context)
    except ProcWriteError as exc:
        return ErrorReply(type(exc).__name__, exc.message, exc.errno_name)
    except (ControlError, ConfigError) as exc:
        return ErrorReply(type(exc).__name__, str(exc))


def _list_tables(request: Request, context: Context) -> Reply:
    return TableList([_info(table) for table in context.service.tables])


def _info(table: RecentTable) -> TableInfo:
    p = table.params
    return TableInfo(
        table.name, len(table), table.ring, p.ip_list_tot, p.ip_pkt_list_tot,
        p.ip_list_perms, p.ip_list_uid, p.ip_list_gid,
    )  # fmt: skip


def _show_table(request: Request, context: Context) -> Reply:
    assert isinstance(request, ShowTable)
    table = _table(context, request.name)
    if not may_read(table.params, context.peer):
        raise _denied(request.name, "read", context.peer)
    entries = [Entry(e.family, e.addr, e.ttl, e.index, list(e.stamps), e.last_seen) for e in table]
    service = context.service
    return TableListing(table.name, entries, table.hz, service.clock(), service.wall())


def _write_table(request: Request, context: Context) -> Reply:
    assert isinstance(request, WriteTable)
    table = _table(context, request.name)
    if not may_write(table.params, context.peer):
        raise _denied(request.name, "write", context.peer)
    # A fresh ProcFile per request, placed at the client's offset: the kernel's
    # one-command-per-open rule (ESPIPE) then comes from ProcFile itself.
    proc_file = ProcFile(table)
    proc_file.offset = request.offset
    written = proc_file.write(request.data, context.service.clock())
    if written:
        _make_durable(context.service)
    return WriteResult(written, proc_file.offset)


def _make_durable(service: Service) -> None:
    try:
        service.after_write()
    except RecentError as exc:
        raise ProcWriteError(f"applied in memory but not saved: {exc}", errno=errno.EIO) from exc


def _status(request: Request, context: Context) -> Reply:
    service = context.service
    return StatusReply(
        version=__version__,
        pid=os.getpid(),
        uptime_s=round(service.monotonic() - service.started, 3),
        hz=service.tables.hz,
        now_ticks=service.clock(),
        tables=len(service.tables),
        entries=sum(len(table) for table in service.tables),
        adapters=dict(service.adapters),
        state=service.state(),
    )


def _stats(request: Request, context: Context) -> Reply:
    service, peer = context.service, context.peer

    def readable(name: str) -> bool:
        table = service.tables.get(name)
        return table is not None and may_read(table.params, peer)

    return StatsReply(**{"wall_ns": service.wall(), **service.stats(readable)})


def _set_params(request: Request, context: Context) -> Reply:
    assert isinstance(request, SetParams)
    _table(context, request.name)
    changes = request.changes
    if not isinstance(changes, dict) or not all(isinstance(key, str) for key in changes):
        raise ControlError("SetParams.changes must map parameter names to values", request=request)
    if context.peer.uid != 0:
        raise ProcWriteError(
            "only root may change module parameters", errno=errno.EPERM, request=request
        )
    params = context.service.tables.configure(request.name, **request.changes)
    names = ("ip_list_tot", "ip_pkt_list_tot", "ip_list_perms", "ip_list_uid", "ip_list_gid")
    return ParamsResult(request.name, {name: getattr(params, name) for name in names})


#: PAM_TYPE's two session events, as :class:`Login` names them.
LOGIN_EVENTS = ("open", "close")
#: PAM items are short; longer text in a Login is not from the hook.
MAX_LOGIN_FIELD = 256


def _login(request: Request, context: Context) -> Reply:
    assert isinstance(request, Login)
    if context.peer.uid != 0:
        raise ControlError(f"only root may report logins (uid {context.peer.uid})", request=request)
    text = address_text(request.addr)
    if text is None:
        raise ControlError(f"Login.addr: {request.addr!r} is not an IP address", request=request)
    address = ipaddress.ip_address(text)  # inet_ntop's text: ipaddress reads it as it is
    if request.event not in LOGIN_EVENTS:
        raise ControlError(f"Login.event: {request.event!r} is not open or close", request=request)
    for name in ("user", "service", "tty"):
        if len(getattr(request, name)) > MAX_LOGIN_FIELD:
            raise ControlError(f"Login.{name}: longer than {MAX_LOGIN_FIELD}", request=request)
    origin = Origin("pam", request.service, f"user {request.user}")
    detail = f"tty {request.tty}" if request.tty else ""
    observation = Observation(
        Evidence.LOGIN, address, context.service.wall(), origin,
        user=request.user, kind=request.event, detail=detail,
    )  # fmt: skip
    context.service.logins[request.event] += 1
    try:
        context.service.observe(observation)
    except RecentError as exc:
        raise ControlError(f"login seen but not applied: {exc}", request=request) from exc
    return LoginResult(str(address), request.event)


def _table(context: Context, name: str) -> RecentTable:
    table = context.service.tables.get(name)
    if table is None:
        raise ProcWriteError(f"no table named {name!r}", errno=errno.ENOENT, request=name)
    return table


def _denied(name: str, what: str, peer: Peer) -> ProcWriteError:
    return ProcWriteError(
        f"uid {peer.uid} gid {peer.gid} may not {what} table {name!r}",
        errno=errno.EACCES,
        request=name,
    )


_HANDLERS: dict[type, Callable[[Request, Context], Reply]] = {
    ListTables: _list_tables,
    ShowTable: _show_table,
    WriteTable: _write_table,
    Status: _status,
    SetParams: _set_params,
    Login: _login,
    Stats: _stats,
}
