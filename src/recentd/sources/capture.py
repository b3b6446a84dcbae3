"""A capture file (pcap, pcapng) as a :class:`~recentd.sources.Source` of packet batches:
what ``recentd replay`` reads.

The file formats are :mod:`recentd.packets.capture` (record by record) and
:mod:`recentd.packets.columns` (a classic pcap in numpy columns); this adapter gives them
the sources' contract.

Rules of this module:

1. ``read()`` returns the next items of the capture, :data:`READ_RECORDS` records at
   most (a chunk may hold more): column :class:`~recentd.packets.columns.Chunk` objects
   where columns apply (and numpy is installed),
   :class:`~recentd.packets.capture.CapturedPacket` records elsewhere — exactly what
   :func:`~recentd.packets.columns.read_columns` yields, never an object per record a
   chunk holds.
2. A record that is not an IP packet is a record with ``packet=None`` (those returned
   one by one are counted in :meth:`CaptureSource.status`' ``skipped``; a chunk's are
   found when it is replayed); it does not stop the source.
3. Never raises: a missing file is ``waiting``, an unreadable or damaged one ``degraded``
   with the reader's :class:`~recentd.errors.CaptureError` kept in
   :attr:`CaptureSource.damage` (every record before the damage has been returned); read
   to its end the source is ``finished``. A later ``read`` looks again when the file
   changed size — a capture still being written (``tcpdump -w``) is read on from where
   the source stopped.
4. The checkpoint is the number of records returned; a source opened from it skips
   them. The records are read again to be skipped (a pcapng has no index to seek by), so
   resuming costs a read of what was skipped, never a record twice.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from recentd.errors import CaptureError
from recentd.packets.capture import CapturedPacket, read_capture
from recentd.sources import Checkpoint, SourceState, SourceStatus

if TYPE_CHECKING:
    from recentd.packets.columns import Chunk

#: What a capture source's ``read`` returns items of.
CaptureItem: TypeAlias = "Chunk | CapturedPacket"
#: Records a ``read`` stops after (a chunk is never split: it may go past). Small: a
#: read's list keeps its records alive through the collector's passes, and read record
#: by record (``records()``, a 300k-SYN capture, loaded machine) a budget of 65,536
#: measured 134k records/s, 4,096 165-191k, 1,024 209-271k, 256 270-297k; the bare
#: reader, ``read_capture``, 237-412k in the same runs.
READ_RECORDS = 256
#: A record's decoded packet (None: not IP).
_PACKET = itemgetter(2)


class CaptureSource:
    """The records of one capture file (see the module rules).

    Args:
        path: the capture.
        checkpoint: where a previous source over it stopped.
        columns: read a classic pcap in columns (numpy) where they apply; ``False``
            gives every record as a :class:`CapturedPacket` (``replay --verdicts``).
    """

    def __init__(self, path: str | Path, checkpoint: Checkpoint | None = None, *,
                 columns: bool = True) -> None:  # fmt: skip
        self.path = Path(path)
        self.name = f"capture {self.path}"
        self.columns = columns
        #: Why the capture could not be read (further), once it could not.
        self.damage: CaptureError | None = None
        done = checkpoint.get("records") if checkpoint else 0
        #: Records returned, by this source and the ones its checkpoint resumes.
        self._done = done if isinstance(done, int) and done > 0 else 0
        self._skip = 0  # records still to pass over in the current reading of the file
        self._items: Iterator[CaptureItem] | None = None
        self._state = SourceState.OK
        self._size_seen = -1  # the file's size when it ended or failed
        self._undecodable = 0
        self._closed = False

    # -- the Source protocol --------------------------------------------------------------

    def fileno(self) -> int | None:
        """None: a file is always readable; the reader polls."""
        return None

    def read(self) -> Sequence[CaptureItem]:
        if self._closed or (self._items is None and not self._reopen()):
            return []
        found: list[CaptureItem] = []
        try:
            if self._skip:
                self._pass_over()
            self._take(found)
        except StopIteration:
            self._stop(SourceState.FINISHED, None)
        except CaptureError as exc:
            self._stop(_state_of(exc), exc)
        if self.columns:
            self._undecodable += [item[2] for item in found if type(item) is CapturedPacket
                                  ].count(None)  # fmt: skip
        else:
            self._undecodable += list(map(_PACKET, cast("list[CapturedPacket]", found))).count(None)
        return found

    def status(self) -> SourceStatus:
        detail = "" if self.damage is None else str(self.damage)
        if self._state is SourceState.FINISHED:
            detail = f"read to its end ({self._done} records)"
        return SourceStatus(self._state, detail, self._undecodable)

    def checkpoint(self) -> Checkpoint:
        return {"records": self._done}

    def close(self) -> None:
        self._closed = True
        self._items = None

    # -- for a reader that reads to the end ---------------------------------------------------

    def items(self) -> Iterator[CaptureItem]:
        """What ``read`` returns, read after read, until it returns nothing: at the end of
        the file, or at damage (then in :attr:`damage`). ``recentd replay``'s loop."""
        while found := self.read():
            yield from found

    def records(self) -> Iterator[CapturedPacket]:
        """:meth:`items` of a source opened with ``columns=False``: records only."""
        assert not self.columns, "a columns source gives chunks"
        while found := self.read():
            yield from cast("list[CapturedPacket]", found)

    # -- reading ------------------------------------------------------------------------------

    def _reopen(self) -> bool:
        """Open the capture when it is new or changed since it ended or failed."""
        size = _size(self.path)
        if self._state is not SourceState.OK and size == self._size_seen:
            return False
        self._skip = self._done  # read on from here: pass over what was returned
        self._state, self.damage = SourceState.OK, None
        self._items = self._open()
        return True

    def _open(self) -> Iterator[CaptureItem]:
        if self.columns:
            try:
                from recentd.packets.columns import read_columns  # noqa: PLC0415 - numpy
            except ImportError:  # no numpy (the "replay" extra): record by record
                return read_capture(self.path)
            return read_columns(self.path)
        return read_capture(self.path)

    def _take(self, found: list[CaptureItem]) -> None:
        """Append the next items to ``found`` (:data:`READ_RECORDS` records at most,
        counted into the checkpoint as they come); StopIteration at the end."""
        items, append = self._items, found.append
        assert items is not None
        # Two loops, because a record-by-record read runs one per record: there every
        # item is one record; in columns, mostly chunks of thousands.
        if not self.columns:
            try:  # extend keeps what it took when the reader raises at damage
                found.extend(islice(items, READ_RECORDS))
            finally:  # and what came before the damage counts
                self._done += len(found)
            if len(found) < READ_RECORDS:
                raise StopIteration
            return
        taken = 0
        for item in items:
            append(item)
            records = 1 if isinstance(item, CapturedPacket) else len(item)
            self._done += records
            taken += records
            if taken >= READ_RECORDS:
                return
        raise StopIteration

    def _pass_over(self) -> None:
        """Consume the records a checkpoint said were returned (rule 4); the first item
        after them is put back in front of the rest."""
        items, skip = self._items, self._skip
        assert items is not None
        for item in items:
            if isinstance(item, CapturedPacket):
                if item.n <= skip:
                    continue
                fresh: list[CaptureItem] = [item]
            else:
                if item.first_n + len(item) - 1 <= skip:
                    continue
                # A chunk across the checkpoint: its records after it, each on its own
                # (what the ordinary decoder makes of them is what the chunk holds).
                fresh = [item.record(i) for i in range(skip - item.first_n + 1, len(item))]
            self._items = _chain(fresh, items)
            break
        self._skip = 0

    def _stop(self, state: SourceState, damage: CaptureError | None) -> None:
        self._state, self.damage = state, damage
        self._items = None
        self._size_seen = _size(self.path)


def _chain(first: list[CaptureItem], then: Iterator[CaptureItem]) -> Iterator[CaptureItem]:
    yield from first
    yield from then


def _state_of(exc: CaptureError) -> SourceState:
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno == errno.ENOENT:
        return SourceState.WAITING
    return SourceState.DEGRADED


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
