"""Presence: which users are online, on how many sockets, and with which status.

A user is online while at least one of their sockets is connected (several tabs are one user):
:class:`Connected` answers whether this socket is the user's first, :class:`Disconnected` whether
it was the last, and the caller broadcasts ``user:online`` / ``user:offline`` on those edges only.
A user's status (``online``/``away``/``busy``) belongs to the user, not the socket, and starts as
``online`` each time the user comes online. Users seen since the server started are remembered
with their last-seen time (``offline`` when no socket is left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.chat.model import User, iso
from actors.runtime import Actor, Reply


@dataclass(slots=True)
class SocketInfo:
    sid: str
    connected_at: float
    ip: str
    user_agent: str


@dataclass(slots=True)
class UserPresence:
    user_id: str
    username: str
    status: str = "offline"
    last_seen: float = 0.0
    connected_at: float = 0.0  # when the user came online (first socket)
    sockets: dict[str, SocketInfo] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "username": self.username,
            "status": self.status,
            "lastSeen": iso(self.last_seen),
            "connectedAt": iso(self.connected_at) if self.sockets else None,
        }


@dataclass(frozen=True, slots=True)
class Connected:
    user_id: str
    username: str
    socket: SocketInfo
    reply: Reply[bool]  # True: the user's first socket


@dataclass(frozen=True, slots=True)
class Disconnected:
    user_id: str
    sid: str
    at: float
    reply: Reply[bool]  # True: the user's last socket


@dataclass(frozen=True, slots=True)
class Touch:
    user_id: str
    at: float


@dataclass(frozen=True, slots=True)
class SetStatus:
    user_id: str
    status: str
    at: float
    reply: Reply[str | None]  # the previous status, None when the user is not online


@dataclass(frozen=True, slots=True)
class OnlineUsers:
    reply: Reply[list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class UserStatus:
    user_id: str
    viewer: User  # sees the IP address only if it is their own (or they are an admin)
    reply: Reply[dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class StatusesOf:
    user_ids: tuple[str, ...]
    reply: Reply[dict[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class PresenceStats:
    reply: Reply[dict[str, int]]


class PresenceActor(Actor):
    kind = "presence"
    mailbox_size = 1024

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, UserPresence] = {}

    async def handle(self, message: object) -> None:
        if isinstance(message, Connected):
            user = self.users.get(message.user_id)
            if user is None:
                user = self.users[message.user_id] = UserPresence(message.user_id, message.username)
            user.username = message.username
            first = not user.sockets
            if first:
                user.status = "online"
                user.connected_at = message.socket.connected_at
            user.sockets[message.socket.sid] = message.socket
            user.last_seen = message.socket.connected_at
            message.reply.send(first)
        elif isinstance(message, Disconnected):
            user = self.users.get(message.user_id)
            if user is None or user.sockets.pop(message.sid, None) is None:
                message.reply.send(False)
                return
            user.last_seen = message.at
            last = not user.sockets
            if last:
                user.status = "offline"
            message.reply.send(last)
        elif isinstance(message, Touch):
            user = self.users.get(message.user_id)
            if user is not None and user.sockets:
                user.last_seen = message.at
        elif isinstance(message, SetStatus):
            user = self.users.get(message.user_id)
            if user is None or not user.sockets:
                message.reply.send(None)
                return
            previous = user.status
            user.status = message.status
            user.last_seen = message.at
            message.reply.send(previous)
        elif isinstance(message, OnlineUsers):
            online = [u for u in self.users.values() if u.sockets]
            online.sort(key=lambda u: u.connected_at)
            message.reply.send([u.wire() for u in online])
        elif isinstance(message, UserStatus):
            user = self.users.get(message.user_id)
            if user is None:
                message.reply.send(None)
                return
            body = user.wire()
            latest = max(user.sockets.values(), key=lambda s: s.connected_at, default=None)
            body["email"] = None  # tokens carry no e-mail address
            body["socketId"] = latest.sid if latest else None
            body["socketCount"] = len(user.sockets)
            body["userAgent"] = latest.user_agent if latest else None
            body["ipAddress"] = None
            if latest is not None and message.viewer.sees_ip_of(message.user_id):
                body["ipAddress"] = latest.ip
            message.reply.send(body)
        elif isinstance(message, StatusesOf):
            message.reply.send(
                {uid: self.users[uid].wire() for uid in message.user_ids if uid in self.users}
            )
        elif isinstance(message, PresenceStats):
            counts = {"online": 0, "away": 0, "busy": 0, "offline": 0}
            for user in self.users.values():
                counts[user.status] = counts.get(user.status, 0) + 1
            message.reply.send(
                {
                    "totalUsers": len(self.users),
                    "onlineUsers": counts["online"],
                    "awayUsers": counts["away"],
                    "busyUsers": counts["busy"],
                    "offlineUsers": counts["offline"],
                }
            )
        else:
            raise TypeError(f"presence got an unknown message {message!r}")
