"""The nfnetlink_queue wire format (NFQNL), as pure functions over bytes.

Theory of operation: the kernel hands each queued packet to user space as one
netlink message ``NFQNL_MSG_PACKET`` carrying attributes (packet id, hook,
payload, conntrack info, interfaces, mark). User space answers with
``NFQNL_MSG_VERDICT`` per id, or ``NFQNL_MSG_VERDICT_BATCH``, which settles every
queued id up to and including the given one. Several netlink messages may
travel in one datagram, so a whole batch of verdicts costs one ``send``.

Rules this module keeps:

1. Nothing here touches a socket: :mod:`recentd.live.nfqueue` does the I/O.
2. Netlink headers are host byte order; nfnetlink payloads (``res_id``, the
   attribute values) are network byte order.
3. Verdicts are emitted in ascending id order, one ``VERDICT_BATCH`` per run of
   equal verdicts: ids are assigned in enqueue order and every earlier id has
   already been settled by an earlier message of the same datagram, so the batch
   covers exactly that run.
4. The kernel puts ``NFQA_PACKET_HDR`` first in every packet message, so the id,
   hook and queue of a packet are read with one ``unpack_from`` at a fixed
   offset (:data:`HEAD`); everything else is found by walking the attributes,
   and only when a packet is decided by the rules (:func:`packet_at`).
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import NamedTuple

from recentd.errors import BackendError

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = NFNL_SUBSYS_QUEUE << 8 | 0
NFQNL_MSG_VERDICT = NFNL_SUBSYS_QUEUE << 8 | 1
NFQNL_MSG_CONFIG = NFNL_SUBSYS_QUEUE << 8 | 2
NFQNL_MSG_VERDICT_BATCH = NFNL_SUBSYS_QUEUE << 8 | 3

NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR, NLMSG_DONE = 2, 3

# Config attributes and commands (include/uapi/linux/netfilter/nfnetlink_queue.h).
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_CONNTRACK = 0x1, 0x2

# Packet attributes.
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_TIMESTAMP = 1, 2, 3, 4
NFQA_IFINDEX_INDEV, NFQA_IFINDEX_OUTDEV, NFQA_PAYLOAD, NFQA_CT_INFO = 5, 6, 10, 12
NFQA_CAP_LEN = 13

NF_DROP, NF_ACCEPT = 0, 1
#: Run the same hook again from its first rule (the split's resume, rules/split.py).
NF_REPEAT = 4
#: A verdict value with this bit carries a packet mark above it (:func:`with_mark`).
MARKED = 1 << 32

#: ``enum ip_conntrack_info`` values the kernel sends in NFQA_CT_INFO.
IP_CT_ESTABLISHED, IP_CT_RELATED, IP_CT_NEW, IP_CT_ESTABLISHED_REPLY, IP_CT_RELATED_REPLY = range(5)
#: ``ctinfo`` of a packet the kernel attached no conntrack entry to (invalid or untracked).
CT_NONE = -1

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")
_NLA = struct.Struct("=HH")
_BE32 = struct.Struct("!I")
_PKT_HDR = struct.Struct("!IHB")
_ERRNO = struct.Struct("=i")
# A complete verdict message: nlmsghdr, nfgenmsg, one NFQA_VERDICT_HDR attribute.
# res_id, verdict and id are passed already converted to network order.
_VERDICT = struct.Struct("=IHHIIBBHHHII")
_NLA_TYPE_MASK = 0x3FFF
_TIMESTAMP = struct.Struct("!QQ")

#: The fixed head of a packet message (rule 4), read in network order:
#: ``(nlmsg_len, nlmsg_type, res_id = queue, nla_type, packet_id, hook)``. The three
#: host-order fields come out as :func:`as_wire` of their value; compare them with
#: :data:`HEAD_PACKET`, :data:`HEAD_PKT_HDR` and ``as_wire(length)``. The packet
#: header attribute ends at :data:`HEAD_END`.
HEAD = struct.Struct("!IH12xH2xHI2xB")
HEAD_END = _NLMSG.size + _NFGEN.size + _NLA.size + _PKT_HDR.size + 1


def as_wire(value: int, size: int = 4) -> int:
    """A host-order field as :data:`HEAD` reads it (network order)."""
    return int.from_bytes(value.to_bytes(size, sys.byteorder), "big")


HEAD_PACKET = as_wire(NFQNL_MSG_PACKET, 2)
HEAD_PKT_HDR = as_wire(NFQA_PACKET_HDR, 2)


class QueuedPacket(NamedTuple):
    """One packet as the kernel queued it.

    Attributes:
        packet_id: the id to answer with.
        hook: netfilter hook number (1 = INPUT, 2 = FORWARD, 3 = OUTPUT).
        payload: the layer-3 packet, at most the queue's copy range of it. From
            :class:`recentd.live.nfqueue.RawQueue` a view into its receive buffer:
            valid until the next receive, copy it to keep it.
        ctinfo: ``enum ip_conntrack_info``, or :data:`CT_NONE`.
        mark: the packet mark.
        indev, outdev: interface indexes, 0 when absent.
        queue: the queue number it came from.
        timestamp_ns: the kernel's receive stamp (``NFQA_TIMESTAMP``, wall clock,
            microsecond resolution), 0 when absent: the kernel stamps received
            packets only while some socket on the host asked for receive stamps.
    """

    packet_id: int
    hook: int
    payload: bytes | memoryview
    ctinfo: int = CT_NONE
    mark: int = 0
    indev: int = 0
    outdev: int = 0
    queue: int = 0
    timestamp_ns: int = 0


def _message(  # noqa: PLR0917 - the fields of one netlink header
    msg_type: int, flags: int, seq: int, queue_num: int, attrs: bytes, family: int
) -> bytes:
    body = _NFGEN.pack(family, 0, queue_num) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), msg_type, flags, seq, 0) + body


def attribute(attr_type: int, value: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLA.size + len(value)
    return _NLA.pack(length, attr_type) + value + b"\0" * (-length % 4)


def config_bind(queue_num: int, seq: int) -> bytes:
    """``BIND`` command for ``queue_num`` (acknowledged)."""
    cmd = attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_UNSPEC))
    return _message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, queue_num, cmd, 0)


def config_params(queue_num: int, seq: int, *, copy_range: int, maxlen: int, flags: int) -> bytes:
    """Copy mode, queue length and the flags (fail-open, conntrack) in one message."""
    attrs = (
        attribute(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET))
        + attribute(NFQA_CFG_QUEUE_MAXLEN, _BE32.pack(maxlen))
        + attribute(NFQA_CFG_FLAGS, _BE32.pack(flags))
        + attribute(NFQA_CFG_MASK, _BE32.pack(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_CONNTRACK))
    )
    return _message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, queue_num, attrs, 0)


def check_acks(data: bytes, what: str) -> None:
    """Raise :class:`BackendError` for the first netlink error in ``data``."""
    for msg_type, body in _messages(data):
        if msg_type == NLMSG_ERROR:
            (code,) = _ERRNO.unpack_from(body, 0)
            if code:
                raise BackendError(
                    f"{what}: {_errno_text(-code)}", backend="nfqueue", returncode=-code
                )


def _errno_text(code: int) -> str:
    import os  # noqa: PLC0415 - error path only

    return f"errno {code} ({os.strerror(code)})"


def _messages(data: bytes) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    offset = 0
    while offset + _NLMSG.size <= len(view):
        length, msg_type, _flags, _seq, _pid = _NLMSG.unpack_from(view, offset)
        if length < _NLMSG.size:
            return
        yield msg_type, view[offset + _NLMSG.size : offset + length]
        offset += (length + 3) & ~3


def parse_packets(data: bytes | bytearray | memoryview) -> list[QueuedPacket]:
    """Every ``NFQNL_MSG_PACKET`` in one datagram (other messages are skipped)."""
    view = memoryview(data)
    return [packet_at(view, start, end) for start, end in packet_spans(view)]


def packet_spans(view: memoryview) -> list[tuple[int, int]]:
    """``(start, end)`` of every ``NFQNL_MSG_PACKET`` in one datagram."""
    out = []
    offset = 0
    while offset + _NLMSG.size <= len(view):
        length, msg_type, _flags, _seq, _pid = _NLMSG.unpack_from(view, offset)
        if length < _NLMSG.size:
            break
        if msg_type == NFQNL_MSG_PACKET and length >= HEAD_END:
            out.append((offset, min(offset + length, len(view))))
        offset += (length + 3) & ~3
    return out


def packet_at(view: memoryview, start: int, end: int) -> QueuedPacket:
    """The packet message occupying ``view[start:end]`` (its payload is a view of ``view``).

    Messages of one length from one queue nearly always carry the same attributes
    at the same offsets, so after one walk the layout is known (:class:`_Layout`):
    one ``unpack_from`` checks that every attribute header is where and what it
    was, and another reads the values. A message that differs is walked.
    """
    layout = _LAYOUTS.get(end - start)
    if layout is not None and layout.heads.unpack_from(view, start) == layout.expected:
        packet_id, hook, queue, ctinfo, mark, indev, outdev, sec, usec = layout.pick(
            layout.values.unpack_from(view, start) + _ABSENT)
        payload = view[start + layout.payload[0] : start + layout.payload[1]]
        return _new_packet(QueuedPacket, (packet_id, hook, payload, ctinfo, mark, indev, outdev,
                                          queue, sec * 1_000_000_000 + usec * 1000))
    return _walk(view, start, end)


def _walk(view: memoryview, start: int, end: int) -> QueuedPacket:
    # The head in one unpack (rule 4), then one pass over the other attributes keeping
    # only what recentd reads. The kernel sets no NLA_F_* flags on these attributes,
    # so their types are compared unmasked.
    _len, _type, queue, _nla, packet_id, hook = HEAD.unpack_from(view, start)
    mark = indev = outdev = stamp = 0
    ctinfo = CT_NONE
    payload: bytes | memoryview = b""
    seen: list[tuple[int, int, int]] = []  # (offset, length, type) of each attribute
    offset = start + _NLMSG.size + _NFGEN.size
    seen.append((offset, *_NLA.unpack_from(view, offset)))
    offset += (seen[0][1] + 3) & ~3  # past NFQA_PACKET_HDR
    unpack_nla, unpack_be32 = _NLA.unpack_from, _BE32.unpack_from
    while offset + 4 <= end:
        length, attr_type = unpack_nla(view, offset)
        if length < 4:
            break
        seen.append((offset, length, attr_type))
        if attr_type == NFQA_PAYLOAD:
            payload = view[offset + 4 : offset + length if offset + length <= end else end]
        elif attr_type == NFQA_IFINDEX_INDEV:
            indev = unpack_be32(view, offset + 4)[0]
        elif attr_type == NFQA_IFINDEX_OUTDEV:
            outdev = unpack_be32(view, offset + 4)[0]
        elif attr_type == NFQA_MARK:
            mark = unpack_be32(view, offset + 4)[0]
        elif attr_type == NFQA_TIMESTAMP and offset + 4 + _TIMESTAMP.size <= end:
            sec, usec = _TIMESTAMP.unpack_from(view, offset + 4)
            stamp = sec * 1_000_000_000 + usec * 1000
        elif attr_type == NFQA_CT_INFO:
            ctinfo = unpack_be32(view, offset + 4)[0]
        offset += (length + 3) & ~3
    if offset == end and len(_LAYOUTS) < _LAYOUTS_MAX:
        attrs = [(at - start, length, kind) for at, length, kind in seen]
        learned = _Layout.of(attrs)
        if learned is not None:
            _LAYOUTS[end - start] = learned
            _CONTEXTS[end - start] = Context.of(attrs)
    return _new_packet(
        QueuedPacket, (packet_id, hook, payload, ctinfo, mark, indev, outdev, queue, stamp)
    )


#: Values a layout lacks: ``ctinfo`` without NFQA_CT_INFO, 0 for the rest.
_ABSENT = (CT_NONE, 0)
#: Where each value a layout may read lies in its values struct (4-byte values).
_VALUE_ATTRS = {NFQA_CT_INFO: 3, NFQA_MARK: 4, NFQA_IFINDEX_INDEV: 5, NFQA_IFINDEX_OUTDEV: 6}


class _Layout(NamedTuple):
    """Where everything lies in packet messages of one length.

    Attributes:
        heads: every attribute header (host order), each at its offset.
        expected: what ``heads`` reads in a message of this layout.
        values: the values recentd reads (network order): packet id, hook, queue, then
            the 4-byte values and the timestamp that the layout has, in offset order.
        pick: from ``values`` plus :data:`_ABSENT`, (packet id, hook, queue, ctinfo,
            mark, indev, outdev, seconds, microseconds).
        payload: the payload's first byte and end, from the message start.
    """

    heads: struct.Struct
    expected: tuple[int, ...]
    values: struct.Struct
    pick: Callable[[tuple[int, ...]], tuple[int, ...]]
    payload: tuple[int, int]

    @classmethod
    def of(cls, attrs: list[tuple[int, int, int]]) -> _Layout | None:
        """The layout of a message whose attributes are ``(offset, length, type)``,
        offsets from the message start; None when it has no payload or repeats one."""
        kinds = [kind for _, _, kind in attrs]
        if kinds.count(NFQA_PAYLOAD) != 1 or len(set(kinds)) != len(kinds):
            return None
        heads, expected = _struct_at("=", [(at, "HH") for at, _, _ in attrs]), []
        for _, length, kind in attrs:
            expected += [length, kind]
        fields = [(18, "H"), (_NLMSG.size + _NFGEN.size + 4, "IxxB")]  # queue; id, hook
        slot = {"queue": 0, "id": 1, "hook": 2}  # index in the values struct's output
        where: dict[str, int] = {}
        count = 3
        for at, length, kind in attrs:
            if kind in _VALUE_ATTRS and length >= 8:
                fields.append((at + 4, "I"))
                where[str(_VALUE_ATTRS[kind])] = count
                count += 1
            elif kind == NFQA_TIMESTAMP and length >= 4 + _TIMESTAMP.size:
                fields.append((at + 4, "QQ"))
                where["sec"], where["usec"] = count, count + 1
                count += 2
        absent_ct, absent_zero = count, count + 1
        pick = itemgetter(
            slot["id"], slot["hook"], slot["queue"],
            where.get("3", absent_ct), where.get("4", absent_zero), where.get("5", absent_zero),
            where.get("6", absent_zero), where.get("sec", absent_zero),
            where.get("usec", absent_zero),
        )  # fmt: skip
        at, length = next((at, length) for at, length, kind in attrs if kind == NFQA_PAYLOAD)
        return cls(heads, tuple(expected), _struct_at("!", fields), pick, (at + 4, at + length))


def _struct_at(order: str, fields: list[tuple[int, str]]) -> struct.Struct:
    """One struct reading each format at its offset (ascending offsets)."""
    text, position = order, 0
    for at, code in fields:
        text += f"{at - position}x{code}" if at > position else code
        position = at + struct.calcsize(order + code)
    return struct.Struct(text)


#: Layouts by message length; bounded (a queue sees a few lengths, not thousands).
_LAYOUTS: dict[int, _Layout] = {}
_LAYOUTS_MAX = 512


class Context:
    """How a batch reads packet messages of one layout without a :class:`QueuedPacket`
    each (the live pipeline's raw-bytes path: :mod:`recentd.live.verdict`).

    One :attr:`unpack` of a message reads its *context*: every attribute header (in
    network order) and the values a decision may depend on besides the payload — the
    queue, ctinfo, mark and interfaces — but not the packet id or the timestamp, which
    differ in every message. :attr:`knowns` maps a context to the packet's
    ``(ctinfo, mark, indev, outdev, queue)``, as ``QueuedPacket[3:8]``, once
    :meth:`learn` found its headers to be this layout's (a context that is not: None).

    Attributes:
        unpack: reads a message's context, from its first byte.
        payload: the payload's first byte and end, from the message start.
        knowns: contexts seen → ``(ctinfo, mark, indev, outdev, queue)``; bounded.
    """

    __slots__ = ("_expected", "_heads", "_values", "knowns", "payload", "spans", "unpack")

    #: Contexts kept per layout (a queue's packets have a few: queue, interface, mark).
    KNOWNS_MAX = 256

    def __init__(self, unpack: Callable[[memoryview | bytes, int], tuple[int, ...]],
                 payload: tuple[int, int], heads: list[int], expected: tuple[int, ...],
                 values: Callable[[tuple[int, ...]], tuple[int, ...]]) -> None:
        self.unpack = unpack
        self.payload = payload
        self.knowns: dict[object, tuple[int, ...] | None] = {}
        #: the message's bytes from the nfgenmsg header to the payload but the packet id
        #: and the timestamp value, as three byte ranges (``(start, end)`` each)
        self.spans: tuple[tuple[int, int], ...] = ()
        self._heads = itemgetter(*heads)
        self._expected = expected
        self._values = values

    @classmethod
    def of(cls, attrs: list[tuple[int, int, int]]) -> Context | None:
        """The context reader of a message whose attributes are ``(offset, length,
        type)`` (as :meth:`_Layout.of`), or None when its payload is not its last
        attribute (the payload's length must follow from the message's)."""
        if not attrs or attrs[-1][2] != NFQA_PAYLOAD:
            return None
        fields: list[tuple[int, str]] = [(18, "H")]  # the queue (res_id)
        heads, expected = [], []
        where: dict[int, int] = {}
        for at, length, kind in attrs:
            heads.append(len(fields))
            fields.append((at, "I"))  # length and type as one host-order word, read as big
            expected.append(int.from_bytes(_NLA.pack(length, kind), "big"))
            if kind in _VALUE_ATTRS and length >= 8:
                where[_VALUE_ATTRS[kind]] = len(fields)
                fields.append((at + 4, "I"))
        absent_ct = len(fields)
        pick = itemgetter(where.get(3, absent_ct), where.get(4, absent_ct + 1),
                          where.get(5, absent_ct + 1), where.get(6, absent_ct + 1), 0)
        at, length, _ = attrs[-1]

        def values(context: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(pick(context + _ABSENT))

        context = cls(_struct_at("!", fields).unpack_from, (at + 4, at + length), heads,
                      tuple(expected), values)
        # the packet id lies at 24..28 (rule 4); the timestamp's value, if any, at +4..+20
        stamp = next((at + 4 for at, length, kind in attrs
                      if kind == NFQA_TIMESTAMP and length == 4 + _TIMESTAMP.size), None)
        payload = attrs[-1][0] + 4
        second = (28, payload) if stamp is None else (28, stamp)
        third = (payload, payload) if stamp is None else (stamp + _TIMESTAMP.size, payload)
        context.spans = ((16, 24), second, third)
        return context

    def spans_reader(self, count: int) -> Callable[[memoryview | bytes, int],
                                                    tuple[bytes, bytes, bytes, bytes]]:
        """Reads, from a message's start, its context as three bytes objects (every byte
        but the packet id's and the timestamp's: :attr:`spans`), then its payload's first
        ``count`` bytes — a key for :meth:`learn_bytes` and the header in one call."""
        (a, b), (c, d), (e, f) = self.spans
        text = f"{a}x{b - a}s{c - b}x{d - c}s{e - d}x{f - e}s{count}s"
        return struct.Struct(text).unpack_from

    def learn_bytes(self, key: tuple[bytes, ...], view: memoryview,
                    start: int) -> tuple[int, ...] | None:
        """As :meth:`learn`, for a context read by :meth:`spans_reader` (the message's
        bytes there are all the context holds, so equal bytes mean an equal context)."""
        known = self.learn(self.unpack(view, start))
        self.knowns[key] = known
        return known

    def learn(self, context: tuple[int, ...]) -> tuple[int, ...] | None:
        """``(ctinfo, mark, indev, outdev, queue)`` of a message with this context, or
        None when its attribute headers are not this layout's; remembered."""
        known = self._values(context) if self._heads(context) == self._expected else None
        if len(self.knowns) >= self.KNOWNS_MAX:
            self.knowns.clear()
        self.knowns[context] = known
        return known


#: Context readers by message length, beside :data:`_LAYOUTS` (None: none for it).
_CONTEXTS: dict[int, Context | None] = {}


def context_of(size: int) -> Context | None:
    """The context reader for packet messages of ``size`` bytes, once one was walked."""
    return _CONTEXTS.get(size)


_new_packet = tuple.__new__


def with_mark(verdict: int, mark: int) -> int:
    """``verdict`` that also sets the packet's mark to ``mark`` (``NFQA_MARK``)."""
    return verdict | MARKED | mark << 33


def verdict_message(queue_num: int, packet_id: int, verdict: int, *, batch: bool) -> bytes:
    """One verdict (``batch``: for every queued id up to ``packet_id``); a verdict made by
    :func:`with_mark` carries the mark as ``NFQA_MARK``."""
    msg_type = NFQNL_MSG_VERDICT_BATCH if batch else NFQNL_MSG_VERDICT
    mark = attribute(NFQA_MARK, _BE32.pack(verdict >> 33)) if verdict & MARKED else b""
    return _VERDICT.pack(
        _VERDICT.size + len(mark), msg_type, NLM_F_REQUEST, 0, 0, socket.AF_UNSPEC, 0,
        socket.htons(queue_num), 12, NFQA_VERDICT_HDR,
        socket.htonl(verdict & 0xFFFFFFFF), socket.htonl(packet_id),
    ) + mark  # fmt: skip


def verdict_batch(queue_num: int, decided: Sequence[tuple[int, int]]) -> bytes:
    """All verdicts of one batch as one datagram.

    Args:
        queue_num: the queue.
        decided: ``(packet_id, verdict)`` pairs in ascending id order.

    Returns:
        One ``VERDICT_BATCH`` message per run of equal verdicts (rule 3).
    """
    parts: list[bytes] = []
    for index, (packet_id, verdict) in enumerate(decided):
        last = index + 1 == len(decided)
        if last or decided[index + 1][1] != verdict:
            parts.append(verdict_message(queue_num, packet_id, verdict, batch=True))
    return b"".join(parts)


def verdicts(queues: Sequence[int], ids: Sequence[int], decided: Sequence[int]) -> bytes:
    """The verdicts of one received batch, every queue, as one datagram.

    Args:
        queues, ids: queue and packet id of each packet, in the order received
            (per queue that is ascending id order).
        decided: the verdict of each packet.

    Returns:
        One ``VERDICT_BATCH`` per queue when the whole batch has one verdict (the
        common case), else one per run of equal verdicts within each queue.
    """
    if not ids:
        return b""
    first = decided[0]
    if decided.count(first) == len(decided):
        last = dict(zip(queues, ids, strict=True))  # the highest id of each queue
        return b"".join(verdict_message(q, i, first, batch=True) for q, i in last.items())
    by_queue: dict[int, list[tuple[int, int]]] = {}
    for queue, packet_id, verdict in zip(queues, ids, decided, strict=True):
        by_queue.setdefault(queue, []).append((packet_id, verdict))
    return b"".join(verdict_batch(q, pairs) for q, pairs in by_queue.items())


def packet_message(queued: QueuedPacket, queue_num: int = 0, seq: int = 0) -> bytes:
    """Encode a packet message as the kernel would (for tests and fakes)."""
    attrs = attribute(NFQA_PACKET_HDR, _PKT_HDR.pack(queued.packet_id, 0x0800, queued.hook))
    attrs += attribute(NFQA_MARK, _BE32.pack(queued.mark))
    if queued.indev:
        attrs += attribute(NFQA_IFINDEX_INDEV, _BE32.pack(queued.indev))
    if queued.outdev:
        attrs += attribute(NFQA_IFINDEX_OUTDEV, _BE32.pack(queued.outdev))
    if queued.timestamp_ns:
        sec, nsec = divmod(queued.timestamp_ns, 1_000_000_000)
        attrs += attribute(NFQA_TIMESTAMP, _TIMESTAMP.pack(sec, nsec // 1000))
    if queued.ctinfo != CT_NONE:
        attrs += attribute(NFQA_CT_INFO, _BE32.pack(queued.ctinfo))
    attrs += attribute(NFQA_PAYLOAD, bytes(queued.payload))
    return _message(NFQNL_MSG_PACKET, 0, seq, queue_num or queued.queue, attrs, socket.AF_INET)


def parse_verdicts(data: bytes) -> list[tuple[int, int, int]]:
    """Decode verdict messages into ``(msg_type, packet_id, verdict)`` (for tests)."""
    out = []
    for msg_type, body in _messages(data):
        verdict, packet_id = struct.unpack_from("!II", body, _NFGEN.size + _NLA.size)
        out.append((msg_type, packet_id, verdict))
    return out
