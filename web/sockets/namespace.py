"""Namespace event tables: event name -> payload schema -> handler that makes actor messages.

An application registers one :class:`Namespace` per Socket.IO namespace::

    chat = Namespace("/chat")

    @chat.on("join:chat", schema=JoinChat)
    async def join_chat(session: Session, payload: JoinChat, ack: Ack | None) -> None:
        ...  # tell or ask an actor; answer through ``ack``

With a schema, the handler receives the event's first argument converted to it (msgspec); a
payload that does not fit never reaches the handler: :attr:`Namespace.on_invalid` answers it
(through the ack when the client asked for one). Without a schema the handler receives the raw
argument list. Handlers run in the connection's reader task, one event at a time per client, so
they must not wait on that same client (use ``Session.call`` from another task for that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from actors.sockets.broker import (
    AckResults,
    Broadcast,
    Broker,
    Selector,
    ServerSideHandler,
    SocketInfo,
)
from actors.sockets.rooms import Rooms
from actors.sockets.session import Session


class ConnectRefused(Exception):
    """Raised by connect middleware: the client gets CONNECT_ERROR with this message."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class Ack:
    """The client's ack callback for one event; answers once, later calls are ignored."""

    __slots__ = ("ack_id", "answered", "session")

    def __init__(self, session: Session, ack_id: int) -> None:
        self.session = session
        self.ack_id = ack_id
        self.answered = False

    def __call__(self, *args: Any) -> None:
        if not self.answered:
            self.answered = True
            self.session.send_ack(self.ack_id, args)


Handler = Callable[[Session, Any, Ack | None], Awaitable[None]]
Middleware = Callable[[Session], Awaitable[None]]
Lifecycle = Callable[[Session], Awaitable[None]]
InvalidHandler = Callable[[Session, str, str, Ack | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EventSpec:
    handler: Handler
    schema: Any = None


async def default_on_invalid(session: Session, event: str, error: str, ack: Ack | None) -> None:
    if ack is not None:
        ack({"success": False, "message": "Invalid request data", "error": error})


class Namespace:
    def __init__(self, name: str, *, on_invalid: InvalidHandler = default_on_invalid) -> None:
        if not name.startswith("/"):
            raise ValueError("a namespace name starts with '/'")
        self.name = name
        self.events: dict[str, EventSpec] = {}
        self.middlewares: list[Middleware] = []
        self.on_connect: list[Lifecycle] = []
        self.on_disconnect: list[Lifecycle] = []
        self.on_invalid = on_invalid
        self.startup: list[Callable[[Any], Awaitable[None]]] = []
        self.server_side: dict[str, ServerSideHandler] = {}
        # set when the server mounts the namespace
        self._rooms: Rooms | None = None
        self._broker: Broker | None = None

    # --- registration ----------------------------------------------------------------------------
    def on(self, event: str, schema: Any = None) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.events[event] = EventSpec(handler, schema)
            return handler

        return register

    def on_server_side(self, event: str) -> Callable[[ServerSideHandler], ServerSideHandler]:
        """Handle ``event`` emitted by another server of the cluster (Node's ``serverSideEmit``):
        ``handler(args)`` is awaited, and what it returns answers the sender's ack."""

        def register(handler: ServerSideHandler) -> ServerSideHandler:
            self.server_side[event] = handler
            return handler

        return register

    def use(self, middleware: Middleware) -> Middleware:
        self.middlewares.append(middleware)
        return middleware

    def connect(self, fn: Lifecycle) -> Lifecycle:
        self.on_connect.append(fn)
        return fn

    def disconnect(self, fn: Lifecycle) -> Lifecycle:
        self.on_disconnect.append(fn)
        return fn

    def on_startup(self, fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``fn(nursery)`` runs once when the server starts (to start the namespace's actors)."""
        self.startup.append(fn)
        return fn

    def mount(self, rooms: Rooms, broker: Broker) -> None:
        self._rooms = rooms
        self._broker = broker

    # --- use from handlers -----------------------------------------------------------------------
    @property
    def rooms(self) -> Rooms:
        assert self._rooms is not None, "namespace not mounted"
        return self._rooms

    async def emit(
        self,
        event: str,
        *args: object,
        to: str | Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        volatile: bool = False,
    ) -> None:
        """Send to rooms (``to``) or to the whole namespace, on every node: the broker encodes
        it once per node and offers the same frame to every member there."""
        assert self._broker is not None, "namespace not mounted"
        rooms = (to,) if isinstance(to, str) else (None if to is None else tuple(to))
        await self._broker.publish(
            Broadcast(self.name, event, args, rooms, frozenset(exclude), volatile)
        )

    async def emit_here(
        self, event: str, *args: object, to: str | Iterable[str] | None = None
    ) -> None:
        """Send to the matching sockets of this node only: for an application that carries
        its events to the other nodes itself (chat messages, in sequence), or a view that every
        node computes from the same log (each node pushes its own dashboards; a cluster-wide
        emit would reach every client once per node). Without a cluster it is :meth:`emit`."""
        assert self._broker is not None, "namespace not mounted"
        rooms = (to,) if isinstance(to, str) else (None if to is None else tuple(to))
        await self._broker.deliver(Broadcast(self.name, event, args, rooms))

    # --- operations on sockets, wherever they are (every node of a cluster) --------------------
    @property
    def broker(self) -> Broker:
        assert self._broker is not None, "namespace not mounted"
        return self._broker

    async def fetch_sockets(
        self, rooms: Iterable[str] = (), *, except_rooms: Iterable[str] = ()
    ) -> list[SocketInfo]:
        """The sockets in any of ``rooms`` (all when empty), on every node."""
        return await self.broker.fetch_sockets(self.name, _selector(rooms, except_rooms))

    async def sockets_join(
        self, rooms: Iterable[str], *, of: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> None:
        """Make the sockets in any room of ``of`` (all when empty) join ``rooms``."""
        await self.broker.join(self.name, _selector(of, except_rooms), list(rooms))

    async def sockets_leave(
        self, rooms: Iterable[str], *, of: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> None:
        await self.broker.leave(self.name, _selector(of, except_rooms), list(rooms))

    async def disconnect_sockets(
        self, *, of: Iterable[str] = (), except_rooms: Iterable[str] = (), close: bool = False
    ) -> None:
        """Disconnect the matching sockets from this namespace (``close``: their connection)."""
        await self.broker.disconnect(self.name, _selector(of, except_rooms), close)

    async def all_rooms(self) -> set[str]:
        return await self.broker.all_rooms(self.name)

    async def server_side_emit(
        self, event: str, *args: object, ack: bool = False, timeout: float = 5.0
    ) -> list[object]:
        """Emit to the other servers of the cluster; with ``ack``, their answers."""
        return await self.broker.server_side_emit(
            self.name, [event, *args], ack=ack, timeout=timeout
        )

    async def emit_with_ack(
        self,
        event: str,
        *args: object,
        to: str | Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        timeout: float = 5.0,
    ) -> AckResults:
        """Emit to every matching client on every node and collect their acks until
        ``timeout`` (Node's ``timeout(ms).emitWithAck``)."""
        rooms = (to,) if isinstance(to, str) else (None if to is None else tuple(to))
        broadcast = Broadcast(self.name, event, args, rooms, frozenset(exclude))
        return await self.broker.broadcast_with_ack(broadcast, timeout)


def _selector(rooms: Iterable[str], except_rooms: Iterable[str]) -> Selector:
    return Selector(frozenset(rooms), frozenset(except_rooms))
