"""The fan-out seam: handlers publish a :class:`Broadcast`; rooms never know who carries it.

A broadcast is the packet (event and arguments) with its audience (rooms, exceptions, flags), not
encoded bytes: each node encodes it once for its own members. The same seam carries the
operations on sockets wherever they are (Node's ``fetchSockets``, ``socketsJoin``,
``socketsLeave``, ``disconnectSockets``, ``serverSideEmit``, ``emitWithAck``).
:class:`LocalBroker` does all of it within this process; the cluster's broker
(:mod:`actors.cluster.broker`) does it on every node, in the Socket.IO Redis adapter's format.
"""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import trio

from actors.sockets.recovery import RecoveryLog
from actors.sockets.rooms import RoomLimitReached, Rooms
from actors.sockets.session import AckTimeout, Session, event_frame


@dataclass(frozen=True, slots=True)
class Broadcast:
    namespace: str
    event: str
    args: tuple[object, ...]
    rooms: tuple[str, ...] | None = None  # None: every session of the namespace
    exclude: frozenset[str] = frozenset()  # session ids and room names left out
    volatile: bool = False  # may be dropped for a backed-up client instead of cutting it off


@dataclass(frozen=True, slots=True)
class Selector:
    """Which sockets of a namespace an operation is for: in any of ``rooms`` (all when empty)
    and in none of ``except_rooms`` (a socket is in the room named by its own id)."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()

    def matches(self, session: Session) -> bool:
        rooms = session.rooms
        sid = session.sid
        if self.rooms and sid not in self.rooms and self.rooms.isdisjoint(rooms):
            return False
        return sid not in self.except_rooms and self.except_rooms.isdisjoint(rooms)


class HandshakeInfo(msgspec.Struct):
    """A socket's handshake, as Node's ``fetchSockets()`` shows it."""

    headers: dict[str, str]
    time: str
    address: str
    xdomain: bool
    secure: bool
    issued: int  # epoch milliseconds
    url: str
    query: dict[str, str]
    auth: dict[str, Any]


class SocketInfo(msgspec.Struct):
    """One socket anywhere in the cluster (Node's RemoteSocket: id, handshake, rooms, data)."""

    id: str
    handshake: HandshakeInfo
    rooms: list[str]
    data: dict[str, Any]
    node: str = ""  # the node it lives on ("" here)


@dataclass
class AckResults:
    """What a broadcast with acks got back: one answer per client that answered in time."""

    answers: list[object] = field(default_factory=list)
    expected: int = 0  # clients the broadcast reached
    nodes_silent: int = 0  # nodes that never said how many clients they have

    @property
    def timed_out(self) -> int:
        """Clients (that we know of) whose ack did not come in time."""
        return max(0, self.expected - len(self.answers))


ServerSideHandler = Callable[[list[object]], Awaitable[object]]


class Broker(Protocol):
    async def publish(self, broadcast: Broadcast) -> None: ...

    async def deliver(self, broadcast: Broadcast) -> int:
        """To this node's sessions only (an application that fans out by other means)."""
        ...

    async def fetch_sockets(self, namespace: str, selector: Selector) -> list[SocketInfo]: ...

    async def join(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None: ...

    async def leave(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None: ...

    async def disconnect(self, namespace: str, selector: Selector, close: bool) -> None: ...

    async def all_rooms(self, namespace: str) -> set[str]: ...

    async def server_side_emit(
        self, namespace: str, data: list[object], *, ack: bool, timeout: float
    ) -> list[object]: ...

    async def broadcast_with_ack(self, broadcast: Broadcast, timeout: float) -> AckResults: ...


def socket_info(session: Session, node: str = "", *, admin: bool = False) -> SocketInfo:
    """``admin``: ``data`` also carries ``_admin`` (its connection's id, shortened, and its
    transport), as Node's Admin UI instrumentation adds it, so the UI sees them for sockets on
    any node, Node's or ours."""
    hs = session.handshake
    identity = session.identity
    data: dict[str, Any] = {}
    if identity is not None:
        data = {"userId": identity.user_id, "name": identity.name, "role": identity.role}
    if admin:
        conn = session.conn
        data["_admin"] = {"clientId": conn.sid[:12], "transport": conn.transport_name}
    headers = dict(hs.headers) if hs is not None else {}
    query = dict(hs.query) if hs is not None else {}
    issued = hs.issued_at if hs is not None else 0.0
    handshake = HandshakeInfo(
        headers,
        http_date(issued),
        hs.remote_addr if hs is not None else "",
        "origin" in headers,
        headers.get("x-forwarded-proto") == "https",
        int(issued * 1000),
        query.get("_url", ""),
        query,
        session.auth if isinstance(session.auth, dict) else {},
    )
    rooms = [session.sid, *sorted(session.rooms)]
    return SocketInfo(session.sid, handshake, rooms, data, node)


def http_date(epoch: float) -> str:
    """The handshake's time as text (Node shows ``new Date().toString()``; we show HTTP's)."""
    return email.utils.formatdate(epoch, usegmt=True)


class LocalBroker:
    """Delivers to and acts on the sessions of this process: one encoding per broadcast."""

    def __init__(self, recovery: RecoveryLog | None = None) -> None:
        self.directories: dict[str, Rooms] = {}
        self.server_side: dict[str, dict[str, ServerSideHandler]] = {}
        self.recovery = recovery  # with connection state recovery: broadcasts get offsets
        self.published = 0
        self.admin_fields = False  # fetched sockets carry ``data._admin`` (the Admin UI is on)

    def add(self, rooms: Rooms, server_side: dict[str, ServerSideHandler] | None = None) -> None:
        self.directories[rooms.namespace] = rooms
        self.server_side[rooms.namespace] = server_side or {}

    # --- broadcasts --------------------------------------------------------------------------
    async def publish(self, broadcast: Broadcast) -> None:
        self.published += 1
        await self.deliver(broadcast)

    async def deliver(self, b: Broadcast) -> int:
        """Encode once and offer to every matching local session."""
        directory = self.directories.get(b.namespace)
        if directory is None:
            return 0
        args = b.args
        if self.recovery is not None and not b.volatile:
            args = self.recovery.record(b.namespace, (b.event, *b.args), b.rooms, b.exclude)
        frame = event_frame(b.namespace, b.event, args, volatile=b.volatile)
        exclude = self._excluded(directory, b.exclude)
        await directory.deliver(frame, b.rooms, exclude)
        return 1

    @staticmethod
    def _excluded(directory: Rooms, names: frozenset[str]) -> frozenset[str]:
        """Session ids left out: the named sessions and the members of named rooms (only the
        second kind, rare, costs a look at every session)."""
        if not names or all(name in directory.sessions for name in names):
            return names
        selector = Selector(except_rooms=names)
        left_out = {s.sid for s in directory.sessions.values() if not selector.matches(s)}
        return frozenset(left_out) | names

    def sessions(self, namespace: str, selector: Selector) -> list[Session]:
        directory = self.directories.get(namespace)
        if directory is None:
            return []
        return [s for s in list(directory.sessions.values()) if selector.matches(s)]

    # --- operations on sockets -----------------------------------------------------------------
    async def fetch_sockets(self, namespace: str, selector: Selector) -> list[SocketInfo]:
        admin = self.admin_fields
        return [socket_info(s, admin=admin) for s in self.sessions(namespace, selector)]

    async def join(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None:
        names = list(rooms)
        directory = self.directories[namespace]
        for session in self.sessions(namespace, selector):
            for room in names:
                if room not in session.rooms and session.connected:
                    try:
                        await directory.join(session, room)
                    except RoomLimitReached:  # counted by the directory; the others still join
                        break

    async def leave(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None:
        names = list(rooms)
        directory = self.directories[namespace]
        for session in self.sessions(namespace, selector):
            for room in names:
                if room in session.rooms:
                    await directory.leave(session, room)

    async def disconnect(self, namespace: str, selector: Selector, close: bool) -> None:
        for session in self.sessions(namespace, selector):
            if session.disconnector is not None:
                await session.disconnector(session, close)

    async def all_rooms(self, namespace: str) -> set[str]:
        directory = self.directories.get(namespace)
        if directory is None:
            return set()
        rooms = set(directory.sessions)
        for session in directory.sessions.values():
            rooms |= session.rooms
        return rooms

    async def server_side_emit(
        self, namespace: str, data: list[object], *, ack: bool, timeout: float
    ) -> list[object]:
        """No other server runs here: nobody hears it, and no answer comes."""
        return []

    async def answer_server_side(self, namespace: str, data: list[object]) -> object | None:
        """Run this node's handler of a server-side emit from another node; its result is the
        ack's argument (None when there is no handler)."""
        if not data or not isinstance(data[0], str):
            return None
        handler = self.server_side.get(namespace, {}).get(data[0])
        if handler is None:
            return None
        return await handler(data[1:])

    async def broadcast_with_ack(self, broadcast: Broadcast, timeout: float) -> AckResults:
        results = AckResults()

        def count(n: int) -> None:
            results.expected += n

        await self.ask_local(broadcast, timeout, count, results.answers.append)
        return results

    async def ask_local(
        self,
        b: Broadcast,
        timeout: float,
        on_count: Callable[[int], None],
        on_answer: Callable[[object], None],
    ) -> None:
        """Emit ``b`` with an ack to each matching local session: ``on_count`` hears how many
        first, then ``on_answer`` each client's first ack argument as it comes, until
        ``timeout``."""
        selector = Selector(frozenset(b.rooms or ()), b.exclude)
        targets = self.sessions(b.namespace, selector)
        on_count(len(targets))

        async def ask(session: Session) -> None:
            try:
                answer = await session.call(b.event, *b.args, timeout=timeout)
            except AckTimeout:
                return
            on_answer(answer[0] if answer else None)

        async with trio.open_nursery() as nursery:
            for session in targets:
                nursery.start_soon(ask, session)
