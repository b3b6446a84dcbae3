"""An NFQUEUE consumer on a plain ``AF_NETLINK`` socket, with batched verdicts.

Why not only NetfilterQueue: it answers each packet with its own ``sendmsg`` and
cannot set the queue's flags, so it can neither fail open under overload
(``NFQA_CFG_F_FAIL_OPEN``) nor receive the kernel's conntrack state
(``NFQA_CFG_F_CONNTRACK``). This consumer does both, and is cheaper per packet:

- one ``recvmmsg`` (through ctypes) fills up to ``limit`` fixed slots of one
  preallocated buffer, one kernel message per slot; where libc has no
  ``recvmmsg`` it falls back to one ``recv_into`` per slot;
- per packet only the fixed head is read (id, hook, queue: one ``unpack_from``,
  see :data:`recentd.live.nfqnl.HEAD`); a :class:`Batch` holds them as plain
  lists, and the full attributes are parsed only for packets a handler decides
  on (:meth:`Batch.packets`);
- the kernel copies at most ``copy_range`` bytes of each packet (128 by
  default: IP and TCP/UDP headers with options, which is all the rules read);
- all verdicts of a batch go out in one ``send``, one ``VERDICT_BATCH`` per
  queue when the batch has one verdict, else per run of equal verdicts.

The wire format is in :mod:`recentd.live.nfqnl`.

Closing the socket (or the process dying, even by SIGKILL) makes the kernel
destroy the queue instance; with ``--queue-bypass`` on the NFQUEUE rule traffic
then passes unqueued.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
from collections.abc import Callable

from recentd.errors import BackendError
from recentd.live import nfqnl
from recentd.live.nfqnl import QueuedPacket

SOL_NETLINK = 270
NETLINK_NETFILTER = 12
NETLINK_NO_ENOBUFS = 5
MSG_DONTWAIT = 0x40
#: Bytes of each packet the kernel copies to user space by default.
COPY_RANGE = 128
#: Room in a receive slot for the attributes around the payload (headers, interfaces,
#: mark, priority, hardware address, VLAN, L2 header, timestamp, uid/gid, cap_len…).
_SLOT_HEADROOM = 512
#: At most this many bytes of receive slots, whatever the copy range.
_SLOTS_BYTES = 8 << 20


class Batch:
    """The packets of one receive, as parallel lists (no object per packet).

    Attributes:
        ids: packet ids, in the order received.
        queues: the queue of each packet.
        hooks: the netfilter hook of each packet.
        starts, ends: where each message lies in ``view``.
        view: the receive buffer; valid until the queue's next receive.
    """

    __slots__ = ("ends", "hooks", "ids", "queues", "starts", "view")

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.ids: list[int] = []
        self.queues: list[int] = []
        self.hooks: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def packets(self) -> list[QueuedPacket]:
        """Every packet with all the attributes recentd reads (payloads are views)."""
        packet_at, view = nfqnl.packet_at, self.view
        return [packet_at(view, a, b) for a, b in zip(self.starts, self.ends, strict=True)]

    @classmethod
    def of(cls, data: bytes) -> Batch:
        """A batch from encoded packet messages (tests, fakes)."""
        batch = cls(memoryview(data))
        _add_messages(batch, batch.view, 0, len(data))
        return batch


#: What the consumer calls per batch: packets in, one verdict per packet out.
BatchHandler = Callable[[Batch], list[int]]


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint))


class _IoVec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


def _libc_recvmmsg() -> Callable[..., int] | None:
    try:
        func = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    func.restype = ctypes.c_int
    return func


_RECVMMSG = _libc_recvmmsg()


class RawQueue:
    """Bound queues on one socket.

    Several queues share the socket so that the hooks can send each conntrack
    state to its own queue: this kernel has no ``NETFILTER_NETLINK_GLUE_CT``, so
    ``NFQA_CFG_F_CONNTRACK`` is refused, and the queue number is how the kernel's
    own conntrack verdict reaches user space (see :mod:`recentd.live.hooks`).

    Args:
        queue_num: the first NFQUEUE number.
        count: how many consecutive queues to bind.
        fail_open: accept (instead of drop) packets that find the queue full.
        conntrack: ask for the kernel's conntrack info per packet.
        maxlen: queue length in packets.
        rcvbuf: socket receive buffer in bytes.
        copy_range: bytes of each packet the kernel copies (the rest is cut; the
            decoder reads lengths from the headers, as from a capture's snap length).
        limit: most packets per receive (the receive slots are allocated once).

    Raises:
        BackendError: the kernel refused the socket or the configuration (e.g. the
            queue is bound by another process).
    """

    def __init__(
        self,
        queue_num: int,
        *,
        count: int = 1,
        fail_open: bool = True,
        conntrack: bool = True,
        maxlen: int = 4096,
        rcvbuf: int = 8 << 20,
        copy_range: int = COPY_RANGE,
        limit: int = 256,
    ) -> None:
        self.queue_num = queue_num
        self.queues = range(queue_num, queue_num + count)
        self.fail_open = fail_open
        self.copy_range = max(1, min(copy_range, 0xFFFF))
        self.received = 0
        self.sock = _open_socket(rcvbuf)
        try:
            # every queue must be configured: a list, so all() cannot stop early
            self.conntrack = all([self._configure(q, maxlen, conntrack) for q in self.queues])  # noqa: C419
        except BackendError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._slot = (self.copy_range + _SLOT_HEADROOM + 63) & ~63
        self._nslots = max(1, min(limit, _SLOTS_BYTES // self._slot))
        self._buf = bytearray(self._slot * self._nslots)
        self._view = memoryview(self._buf)
        self._starts = [i * self._slot for i in range(self._nslots)]
        self._wire = [nfqnl.as_wire(n) for n in range(self._slot + 1)]
        self._setup_mmsg()

    def _setup_mmsg(self) -> None:
        self._mmsg: ctypes.Array[_MMsgHdr] | None = None
        if _RECVMMSG is None:
            return
        self._cbuf = (ctypes.c_char * len(self._buf)).from_buffer(self._buf)
        base = ctypes.addressof(self._cbuf)
        self._iov = (_IoVec * self._nslots)()
        self._mmsg = (_MMsgHdr * self._nslots)()
        for i in range(self._nslots):
            self._iov[i].iov_base, self._iov[i].iov_len = base + self._starts[i], self._slot
            hdr = self._mmsg[i].msg_hdr
            hdr.msg_iov, hdr.msg_iovlen = ctypes.addressof(self._iov[i]), 1
        stride, offset = ctypes.sizeof(_MMsgHdr), _MMsgHdr.msg_len.offset
        # msg_len of every slot, as one strided view over the mmsghdr array
        self._lens = memoryview(self._mmsg).cast("B").cast("I")[offset // 4 :: stride // 4]
        self._mmsg_addr = ctypes.addressof(self._mmsg)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _configure(self, queue: int, maxlen: int, conntrack: bool) -> bool:
        self._request(queue, nfqnl.config_bind(queue, 1), "bind queue")
        flags = nfqnl.NFQA_CFG_F_FAIL_OPEN if self.fail_open else 0
        if conntrack:
            try:
                self._request(
                    queue, self._params(queue, maxlen, flags | nfqnl.NFQA_CFG_F_CONNTRACK), "flags"
                )
            except BackendError:
                conntrack = False  # kernel without NETLINK_GLUE_CT: no ct info in messages
        if not conntrack:
            self._request(queue, self._params(queue, maxlen, flags), "configure queue")
        return conntrack

    def _params(self, queue: int, maxlen: int, flags: int) -> bytes:
        return nfqnl.config_params(queue, 2, copy_range=self.copy_range, maxlen=maxlen, flags=flags)

    def _request(self, queue: int, message: bytes, what: str) -> None:
        try:
            self.sock.send(message)
            nfqnl.check_acks(self.sock.recv(8192), f"queue {queue}: {what}")
        except OSError as exc:
            raise BackendError(f"queue {queue}: {what}: {exc}", backend="nfqueue") from exc

    def receive(self, limit: int = 256) -> Batch:
        """Drain up to ``limit`` kernel messages without blocking (one syscall)."""
        limit = min(limit, self._nslots)
        sizes = self._recv_mmsg(limit) if self._mmsg is not None else self._recv_each(limit)
        batch = Batch(self._view)
        if sizes:
            _fill(batch, self._view, self._starts, sizes, self._wire)
            self.received += len(batch.ids)
        return batch

    def _recv_mmsg(self, limit: int) -> list[int]:
        assert _RECVMMSG is not None
        count = _RECVMMSG(self.sock.fileno(), self._mmsg_addr, limit, MSG_DONTWAIT, None)
        if count > 0:
            return self._lens[:count].tolist()
        code = ctypes.get_errno()
        if count == 0 or code in (errno.EAGAIN, errno.EINTR, errno.ENOBUFS):
            return []
        raise BackendError(f"queue {self.queue_num}: recvmmsg: errno {code}", backend="nfqueue")

    def _recv_each(self, limit: int) -> list[int]:
        sizes: list[int] = []
        recv_into, view, slot = self.sock.recv_into, self._view, self._slot
        for start in self._starts[:limit]:
            try:
                sizes.append(recv_into(view[start : start + slot]))
            except BlockingIOError:
                break
        return sizes

    def answer(self, batch: Batch, verdicts: list[int]) -> None:
        """Send all verdicts of a batch in one datagram."""
        data = nfqnl.verdicts(batch.queues, batch.ids, verdicts)
        if data:
            try:
                self.sock.send(data)
            except OSError as exc:
                raise BackendError(
                    f"queue {self.queue_num}: verdict: {exc}", backend="nfqueue"
                ) from exc

    def process(self, handler: BatchHandler, limit: int = 256) -> int:
        """Receive what is ready, decide with ``handler``, answer. Returns the count."""
        batch = self.receive(limit)
        if batch.ids:
            self.answer(batch, handler(batch))
        return len(batch.ids)

    def close(self) -> None:
        """Close the socket; the kernel then destroys the queue instance."""
        with contextlib.suppress(OSError):
            self.sock.close()


def _fill(
    batch: Batch, view: memoryview, starts: list[int], sizes: list[int], wire: list[int]
) -> None:
    """Read the fixed head of each slot's message (rule 4 of :mod:`~recentd.live.nfqnl`).

    A slot holding exactly one packet message takes one ``unpack_from``; anything
    else (an error ack, several messages) takes the full walk. ``wire[n]`` is
    ``as_wire(n)``, for every possible slot size ``n``.
    """
    unpack, packet, pkt_hdr = nfqnl.HEAD.unpack_from, nfqnl.HEAD_PACKET, nfqnl.HEAD_PKT_HDR
    ids, queues, hooks = batch.ids, batch.queues, batch.hooks
    b_starts, b_ends = batch.starts, batch.ends
    for start, size in zip(starts, sizes, strict=False):
        if size >= nfqnl.HEAD_END:
            length, msg_type, queue, nla_type, packet_id, hook = unpack(view, start)
            if msg_type == packet and nla_type == pkt_hdr and length == wire[size]:
                ids.append(packet_id)
                queues.append(queue)
                hooks.append(hook)
                b_starts.append(start)
                b_ends.append(start + size)
                continue
        _add_messages(batch, view, start, start + size)


def _add_messages(batch: Batch, view: memoryview, start: int, end: int) -> None:
    for a, b in nfqnl.packet_spans(view[start:end]):
        packet = nfqnl.packet_at(view, start + a, start + b)
        batch.ids.append(packet.packet_id)
        batch.queues.append(packet.queue)
        batch.hooks.append(packet.hook)
        batch.starts.append(start + a)
        batch.ends.append(start + b)


def _open_socket(rcvbuf: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as exc:
        raise BackendError(f"netlink socket: {exc}", backend="nfqueue") from exc
    sock.bind((0, 0))
    # A burst larger than the buffer must cost packets, not an ENOBUFS on recv.
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return sock
