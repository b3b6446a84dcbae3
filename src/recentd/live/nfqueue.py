"""An NFQUEUE consumer on a plain ``AF_NETLINK`` socket, with batched verdicts.

Why not only NetfilterQueue: it answers each packet with its own ``sendmsg`` and
cannot set the queue's flags, so it can neither fail open under overload
(``NFQA_CFG_F_FAIL_OPEN``) nor receive the kernel's conntrack state
(``NFQA_CFG_F_CONNTRACK``). This consumer does both, drains the socket
non-blockingly and answers a whole batch with one datagram. The wire format is
in :mod:`recentd.live.nfqnl`.

Closing the socket (or the process dying, even by SIGKILL) makes the kernel
destroy the queue instance; with ``--queue-bypass`` on the NFQUEUE rule traffic
then passes unqueued.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from recentd.errors import BackendError
from recentd.live import nfqnl
from recentd.live.nfqnl import QueuedPacket

SOL_NETLINK = 270
NETLINK_NETFILTER = 12
NETLINK_NO_ENOBUFS = 5
_RECV_SIZE = 65536 + 4096

#: What the consumer calls per batch: packets in, one verdict per packet out.
BatchHandler = Callable[[list[QueuedPacket]], list[int]]


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
    ) -> None:
        self.queue_num = queue_num
        self.queues = range(queue_num, queue_num + count)
        self.fail_open = fail_open
        self.received = 0
        self.sock = _open_socket(rcvbuf)
        try:
            # every queue must be configured: a list, so all() cannot stop early
            self.conntrack = all([self._configure(q, maxlen, conntrack) for q in self.queues])  # noqa: C419
        except BackendError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._buf = bytearray(_RECV_SIZE)

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
        return nfqnl.config_params(queue, 2, copy_range=0xFFFF, maxlen=maxlen, flags=flags)

    def _request(self, queue: int, message: bytes, what: str) -> None:
        try:
            self.sock.send(message)
            nfqnl.check_acks(self.sock.recv(8192), f"queue {queue}: {what}")
        except OSError as exc:
            raise BackendError(f"queue {queue}: {what}: {exc}", backend="nfqueue") from exc

    def receive(self, limit: int = 256) -> list[QueuedPacket]:
        """Drain up to ``limit`` datagrams without blocking."""
        packets: list[QueuedPacket] = []
        recv_into, buf = self.sock.recv_into, self._buf
        for _ in range(limit):
            try:
                size = recv_into(buf)
            except BlockingIOError:
                break
            packets.extend(nfqnl.parse_packets(bytes(buf[:size])))
        self.received += len(packets)
        return packets

    def answer(self, packets: list[QueuedPacket], verdicts: list[int]) -> None:
        """Send all verdicts of a batch in one datagram (grouped by queue)."""
        by_queue: dict[int, list[tuple[int, int]]] = {}
        for packet, verdict in zip(packets, verdicts, strict=True):
            by_queue.setdefault(packet.queue, []).append((packet.packet_id, verdict))
        data = b"".join(nfqnl.verdict_batch(q, decided) for q, decided in by_queue.items())
        if data:
            try:
                self.sock.send(data)
            except OSError as exc:
                raise BackendError(
                    f"queue {self.queue_num}: verdict: {exc}", backend="nfqueue"
                ) from exc

    def process(self, handler: BatchHandler, limit: int = 256) -> int:
        """Receive what is ready, decide with ``handler``, answer. Returns the count."""
        packets = self.receive(limit)
        if packets:
            self.answer(packets, handler(packets))
        return len(packets)

    def close(self) -> None:
        """Close the socket; the kernel then destroys the queue instance."""
        with contextlib.suppress(OSError):
            self.sock.close()


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
