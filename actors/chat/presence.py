"""Presence: which users are online, on how many sockets, and with which status.

A user is online while at least one of their sockets is connected (several tabs are one user):
:class:`Connected` answers whether this socket is the user's first, :class:`Disconnected` whether
it was the last, and the caller broadcasts ``user:online`` / ``user:offline`` on those edges only.
A user's status (``online``/``away``/``busy``) belongs to the user, not the socket, and starts as
``online`` each time the user comes online. Users seen since the server started are remembered
with their last-seen time (``offline`` when no socket is left).

On a cluster, :class:`SharedPresenceActor` answers the same messages from Redis: the edges and
the lists are the cluster's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.chat.model import Status, User, iso
from actors.chat.redis_state import RedisChatState
from actors.chat.wire import Presence, PresenceCounts, PresenceDetail, PresenceStatus
from actors.runtime import Actor, Reply, handles


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
    status: PresenceStatus = "offline"
    last_seen: float = 0.0
    connected_at: float = 0.0  # when the user came online (first socket)
    sockets: dict[str, SocketInfo] = field(default_factory=dict)

    def wire(self) -> Presence:
        return Presence(
            user_id=self.user_id,
            username=self.username,
            status=self.status,
            last_seen=iso(self.last_seen),
            connected_at=iso(self.connected_at) if self.sockets else None,
        )

    def detail(self, viewer: User) -> PresenceDetail:
        """The presence and the latest socket (its IP address only if ``viewer`` may see it)."""
        latest = max(self.sockets.values(), key=lambda s: s.connected_at, default=None)
        return PresenceDetail(
            user_id=self.user_id,
            username=self.username,
            status=self.status,
            last_seen=iso(self.last_seen),
            connected_at=iso(self.connected_at) if self.sockets else None,
            email=None,
            socket_id=latest.sid if latest else None,
            socket_count=len(self.sockets),
            user_agent=latest.user_agent if latest else None,
            ip_address=latest.ip if latest and viewer.sees_ip_of(self.user_id) else None,
        )


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
    status: Status
    at: float
    reply: Reply[PresenceStatus | None]  # the previous status, None when the user is not online


@dataclass(frozen=True, slots=True)
class OnlineUsers:
    reply: Reply[list[Presence]]


@dataclass(frozen=True, slots=True)
class UserStatus:
    user_id: str
    viewer: User  # sees the IP address only if it is their own (or they are an admin)
    reply: Reply[PresenceDetail | None]


@dataclass(frozen=True, slots=True)
class StatusesOf:
    user_ids: tuple[str, ...]
    reply: Reply[dict[str, Presence]]


@dataclass(frozen=True, slots=True)
class PresenceStats:
    reply: Reply[PresenceCounts]


class PresenceActor(Actor):
    kind = "presence"
    mailbox_size = 1024

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, UserPresence] = {}

    @handles(Connected)
    async def _connected(self, message: Connected) -> None:
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

    @handles(Disconnected)
    async def _disconnected(self, message: Disconnected) -> None:
        user = self.users.get(message.user_id)
        if user is None or user.sockets.pop(message.sid, None) is None:
            message.reply.send(False)
            return
        user.last_seen = message.at
        last = not user.sockets
        if last:
            user.status = "offline"
        message.reply.send(last)

    @handles(Touch)
    async def _touch(self, message: Touch) -> None:
        user = self.users.get(message.user_id)
        if user is not None and user.sockets:
            user.last_seen = message.at

    @handles(SetStatus)
    async def _set_status(self, message: SetStatus) -> None:
        user = self.users.get(message.user_id)
        if user is None or not user.sockets:
            message.reply.send(None)
            return
        previous = user.status
        user.status = message.status
        user.last_seen = message.at
        message.reply.send(previous)

    @handles(OnlineUsers)
    async def _online_users(self, message: OnlineUsers) -> None:
        online = [u for u in self.users.values() if u.sockets]
        online.sort(key=lambda u: u.connected_at)
        message.reply.send([u.wire() for u in online])

    @handles(UserStatus)
    async def _user_status(self, message: UserStatus) -> None:
        user = self.users.get(message.user_id)
        message.reply.send(None if user is None else user.detail(message.viewer))

    @handles(StatusesOf)
    async def _statuses_of(self, message: StatusesOf) -> None:
        users = self.users
        message.reply.send({uid: users[uid].wire() for uid in message.user_ids if uid in users})

    @handles(PresenceStats)
    async def _stats(self, message: PresenceStats) -> None:
        counts = {"online": 0, "away": 0, "busy": 0, "offline": 0}
        for user in self.users.values():
            counts[user.status] += 1
        message.reply.send(
            PresenceCounts(
                total_users=len(self.users),
                online_users=counts["online"],
                away_users=counts["away"],
                busy_users=counts["busy"],
                offline_users=counts["offline"],
            )
        )


class SharedPresenceActor(Actor):
    """Presence of a cluster node: the same messages as :class:`PresenceActor`, answered from
    the cluster's presence in Redis (:class:`~actors.chat.redis_state.RedisChatState`), so the
    edges (first socket anywhere, last socket anywhere) and the lists are cluster-wide."""

    kind = "presence"
    mailbox_size = 1024

    def __init__(self, state: RedisChatState) -> None:
        super().__init__()
        self.state = state

    @handles(Connected)
    async def _connected(self, message: Connected) -> None:
        s = message.socket
        user = User(message.user_id, message.username)
        message.reply.send(
            await self.state.connected(user, s.sid, s.connected_at, s.ip, s.user_agent)
        )

    @handles(Disconnected)
    async def _disconnected(self, message: Disconnected) -> None:
        message.reply.send(await self.state.disconnected(message.user_id, message.sid, message.at))

    @handles(Touch)
    async def _touch(self, message: Touch) -> None:
        await self.state.touch(message.user_id, message.at)

    @handles(SetStatus)
    async def _set_status(self, message: SetStatus) -> None:
        previous = await self.state.set_status(message.user_id, message.status, message.at)
        message.reply.send(previous)  # type: ignore[arg-type]

    @handles(OnlineUsers)
    async def _online_users(self, message: OnlineUsers) -> None:
        message.reply.send(await self.state.online_users())

    @handles(UserStatus)
    async def _user_status(self, message: UserStatus) -> None:
        message.reply.send(await self.state.user_status(message.user_id, message.viewer))

    @handles(StatusesOf)
    async def _statuses_of(self, message: StatusesOf) -> None:
        message.reply.send(await self.state.statuses_of(message.user_ids))

    @handles(PresenceStats)
    async def _stats(self, message: PresenceStats) -> None:
        message.reply.send(await self.state.counts())
