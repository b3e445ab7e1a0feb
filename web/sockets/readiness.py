"""Read readiness for the native WebSocket path, from one epoll set of our own.

trio's ``wait_readable`` registers a socket with ``EPOLLONESHOT`` and re-arms it with an
``epoll_ctl`` system call on every wait: one extra system call per message per connection, which
a py-spy profile of the echo benchmark put at a third of the server's time. Here each socket is
registered once, edge-triggered, in an epoll set the :class:`ReadinessPoller` owns; one task
waits for that set to become readable (one trio registration per batch of ready sockets, not
per socket) and wakes the reader of each socket that got data.

Edge-triggered means a reader must not wait for an edge while unread data is left. A read
shorter than the buffer emptied the kernel's queue at that moment, and data arriving later
raises a new edge; a full buffer means "read again". :class:`Readiness` keeps a ``ready`` flag
so that an edge arriving while its reader is busy (handling the previous read) is not lost.
One exception: ``recv`` stops short at a FIN or an error with data still before it, and no edge
follows, so the end of a stream (``EPOLLRDHUP``, ``EPOLLHUP``, ``EPOLLERR``) leaves the socket
ready for good: the reader goes on reading until ``recv`` says end-of-stream or fails.

Without ``select.epoll`` (not Linux) :class:`TrioReadiness` falls back to ``wait_readable``.
"""

from __future__ import annotations

import select
import socket
from typing import Any

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

_EDGE_READ = (
    getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLRDHUP", 0) | getattr(select, "EPOLLET", 0)
)
_STREAM_END = (
    getattr(select, "EPOLLRDHUP", 0)
    | getattr(select, "EPOLLHUP", 0)
    | getattr(select, "EPOLLERR", 0)
)


class Readiness:
    """One socket's read readiness: a flag set by the poller, and the reader parked on it."""

    __slots__ = ("ended", "ready", "waiter")

    def __init__(self) -> None:
        self.ready = True  # whatever arrived before registration is read first
        self.ended = False  # the peer closed or the connection failed: always ready from now
        self.waiter: Any = None

    def wake(self, ended: bool = False) -> None:
        self.ready = True
        self.ended = self.ended or ended
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            reschedule(waiter)

    async def wait(self) -> None:
        """Return when the socket may have data (a checkpoint either way)."""
        if self.ready:
            await trio.lowlevel.checkpoint()  # a busy client must not starve the others
        else:
            self.waiter = current_task()
            await wait_task_rescheduled(self._abort)
        self.ready = self.ended  # cleared before the read: an edge after this sets it again

    def more(self) -> None:
        """The last read filled the buffer: data may be left, read again without an edge."""
        self.ready = True

    def _abort(self, raise_cancel: Any) -> Abort:
        self.waiter = None
        return Abort.SUCCEEDED


class ReadinessPoller:
    """The epoll set of the native path's sockets, and the task that watches it."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.by_fd: dict[int, Readiness] = {}

    def register(self, sock: socket.socket) -> Readiness | TrioReadiness:
        if self.epoll.closed:  # shutting down: a late upgrade reads the portable way
            return TrioReadiness(sock)
        fd = sock.fileno()
        self.epoll.register(fd, _EDGE_READ)
        readiness = self.by_fd[fd] = Readiness()
        return readiness

    def unregister(self, sock: socket.socket) -> None:
        """Before the socket closes (its fd number may be reused at once)."""
        fd = sock.fileno()
        if self.by_fd.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):  # gone with its socket, or the poller has stopped
                pass

    async def run(self) -> None:
        poll, by_fd = self.epoll.poll, self.by_fd
        try:
            while True:
                await trio.lowlevel.wait_readable(self.epoll.fileno())
                for fd, events in poll(0):
                    readiness = by_fd.get(fd)
                    if readiness is not None:
                        readiness.wake(bool(events & _STREAM_END))
        finally:
            self.epoll.close()


class TrioReadiness:
    """The portable fallback: trio's own ``wait_readable`` on each wait."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def wait(self) -> None:
        await trio.lowlevel.wait_readable(self.sock)

    def more(self) -> None:
        pass


def new_poller() -> ReadinessPoller | None:
    """The poller where the platform has epoll, else None (use :class:`TrioReadiness`)."""
    return ReadinessPoller() if hasattr(select, "epoll") else None
