"""An NFLOG consumer on a plain ``AF_NETLINK`` socket: the packets the kernel dropped
for recentd's bans, read in batches, so user space replays their table writes.

Rules of this module:

1. The wire format (``nfnetlink_log``) is built and parsed by pure functions
   (:func:`config_bind`, :func:`config_mode`, :func:`logged_payloads`); only
   :class:`NflogReader` touches a socket.
2. The kernel batches: it sends when ``qthresh`` packets wait or ``timeout_cs``
   hundredths of a second passed, so a flood costs one ``recv`` per batch.
3. Only the fixed IP header is copied (``copy_range``): all the replay reads is the
   family, the addresses and the TTL (:func:`header_packet`, no full decode).
4. A full socket buffer loses log messages (ENOBUFS): counted in :attr:`NflogReader.lost`,
   never raised — the list then misses those stamps, so the ban may end earlier than
   xt_recent's (docs/offload.md says what stays approximate).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from collections.abc import Iterator

from recentd.errors import BackendError
from recentd.packets.packet import Packet

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = NFNL_SUBSYS_ULOG << 8 | 0
NFULNL_MSG_CONFIG = NFNL_SUBSYS_ULOG << 8 | 1
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_NLBUFSIZ = 3
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_CFG_CMD_UNBIND = 2
NFULNL_CFG_CMD_PF_BIND = 3
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD = 9
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
#: Bytes copied per packet: a fixed IPv6 header (an IPv4 one is shorter).
COPY_RANGE = 40

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")
_NLA = struct.Struct("=HH")
_NLA_TYPE_MASK = 0x3FFF


def _align(size: int) -> int:
    return (size + 3) & ~3


def _attribute(kind: int, value: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(value), kind) + value
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _config(group: int, family: int, seq: int, attributes: bytes) -> bytes:
    body = _NFGEN.pack(family, 0, group) + attributes
    return _NLMSG.pack(_NLMSG.size + len(body), NFULNL_MSG_CONFIG,
                       NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body  # fmt: skip


def config_bind(group: int, seq: int) -> list[bytes]:
    """Messages that make this socket the reader of ``group`` (both families' logger)."""
    pf = [_config(0, fam, seq + i, _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_PF_BIND])))
          for i, fam in enumerate((socket.AF_INET, socket.AF_INET6))]  # fmt: skip
    bind = _config(group, socket.AF_UNSPEC, seq + 2,
                   _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))  # fmt: skip
    return [*pf, bind]


def config_mode(group: int, seq: int, *, copy_range: int, qthresh: int, timeout_cs: int) -> bytes:
    """Copy ``copy_range`` bytes of each packet; send a batch at ``qthresh`` packets or
    after ``timeout_cs`` hundredths of a second."""
    attrs = (
        _attribute(NFULA_CFG_MODE, struct.pack("!IBx", copy_range, NFULNL_COPY_PACKET))
        + _attribute(NFULA_CFG_QTHRESH, struct.pack("!I", qthresh))
        + _attribute(NFULA_CFG_TIMEOUT, struct.pack("!I", timeout_cs))
        + _attribute(NFULA_CFG_NLBUFSIZ, struct.pack("!I", 65536))
    )
    return _config(group, socket.AF_UNSPEC, seq, attrs)


def config_unbind(group: int, seq: int) -> bytes:
    return _config(group, socket.AF_UNSPEC, seq,
                   _attribute(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND])))  # fmt: skip


def _messages(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    pos = 0
    while pos + _NLMSG.size <= len(view):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(view, pos)
        if length < _NLMSG.size or pos + length > len(view):
            return
        yield kind, view[pos + _NLMSG.size:pos + length]
        pos += _align(length)


def errors(data: bytes) -> list[int]:
    """The error codes of the acknowledgements in ``data`` (0: success)."""
    return [-struct.unpack_from("=i", body)[0] for kind, body in _messages(data)
            if kind == NLMSG_ERROR]  # fmt: skip


def logged_payloads(data: bytes | memoryview) -> list[bytes]:
    """The IP packets (as copied) of every packet message in ``data``.

    A flood's messages share one layout: the payload attribute's offset found in one
    message is tried first in the next (checked by its type), so most messages cost one
    ``unpack_from`` instead of a walk over a dozen attributes."""
    out = []
    guess = -1
    unpack, nla_size = _NLA.unpack_from, _NLA.size
    for kind, body in _messages(data):
        if kind != NFULNL_MSG_PACKET:
            continue
        if 0 <= guess <= len(body) - nla_size:
            length, attr = unpack(body, guess)
            if attr & _NLA_TYPE_MASK == NFULA_PAYLOAD and guess + length <= len(body):
                out.append(bytes(body[guess + nla_size:guess + length]))
                continue
        pos = _NFGEN.size
        while pos + nla_size <= len(body):
            length, attr = unpack(body, pos)
            if length < nla_size:
                break
            if attr & _NLA_TYPE_MASK == NFULA_PAYLOAD:
                out.append(bytes(body[pos + nla_size:pos + length]))
                guess = pos
                break
            pos += _align(length)
    return out


def header_packet(payload: bytes) -> Packet | None:
    """The family, addresses, TTL and protocol of a logged IP header, as a
    :class:`~recentd.packets.packet.Packet` (ports absent), or ``None`` if it is none."""
    if len(payload) >= 20 and payload[0] >> 4 == 4:
        return Packet(4, int.from_bytes(payload[12:16], "big"),
                      int.from_bytes(payload[16:20], "big"), payload[8], payload[9],
                      len(payload))  # fmt: skip
    if len(payload) >= 40 and payload[0] >> 4 == 6:
        return Packet(6, int.from_bytes(payload[8:24], "big"),
                      int.from_bytes(payload[24:40], "big"), payload[7], payload[6],
                      len(payload))  # fmt: skip
    return None


def packet_message(group: int, payload: bytes, seq: int = 0) -> bytes:
    """One packet message as the kernel sends it (tests, fakes)."""
    body = _NFGEN.pack(socket.AF_INET, 0, group) + _attribute(NFULA_PAYLOAD, payload)
    return _NLMSG.pack(_NLMSG.size + len(body), NFULNL_MSG_PACKET, 0, seq, 0) + body


class NflogReader:
    """Reads the packets logged to ``group`` (rule 2: in batches).

    Raises:
        BackendError: the socket cannot be opened or the kernel refuses the binding.
    """

    def __init__(self, group: int, *, qthresh: int = 64, timeout_cs: int = 1) -> None:
        self.group = group
        self.lost = 0
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self._sock.bind((0, 0))
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            for message in [*config_bind(group, 1), config_mode(
                    group, 4, copy_range=COPY_RANGE, qthresh=qthresh, timeout_cs=timeout_cs)]:
                self._sock.send(message)
                codes = errors(self._sock.recv(8192))
                if any(codes):
                    raise BackendError("nfnetlink_log refused the binding", backend="nflog",
                                       returncode=max(codes), stderr=errno.errorcode.get(
                                           max(codes), ""))  # fmt: skip
        except OSError as exc:
            raise BackendError(f"nflog group {group}: {exc}", backend="nflog") from exc
        self._sock.setblocking(False)
        self._buf = bytearray(1 << 20)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[bytes]:
        """Every logged packet waiting now (possibly none)."""
        out: list[bytes] = []
        while True:
            try:
                size = self._sock.recv_into(self._buf)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # rule 4
                    self.lost += 1
                    continue
                raise BackendError(f"nflog read: {exc}", backend="nflog") from exc
            out.extend(logged_payloads(memoryview(self._buf)[:size]))

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing anyway: the kernel unbinds it too
            self._sock.send(config_unbind(self.group, 9))
        self._sock.close()
