"""Rooms: one actor per room owns its members and fans frames out to them.

A broadcast reaches a room as one :class:`Deliver` message carrying one pre-encoded frame; the
room offers that same object to every member's outbox without awaiting anyone, so a slow member
costs the room nothing (its own outbox bound deals with it) and no task is woken per member.

:class:`Rooms` is a namespace's directory of rooms. Every session is also in the room named by
its sid (as in Socket.IO); those rooms need no actor: the directory's session table serves them.
Rooms are created on first join and retire after ``idle_seconds`` empty. A socket may be in at
most ``max_rooms_per_socket`` rooms at once (its own sid room not counted): a join past it
raises :class:`RoomLimitReached`, which every event that joins rooms answers as a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import trio

from actors.runtime import Actor, Registry, Reply, SupervisorPolicy, handles
from actors.sockets.outbox import OutFrame
from actors.sockets.session import Session
from actors.sockets.watch import SocketWatcher


class RoomLimitReached(Exception):
    """A join past ``max_rooms_per_socket``; ``str()`` is the refusal a client is sent."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Room limit reached: a connection may be in at most {limit} rooms "
            "(max_rooms_per_socket); leave one first"
        )
        self.limit = limit


@dataclass(frozen=True, slots=True)
class JoinRoom:
    session: Session
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    sid: str
    reply: Reply[int] | None = None


@dataclass(frozen=True, slots=True)
class Deliver:
    frame: OutFrame
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ListMembers:
    reply: Reply[list[Session]]


@dataclass
class RoomStats:
    """Counters of a namespace's rooms, kept across room retirement (read by /metrics)."""

    deliveries: int = 0
    broadcasts: int = 0


class RoomActor(Actor):
    kind = "room"
    mailbox_size = 256

    def __init__(
        self,
        name: str,
        *,
        idle_seconds: float,
        mailbox_size: int = 256,
        stats: RoomStats | None = None,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.name = name
        self.idle_seconds = idle_seconds  # type: ignore[misc]  # per-instance setting
        self.members: dict[str, Session] = {}
        self.room_stats = stats or RoomStats()

    @handles(Deliver)
    async def _deliver(self, message: Deliver) -> None:
        frame = message.frame
        exclude = message.exclude
        members = self.members
        if exclude:
            for sid, session in members.items():
                if sid not in exclude:
                    session.conn.push(frame)
        else:
            for session in members.values():
                session.conn.push(frame)
        self.room_stats.deliveries += len(members)
        self.room_stats.broadcasts += 1

    @handles(JoinRoom)
    async def _join(self, message: JoinRoom) -> None:
        self.members[message.session.sid] = message.session
        message.reply.send(len(self.members))

    @handles(LeaveRoom)
    async def _leave(self, message: LeaveRoom) -> None:
        self.members.pop(message.sid, None)
        if message.reply is not None:
            message.reply.send(len(self.members))

    @handles(ListMembers)
    async def _list(self, message: ListMembers) -> None:
        message.reply.send(list(self.members.values()))

    async def idle(self) -> bool:
        return not self.members


class Rooms:
    """A namespace's rooms and connected sessions."""

    def __init__(
        self,
        namespace: str,
        nursery: trio.Nursery,
        *,
        room_idle_seconds: float = 30.0,
        room_mailbox_size: int = 256,
        policy: SupervisorPolicy | None = None,
    ) -> None:
        self.namespace = namespace
        self.sessions: dict[str, Session] = {}
        self.stats = RoomStats()
        self.watcher: SocketWatcher | None = None  # told of every join and leave (Admin UI)
        self.max_rooms_per_socket: int | None = None  # None: no limit (the runtime sets it)
        self.refused_joins = 0

        def make_room(name: str) -> RoomActor:
            return RoomActor(
                name,
                idle_seconds=room_idle_seconds,
                mailbox_size=room_mailbox_size,
                stats=self.stats,
            )

        self.registry: Registry[str, RoomActor] = Registry(
            make_room, nursery, policy or SupervisorPolicy()
        )

    async def join(self, session: Session, room: str) -> int:
        """Add the session to ``room``; returns the member count after joining. Raises
        :class:`RoomLimitReached` when the session is in as many rooms as it may be."""
        limit = self.max_rooms_per_socket
        if limit is not None and room not in session.rooms:
            held = len(session.rooms) - (session.sid in session.rooms)
            if held >= limit and room != session.sid:
                self.refused_joins += 1
                raise RoomLimitReached(limit)
        count: int = await self.registry.ask(room, lambda r: JoinRoom(session, r))
        if room not in session.rooms:
            session.rooms.add(room)
            if self.watcher is not None:
                self.watcher.joined(self.namespace, room, session.sid)
        return count

    async def leave(self, session: Session, room: str) -> int:
        if room in session.rooms:
            session.rooms.discard(room)
            if self.watcher is not None:
                self.watcher.left(self.namespace, room, session.sid)
        if self.registry.get(room) is None:
            return 0
        return await self.registry.ask(room, lambda r: LeaveRoom(session.sid, r))

    async def leave_all(self, session: Session) -> None:
        rooms = list(session.rooms)
        session.rooms.clear()
        watcher = self.watcher
        for room in rooms:
            if watcher is not None:
                watcher.left(self.namespace, room, session.sid)
            if self.registry.get(room) is not None:
                await self.registry.tell(room, LeaveRoom(session.sid))

    async def members(self, room: str) -> list[Session]:
        if self.registry.get(room) is None:
            own = self.sessions.get(room)
            return [own] if own is not None else []
        return await self.registry.ask(room, ListMembers)

    async def deliver(
        self, frame: OutFrame, rooms: Iterable[str] | None, exclude: frozenset[str] = frozenset()
    ) -> None:
        """Offer ``frame`` to every session in any of ``rooms`` (all sessions when None)."""
        if rooms is None:
            self.stats.broadcasts += 1
            for sid, session in list(self.sessions.items()):
                if sid not in exclude:
                    session.conn.push(frame)
                    self.stats.deliveries += 1
            return
        names = list(dict.fromkeys(rooms))
        if len(names) == 1:
            name = names[0]
            if self.registry.get(name) is not None:
                await self.registry.tell(name, Deliver(frame, exclude))
                return
            own = self.sessions.get(name)
            if own is not None and name not in exclude:
                own.conn.push(frame)
                self.stats.deliveries += 1
            return
        # several rooms: a session in two of them still gets the frame once
        self.stats.broadcasts += 1
        seen = set(exclude)
        for name in names:
            for session in await self.members(name):
                if session.sid not in seen:
                    seen.add(session.sid)
                    session.conn.push(frame)
                    self.stats.deliveries += 1
