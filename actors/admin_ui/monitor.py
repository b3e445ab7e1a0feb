"""The monitor: hears the watched server's sockets and publishes what the Admin UI shows.

It is the server's :class:`~actors.sockets.watch.SocketWatcher`. Each call, made where the thing
happened, turns into one UI event (payload built there and then, so it shows the socket as it
was) queued in the monitor's bounded mailbox without waiting; the monitor publishes them in
order to the admin namespace, on every node. When the UI cannot keep up, events are dropped and
counted (``stats.dropped``) rather than slowing anyone down: the UI's next ``all_sockets`` (on login
or reload) shows the truth again. ``server_stats`` go out every interval, in production mode
too; per-socket events only in development mode, as in Node's instrumentation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actors.admin_ui.wire import ServerStats, SocketUpdate, admin_socket
from actors.clock import Clock, iso
from actors.runtime import Actor, handles
from actors.sockets.broker import socket_info
from actors.sockets.session import Session

Publisher = Callable[[str, tuple[object, ...]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Publish:
    """One UI event, ready to go: its name and arguments."""

    event: str
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class PublishStats:
    """Time for this node's ``server_stats``."""


class AdminMonitor(Actor):
    kind = "admin-ui"

    def __init__(
        self,
        publish: Publisher,
        server_stats: Callable[[], ServerStats],
        clock: Clock,
        *,
        admin_namespace: str,
        development: bool,
        mailbox_size: int = 1024,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.publish = publish
        self.server_stats = server_stats
        self.clock = clock
        self.admin_namespace = admin_namespace
        self.development = development

    # --- the watcher side: synchronous, never waits ---------------------------------------------
    def _queue(self, event: str, *args: object) -> None:
        if not self.tell_nowait(Publish(event, args)):
            self.stats.dropped += 1

    def _now(self) -> str:
        return iso(self.clock.now())

    def connected(self, session: Session) -> None:
        if self.development:
            info = socket_info(session, admin=True)
            self._queue("socket_connected", admin_socket(info, session.namespace), self._now())

    def disconnected(self, session: Session, reason: str) -> None:
        if self.development:
            self._queue("socket_disconnected", session.namespace, session.sid, reason, self._now())

    def joined(self, namespace: str, room: str, sid: str) -> None:
        if self.development:
            self._queue("room_joined", namespace, room, sid, self._now())

    def left(self, namespace: str, room: str, sid: str) -> None:
        if self.development:
            self._queue("room_left", namespace, room, sid, self._now())

    def received(self, session: Session, args: list[object]) -> None:
        if self.development and session.namespace != self.admin_namespace:
            self._queue("event_received", session.namespace, session.sid, list(args), self._now())

    def upgraded(self, session: Session) -> None:
        if self.development:
            update = SocketUpdate(session.sid, session.namespace, session.conn.transport_name)
            self._queue("socket_updated", update)

    # --- the actor side -------------------------------------------------------------------------
    @handles(Publish)
    async def _publish(self, message: Publish) -> None:
        await self.publish(message.event, message.args)

    @handles(PublishStats)
    async def _publish_stats(self, message: PublishStats) -> None:
        await self.publish("server_stats", (self.server_stats(),))

    async def tick(self) -> None:
        """One interval's ``server_stats`` (waits for room: figures are never dropped)."""
        await self.tell(PublishStats())
