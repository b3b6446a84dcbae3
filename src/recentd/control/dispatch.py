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
from typing import Any, Protocol

from recentd import __version__
from recentd.control.access import ROOT, Peer, may_read, may_write
from recentd.control.protocol import (
    Allow,
    AllowResult,
    Entry,
    ErrorReply,
    ListPolicyResult,
    ListTables,
    Login,
    LoginResult,
    ParamsResult,
    Reply,
    Request,
    SetListPolicy,
    SetParams,
    ShowTable,
    Stats,
    StatsReply,
    Status,
    StatusReply,
    TableInfo,
    TableList,
    TableListing,
    Unban,
    UnbanResult,
    Why,
    WhyList,
    WhyResult,
    WriteResult,
    WriteTable,
)
from recentd.errors import ConfigError, ControlError, ProcWriteError, RecentError
from recentd.observation import Address, Evidence, Observation, Origin
from recentd.pam.address import address_text
from recentd.policy.allow import address_of
from recentd.recent import ProcFile, RecentTable, RecentTables
from recentd.recent.procfs import PROC_WRITE_MAX, ProcAction, parse_proc_write


class PolicyHooks(Protocol):
    """What the daemon's policy adds to the table-only answers (see
    :class:`recentd.daemon.Daemon`'s policy section). Each may raise a
    :class:`~recentd.errors.ControlError` to refuse."""

    def allowed(self, address: Address) -> str:
        """Why ``address`` is allowed (``""``: it is not)."""
        ...

    def written(self, table: str, data: bytes, forced: bool) -> None:
        """A control write changed ``table`` (for the history)."""
        ...

    def unban(self, address: Address, removed_from: list[str]) -> list[str]:
        """Take ``address`` out of every kernel set (and the fleet); the places, one each.
        ``removed_from`` names the lists it was just removed from."""
        ...

    def why(self, address: Address, result: WhyResult) -> WhyResult:
        """``result`` (the lists) with the history, the ban in force and the allow entry."""
        ...

    def allow(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, seconds: int
              ) -> AllowResult:  # fmt: skip
        """Allow ``network`` for ``seconds`` (0: until the daemon stops)."""
        ...

    def set_list(self, name: str, changes: dict[str, str]) -> ListPolicyResult:
        """Change list ``name``'s settings (raises ConfigError naming the key)."""
        ...


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
    #: The daemon's policy (allow lists, kernel bans, history); None: tables only.
    policy: PolicyHooks | None = None
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
    policy = context.service.policy
    if policy is not None and request.offset == 0 and request.data:
        _refuse_allowed(policy, request)
    proc_file = ProcFile(table)
    proc_file.offset = request.offset
    written = proc_file.write(request.data, context.service.clock())
    if written:
        _make_durable(context.service)
        if policy is not None:
            policy.written(request.name, request.data[:PROC_WRITE_MAX], request.force)
    return WriteResult(written, proc_file.offset)


def _refuse_allowed(policy: PolicyHooks, request: WriteTable) -> None:
    """``+ADDR`` of an allowed address is refused, with the reason, unless forced."""
    command = parse_proc_write(request.data[:PROC_WRITE_MAX])  # a bad line: EINVAL here
    if command.action is not ProcAction.ADD:
        return
    address = address_of(command.family, command.addr)
    reason = policy.allowed(address)
    if reason and not request.force:
        raise ProcWriteError(
            f"{address} is allowed ({reason}): not added to {request.name} "
            f"(recentd ctl write --force adds it; it is still never banned in the kernel)",
            errno=errno.EPERM, request=request.data,
        )  # fmt: skip


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


def _address(text: str, what: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ControlError(f"{what}: {text!r} is not an IP address", request=text) from None


def _root(context: Context, what: str) -> None:
    if context.peer.uid != 0:
        raise ProcWriteError(f"only root may {what} (uid {context.peer.uid})",
                             errno=errno.EPERM, request=what)  # fmt: skip


def _unban(request: Request, context: Context) -> Reply:
    """Out of every list (one line each), then every kernel set and the fleet (the
    policy's hook: the seam a fleet source plugs into)."""
    assert isinstance(request, Unban)
    _root(context, "unban")
    address = _address(request.addr, "Unban.addr")
    service = context.service
    removed = [f"list {table.name}" for table in service.tables
               if table.remove(address.version, int(address))]  # fmt: skip
    if removed:
        _make_durable(service)
    places = list(removed)
    if service.policy is not None:
        places += service.policy.unban(address, removed)
    return UnbanResult(str(address), places)


def _why(request: Request, context: Context) -> Reply:
    assert isinstance(request, Why)
    address = _address(request.addr, "Why.addr")
    service = context.service
    now, hz = service.clock(), service.tables.hz
    lists = []
    for table in service.tables:
        entry = table.get(address.version, int(address))
        if entry is None or not may_read(table.params, context.peer):
            continue
        stamps = sorted(entry.stamps)
        lists.append(WhyList(table.name, len(stamps), entry.ttl,
                             round((now - stamps[0]) / hz, 3),
                             round((now - entry.last_seen) / hz, 3)))  # fmt: skip
    result = WhyResult(str(address), service.wall(), lists, [])
    return result if service.policy is None else service.policy.why(address, result)


def _allow(request: Request, context: Context) -> Reply:
    assert isinstance(request, Allow)
    _root(context, "allow addresses")
    try:
        network = ipaddress.ip_network(request.network, strict=False)
    except ValueError:
        raise ControlError(f"Allow.network: {request.network!r} is not an address or "
                           "network", request=request) from None  # fmt: skip
    if request.seconds < 0:
        raise ControlError("Allow.seconds: must not be negative", request=request)
    if context.service.policy is None:
        raise ControlError("this daemon has no policy to allow addresses with", request=request)
    return context.service.policy.allow(network, request.seconds)


def _set_list_policy(request: Request, context: Context) -> Reply:
    assert isinstance(request, SetListPolicy)
    _root(context, "change a list's settings")
    changes = request.changes
    if not isinstance(changes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in changes.items()
    ):
        raise ControlError("SetListPolicy.changes must map keys to text values", request=request)
    if context.service.policy is None:
        raise ControlError("this daemon has no policy", request=request)
    return context.service.policy.set_list(request.name, changes)


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
    Unban: _unban,
    Why: _why,
    Allow: _allow,
    SetListPolicy: _set_list_policy,
}
