"""The seam through which a monitor watches sockets: connects, rooms, events, upgrades.

The Socket.IO server and the rooms call a :class:`SocketWatcher`, when one is installed, at the
moment each thing happens, from the task where it happens. The calls are synchronous and must
never block or raise: a watcher queues what it heard and does its work elsewhere, so watching
costs the watched traffic one call and nothing it could wait on.
"""

from __future__ import annotations

from typing import Protocol

from actors.sockets.session import Session


class SocketWatcher(Protocol):
    def connected(self, session: Session) -> None:
        """``session`` has just been accepted on its namespace (before its connect handlers)."""

    def disconnected(self, session: Session, reason: str) -> None:
        """``session`` has left its namespace, for ``reason`` (Socket.IO's reason names)."""

    def joined(self, namespace: str, room: str, sid: str) -> None: ...

    def left(self, namespace: str, room: str, sid: str) -> None: ...

    def received(self, session: Session, args: list[object]) -> None:
        """An event from the client: its name and arguments (without the ack callback)."""

    def upgraded(self, session: Session) -> None:
        """The session's connection has switched from polling to WebSocket."""
