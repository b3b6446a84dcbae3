"""One stable descriptor for a source: readable when the medium has news, or when the
source stopped reading at its budget and wants to be read again.

Rules of this module:

1. The daemon's loop waits on one descriptor per source (:meth:`Source.fileno`). A
   source's own descriptors may change (a journal reopened, journalctl restarted); the
   :class:`Wakeup` epoll set does not: they are added to it and removed from it.
2. A source that reads at most a budget per call (so that a backlog never stalls the
   loop) calls :meth:`Wakeup.more` when it stops there; the descriptor then stays
   readable until :meth:`Wakeup.clear` at the start of the next read.
"""

from __future__ import annotations

import contextlib
import os
import select


class Wakeup:
    """An epoll set of a source's descriptors and of an eventfd for "read me again"."""

    def __init__(self) -> None:
        self._more = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll = select.epoll()
        self._epoll.register(self._more, select.EPOLLIN)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def watch(self, fd: int) -> None:
        """Wake when ``fd`` is readable (remove it with :meth:`unwatch` before closing it)."""
        self._epoll.register(fd, select.EPOLLIN)

    def unwatch(self, fd: int) -> None:
        with contextlib.suppress(OSError):  # already closed: the kernel dropped it
            self._epoll.unregister(fd)

    def more(self) -> None:
        os.eventfd_write(self._more, 1)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._more)

    def close(self) -> None:
        self._epoll.close()
        os.close(self._more)
