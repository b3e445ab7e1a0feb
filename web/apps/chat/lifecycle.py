"""A ``/chat`` socket's life: the per-IP gate in front of the handshake, the socket's session
record, the presence edges (``user:online`` / ``user:offline`` and ``users:online``) and the
entries it leaves in the monitoring log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.chat.gate import CheckHandshake, HandshakeFailed
from actors.chat.model import User, iso
from actors.chat.monitor import ConnectionEvent
from actors.chat.presence import Connected, Disconnected, OnlineUsers, SocketInfo
from actors.chat.recovery import Detach
from actors.chat.room import DeliveredSeq, LeaveChat
from actors.chat.wire import EventType, Presence
from actors.sockets.session import Session
from web.apps.chat.schemas import INVALID, SessionInfo, UserOffline, UserOnline, UsersOnline
from web.platform.http import Failure
from web.sockets.namespace import Ack, ConnectRefused

if TYPE_CHECKING:
    from web.apps.chat import ChatApp

ROOM_ASK_SECONDS = 10.0


@dataclass
class ChatSession:
    """One socket's record (``Session.state``), owned by the socket's reader task."""

    user: User
    connected_at: float
    last_activity: float
    ip: str
    user_agent: str
    rooms: set[str] = field(default_factory=set)
    recovery_token: str | None = None

    def info(self, sid: str) -> SessionInfo:
        return SessionInfo(
            user_id=self.user.user_id,
            socket_id=sid,
            connected_at=iso(self.connected_at),
            last_activity=iso(self.last_activity),
            rooms=sorted(self.rooms),
            message_queue=[],
            recovery_token=self.recovery_token,
        )


def install(app: ChatApp) -> None:
    """The gate in front of the namespace's JWT middleware, connect/disconnect, and the answer
    to payloads that do not fit their schema."""
    _install_gate(app)

    async def connected(session: Session) -> None:
        await on_connect(app, session)

    async def disconnected(session: Session) -> None:
        await on_disconnect(app, session)

    async def invalid(session: Session, event: str, error: str, ack: Ack | None) -> None:
        await record(app, "error", session, event=event, error=error)
        if ack is not None:
            ack(Failure(False, INVALID, error=error))

    app.ns.connect(connected)
    app.ns.disconnect(disconnected)
    app.ns.on_invalid = invalid


def ip_of(session: Session) -> str:
    hs = session.handshake
    return hs.remote_addr if hs is not None else ""


def user_agent_of(session: Session) -> str:
    hs = session.handshake
    return hs.user_agent if hs is not None else ""


async def record(app: ChatApp, kind: EventType, session: Session, **details: str) -> None:
    """Log a connection event of ``session`` with the monitor."""
    state = session.state
    await app.monitor.tell(
        ConnectionEvent(
            kind,
            session.sid if session.identity is not None else None,
            state.user.user_id if isinstance(state, ChatSession) else None,
            ip_of(session),
            user_agent_of(session),
            app.clock.now(),
            details,
        )
    )


def _install_gate(app: ChatApp) -> None:
    """Wrap the namespace's connect middleware (JWT) with the per-IP connection limits."""
    ns = app.ns
    inner = list(ns.middlewares)

    async def gate(session: Session) -> None:
        ip = ip_of(session)
        refusal: str | None = await app.gate.ask(lambda r: CheckHandshake(ip, r))
        if refusal is not None:
            await record(app, "rate_limit", session, reason=refusal)
            raise ConnectRefused(refusal)
        try:
            for middleware in inner:
                await middleware(session)
        except ConnectRefused as refused:
            await app.gate.tell(HandshakeFailed(ip))
            await record(app, "auth_failure", session, reason=refused.message)
            raise

    ns.middlewares[:] = [gate]


async def on_connect(app: ChatApp, session: Session) -> None:
    """The session record; ``user:online`` (to the others) if this is the user's first socket."""
    ident = session.identity
    assert ident is not None
    now = app.clock.now()
    user = User(ident.user_id, ident.name, ident.is_admin)
    state = ChatSession(user, now, now, ip_of(session), user_agent_of(session))
    session.state = state
    info = SocketInfo(session.sid, now, state.ip, state.user_agent)
    first: bool = await app.presence.ask(lambda r: Connected(user.user_id, user.username, info, r))
    await record(app, "connect", session)
    if first:
        online = UserOnline(user.user_id, user.username, "online", iso(now))
        await app.ns.emit("user:online", online, exclude=[session.sid])
        await users_online(app, now)


async def on_disconnect(app: ChatApp, session: Session) -> None:
    """Leave the rooms, keep the recovery token's chats; ``user:offline`` if it was the user's
    last socket."""
    state = session.state
    if not isinstance(state, ChatSession):
        return
    user = state.user
    rooms = tuple(sorted(state.rooms))
    marks = await marks_of(app, rooms) if state.recovery_token is not None else {}
    await app.recovery.tell(Detach(session.sid, rooms, marks))
    for chat_id in rooms:
        await app.chats.tell(chat_id, LeaveChat(session, user, None, disconnected=True))
    state.rooms.clear()
    now = app.clock.now()
    last: bool = await app.presence.ask(lambda r: Disconnected(user.user_id, session.sid, now, r))
    await record(app, "disconnect", session)
    if last:
        offline = UserOffline(user.user_id, user.username, "offline", iso(now), iso(now))
        await app.ns.emit("user:offline", offline)
        await users_online(app, now)


async def marks_of(app: ChatApp, rooms: tuple[str, ...]) -> dict[str, int]:
    """On a cluster, the last message each room delivered here: a recovery token queues what
    comes after (rebuilt from the database). A single node queues as messages commit."""
    marks: dict[str, int] = {}
    if app.cluster is None:
        return marks
    for chat_id in rooms:
        marks[chat_id] = await app.chats.ask(chat_id, DeliveredSeq, ROOM_ASK_SECONDS)
    return marks


async def users_online(app: ChatApp, now: float) -> None:
    """The seed's ``users:online`` ("online users list updated"), to the whole namespace,
    whenever a user comes online or goes offline: the ``presence:online-users`` list."""
    users: list[Presence] = await app.presence.ask(OnlineUsers)
    await app.ns.emit("users:online", UsersOnline(users, len(users), iso(now)))
