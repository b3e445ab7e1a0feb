"""The chat application: the Socket.IO namespace ``/chat`` and the REST routes ``/api/chats``.

Event table: each event name -> a msgspec schema -> one message to one actor
(:mod:`actors.chat`). Every ack is ``{success, message, ...}``; a payload that does not fit its
schema (or breaks a limit: empty or over-long content) is answered ``{success: false, message:
"Invalid request data", error: <what was wrong>}`` to the sender only.

Decisions where the chat API reference (``docs/api/chat.md``) is silent:

* **Access.** A chat is a persisted record with participants (``POST /api/chats``). Every chat
  event (join, leave, info, online, send, typing, receipts) needs the caller to be a participant,
  or an ``admin``; otherwise "Chat not found or access denied" (the same answer for a chat that
  does not exist, so ids cannot be probed). Sending needs access, not a prior ``join:chat``; only
  joined sockets receive the room's broadcasts.
* **Who hears what.** ``message:new``, ``message:delivered``, ``message:read``,
  ``room:online-update`` and ``user:left`` go to every socket in the room, the sender's included
  (as ``io.to(room).emit`` in Node); ``user:joined`` and ``user:typing`` (isTyping true) skip the
  socket that caused them (as ``socket.to(room).emit``). ``user:online``/``user:offline`` go to
  every socket of the namespace except the one connecting, ``user:status-changed`` to all.
* **Several tabs are one user.** ``user:online``/``user:offline`` fire on the user's first socket
  connecting and last socket leaving; ``user:joined``/``user:left`` and ``room:online-update``
  on the user's first socket joining a room / last socket leaving it. Status is per user and
  starts as ``online`` each time the user comes online.
* **Acks after commit.** ``message:send`` is acked, and ``message:new`` broadcast, only after the
  message is committed (group commit); receipts likewise. ``message:sent`` goes to the sending
  socket with the stored message. ``message:read`` also records ``delivered``. A repeated receipt is
  acked but not re-broadcast.
* **Typing** is broadcast on changes (started / stopped), refreshed by repeated ``isTyping: true``,
  and stops on its own ``chat_typing_expiry_seconds`` after the last one, when the user sends, or
  when the user's last socket leaves the room.
* **Rate limits** (settings; 0 disables): over the message limit the answer is "Message rate
  limit exceeded. Please slow down.", over the typing limit "Typing rate limit exceeded. Please
  slow down.". Connection attempts are counted per IP on failed or refused handshakes; past the
  limit CONNECT_ERROR says "Too many connection attempts. Please try again later." for the whole
  block, valid token or not. A separate cap counts every handshake per IP per minute.
* **Expired tokens.** The core ends a session when its token expires; an event that races with
  that end is answered "User not authenticated" (as is REST without a valid token, with 401).
* **Recovery.** A token is valid while its socket is connected and for
  ``chat_recovery_token_ttl_seconds`` after it disconnects; only the same user may use it
  ("Recovery token belongs to another user"); otherwise "Invalid or expired recovery token".
  Recovering re-joins the chats the old socket was in; the messages committed in them meanwhile
  arrive once, in order, in ``connection:queued-messages`` ``{messages, count}`` (the ack's
  ``session.messageQueue`` is then empty: the queue was drained into that event, never twice).
* **Presence** ``presence:user-status`` of a user never seen answers "User not found"; ``email`` is
  null (tokens carry none).
* **Monitoring** is open to any authenticated user, as the seed says, but IP addresses are
  personal data: only an ``admin`` sees other users' (``ipAddress`` is null on their events,
  ``topIPs`` is empty, an ``ip`` filter matches only the caller's own events, and
  ``presence:user-status`` shows ``ipAddress`` null for another user). Health is
  ``warning`` or ``critical`` from real figures: connection error rate (5 % / 25 %, from 10
  attempts), slow-consumer disconnects (1 / 10) and the fullest actor mailbox (50 % / 90 %).
* **REST**: ``POST /api/chats`` ``{name, description?, participants?: [user ids]}`` -> 201
  ``{success, chat}``; ``GET /api/chats`` -> ``{success, chats}``;
  ``GET /api/chats/<id>/messages?before=<message id>&limit=<1..chat_history_page_max>`` ->
  ``{success, messages (newest first), hasMore, nextBefore}``. ``Authorization: Bearer <JWT>``;
  401 "User not authenticated", 404 "Chat not found or access denied", 400 "Invalid request data".
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import trio
from quart import Blueprint, Response, request

from actors.chat import db
from actors.chat.gate import (
    Allow,
    CheckHandshake,
    GateActor,
    GateConfig,
    HandshakeFailed,
)
from actors.chat.model import NOT_FOUND, MessageType, Outcome, User, iso
from actors.chat.monitor import (
    ConnectionEvent,
    EventFilter,
    EventType,
    GetEvents,
    GetHealth,
    GetMetrics,
    GetStats,
    MonitorActor,
    RuntimeFigures,
)
from actors.chat.presence import (
    Connected,
    Disconnected,
    OnlineUsers,
    PresenceActor,
    PresenceStats,
    SetStatus,
    SocketInfo,
    StatusesOf,
    Touch,
    UserStatus,
)
from actors.chat.recovery import Claim, CreateSession, Detach, Peek, RecoveryActor, RecoveryStats
from actors.chat.room import (
    ChatRoomActor,
    Committed,
    ConfirmReceipt,
    CountTyping,
    GetOnline,
    GetRoomInfo,
    GetTypingUsers,
    JoinChat,
    JoinResult,
    LeaveChat,
    RoomConfig,
    SendMessage,
    SetTyping,
)
from actors.runtime import Actor, AskTimeout, Registry, supervise
from actors.sockets.session import Session
from web.platform.http import ApiError, caller, decode_json, json_response, read_body
from web.platform.runtime import Runtime
from web.sockets.namespace import Ack, ConnectRefused, Namespace

log = logging.getLogger("switchboard.chat")

NAMESPACE = "/chat"
NOT_AUTHENTICATED = "User not authenticated"
INVALID = "Invalid request data"
MESSAGE_RATE = "Message rate limit exceeded. Please slow down."
TYPING_RATE = "Typing rate limit exceeded. Please slow down."
INTERNAL = "Internal server error"

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --- payload schemas ----------------------------------------------------------------------------
class ChatRef(msgspec.Struct):
    chatId: Id


class SendRequest(msgspec.Struct):
    chatId: Id
    content: str
    type: MessageType = "text"


class TypingRequest(msgspec.Struct):
    chatId: Id
    isTyping: bool


class ReceiptRequest(msgspec.Struct):
    messageId: Id
    chatId: Id


class MessageRef(msgspec.Struct):
    messageId: Id


class StatusRequest(msgspec.Struct):
    status: Literal["online", "away", "busy"]


class UserRef(msgspec.Struct):
    userId: Id


class RecoverRequest(msgspec.Struct):
    recoveryToken: Annotated[str, msgspec.Meta(min_length=1, max_length=400)]


class EventsRequest(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    type: EventType | None = None
    userId: str | None = None
    ip: str | None = None


class Nothing(msgspec.Struct):
    """Events that take no arguments accept ``{}`` (or nothing)."""


class CreateChatRequest(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    participants: Annotated[list[Id], msgspec.Meta(max_length=1000)] = []


# --- per-socket record (owned by the socket's reader task) ---------------------------------------
@dataclass
class ChatSession:
    user: User
    connected_at: float
    last_activity: float
    ip: str
    user_agent: str
    rooms: set[str] = field(default_factory=set)
    recovery_token: str | None = None

    def info(self, sid: str) -> dict[str, Any]:
        return {
            "userId": self.user.user_id,
            "socketId": sid,
            "connectedAt": iso(self.connected_at),
            "lastActivity": iso(self.last_activity),
            "rooms": sorted(self.rooms),
            "messageQueue": [],
            "recoveryToken": self.recovery_token,
        }


class InvalidRequest(Exception):
    """A payload that fits its schema but breaks a limit; ``str()`` says which."""


Handler = Callable[[Session, ChatSession, Any], Awaitable[dict[str, Any]]]


def _ip(session: Session) -> str:
    hs = session.handshake
    return hs.remote_addr if hs is not None else ""


def _user_agent(session: Session) -> str:
    hs = session.handshake
    return hs.user_agent if hs is not None else ""


def _mailbox(actor: Actor) -> tuple[int, int]:
    stats = actor._inbox_send.statistics()
    return stats.current_buffer_used, int(stats.max_buffer_size)


class ChatApp:
    """The ``/chat`` namespace's table and REST routes, and the actors behind them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.store = runtime.store
        self.ns: Namespace = runtime.namespace(NAMESPACE)
        s = self.settings
        self.presence = PresenceActor()
        self.recovery = RecoveryActor(
            self.clock,
            ttl_seconds=s.chat_recovery_token_ttl_seconds,
            queue_max_messages=s.chat_recovery_queue_max_messages,
        )
        self.gate = GateActor(
            self.clock,
            GateConfig(
                message_rate_per_minute=s.chat_message_rate_per_minute,
                typing_rate_per_minute=s.chat_typing_rate_per_minute,
                connect_attempts=s.chat_connect_attempts_per_ip,
                connect_window_seconds=s.chat_connect_window_seconds,
                connect_block_seconds=s.chat_connect_block_seconds,
                handshakes_per_minute=s.chat_handshakes_per_ip_per_minute,
            ),
        )
        self.monitor = MonitorActor(self.clock, max_events=s.chat_monitoring_events_max)
        self.room_config = RoomConfig(
            typing_expiry_seconds=s.chat_typing_expiry_seconds,
            idle_seconds=s.room_idle_seconds,
            mailbox_size=s.room_mailbox_size,
        )
        self.chats: Registry[str, ChatRoomActor]
        self.store.add_schema(*db.SCHEMA)
        self._install_gate()
        self.ns.on_invalid = self._invalid
        self.ns.connect(self._on_connect)
        self.ns.disconnect(self._on_disconnect)
        self._register_events()
        runtime.add_blueprint(self._blueprint())
        runtime.on_start(self.start)

    async def start(self, nursery: trio.Nursery) -> None:
        for actor in (self.presence, self.recovery, self.gate, self.monitor):
            nursery.start_soon(supervise, actor)

        async def on_commit(committed: Committed) -> None:
            await self.recovery.tell(committed)

        def make_room(chat_id: str) -> ChatRoomActor:
            return ChatRoomActor(
                chat_id,
                store=self.store,
                emitter=self.ns,
                clock=self.clock,
                on_commit=on_commit,
                config=self.room_config,
            )

        self.chats = Registry(make_room, nursery)

    # --- connection life ---------------------------------------------------------------------
    def _event(
        self,
        kind: EventType,
        session: Session | None,
        *,
        ip: str = "",
        user_agent: str = "",
        user_id: str | None = None,
        **details: Any,
    ) -> ConnectionEvent:
        if session is not None:
            state = session.state
            ip = ip or _ip(session)
            user_agent = user_agent or _user_agent(session)
            if user_id is None and isinstance(state, ChatSession):
                user_id = state.user.user_id
        return ConnectionEvent(
            kind,
            session.sid if session is not None and session.identity is not None else None,
            user_id,
            ip,
            user_agent,
            self.clock.now(),
            details,
        )

    def _install_gate(self) -> None:
        """Wrap the namespace's connect middleware (JWT) with the per-IP connection limits."""
        inner = list(self.ns.middlewares)

        async def gate(session: Session) -> None:
            ip = _ip(session)
            refusal: str | None = await self.gate.ask(lambda r: CheckHandshake(ip, r))
            if refusal is not None:
                await self.monitor.tell(self._event("rate_limit", session, reason=refusal))
                raise ConnectRefused(refusal)
            try:
                for middleware in inner:
                    await middleware(session)
            except ConnectRefused as refused:
                await self.gate.tell(HandshakeFailed(ip))
                await self.monitor.tell(
                    self._event("auth_failure", session, reason=refused.message)
                )
                raise

        self.ns.middlewares[:] = [gate]

    async def _on_connect(self, session: Session) -> None:
        ident = session.identity
        assert ident is not None
        now = self.clock.now()
        user = User(ident.user_id, ident.name, ident.is_admin)
        state = ChatSession(user, now, now, _ip(session), _user_agent(session))
        session.state = state
        info = SocketInfo(session.sid, now, state.ip, state.user_agent)
        first: bool = await self.presence.ask(
            lambda r: Connected(user.user_id, user.username, info, r)
        )
        await self.monitor.tell(self._event("connect", session))
        if first:
            await self.ns.emit(
                "user:online",
                {
                    "userId": user.user_id,
                    "username": user.username,
                    "status": "online",
                    "timestamp": iso(now),
                },
                exclude=[session.sid],
            )
            await self._users_online(now)

    async def _users_online(self, now: float) -> None:
        """The seed's ``users:online`` ("online users list updated"), to the whole namespace,
        whenever a user comes online or goes offline: the ``presence:online-users`` list."""
        users = await self.presence.ask(OnlineUsers)
        await self.ns.emit(
            "users:online", {"users": users, "count": len(users), "timestamp": iso(now)}
        )

    async def _on_disconnect(self, session: Session) -> None:
        state = session.state
        if not isinstance(state, ChatSession):
            return
        user = state.user
        rooms = tuple(sorted(state.rooms))
        await self.recovery.tell(Detach(session.sid, rooms))
        for chat_id in rooms:
            await self.chats.tell(chat_id, LeaveChat(session, user, None, disconnected=True))
        state.rooms.clear()
        now = self.clock.now()
        last: bool = await self.presence.ask(
            lambda r: Disconnected(user.user_id, session.sid, now, r)
        )
        await self.monitor.tell(self._event("disconnect", session))
        if last:
            await self.ns.emit(
                "user:offline",
                {
                    "userId": user.user_id,
                    "username": user.username,
                    "status": "offline",
                    "lastSeen": iso(now),
                    "timestamp": iso(now),
                },
            )
            await self._users_online(now)

    async def _invalid(self, session: Session, event: str, error: str, ack: Ack | None) -> None:
        await self.monitor.tell(self._event("error", session, event=event, error=error))
        if ack is not None:
            ack({"success": False, "message": INVALID, "error": error})

    # --- the event table ---------------------------------------------------------------------
    def on(self, event: str, schema: Any = None) -> Callable[[Handler], Handler]:
        """Register ``handler(session, state, payload) -> ack body`` with the common checks:
        an authenticated, unexpired identity; answers through the ack when there is one."""

        def register(handler: Handler) -> Handler:
            async def run(session: Session, payload: Any, ack: Ack | None) -> None:
                state = session.state
                ident = session.identity
                now = self.clock.now()
                if (
                    ident is None
                    or not isinstance(state, ChatSession)
                    or (ident.expires_at is not None and ident.expires_at <= now)
                ):
                    if ack is not None:
                        ack({"success": False, "message": NOT_AUTHENTICATED})
                    return
                state.last_activity = now
                try:
                    body = await handler(session, state, payload)
                except InvalidRequest as err:
                    await self.monitor.tell(
                        self._event("error", session, event=event, error=str(err))
                    )
                    body = {"success": False, "message": INVALID, "error": str(err)}
                except (AskTimeout, trio.TooSlowError):
                    log.warning("%s: an actor did not answer in time", event)
                    await self.monitor.tell(self._event("error", session, event=event))
                    body = {"success": False, "message": "Server busy. Please retry."}
                except Exception:
                    log.exception("chat event %r failed", event)
                    await self.monitor.tell(self._event("error", session, event=event))
                    body = {"success": False, "message": INTERNAL}
                if ack is not None:
                    ack(body)

            self.ns.on(event, schema)(run)
            return handler

        return register

    async def _room(self, chat_id: str, make: Callable[[Any], Any], timeout: float = 10.0) -> Any:
        return await self.chats.ask(chat_id, make, timeout)

    def _register_events(self) -> None:
        on = self.on

        # --- rooms ---------------------------------------------------------------------------
        @on("join:chat", ChatRef)
        async def join_chat(session: Session, state: ChatSession, p: ChatRef) -> dict[str, Any]:
            out: Outcome = await self._room(p.chatId, lambda r: JoinChat(session, state.user, r))
            if not out.ok:
                return out.ack()
            state.rooms.add(p.chatId)
            result: JoinResult = out.data
            return out.ack(roomInfo=result.room_info)

        @on("leave:chat", ChatRef)
        async def leave_chat(session: Session, state: ChatSession, p: ChatRef) -> dict[str, Any]:
            out: Outcome = await self._room(p.chatId, lambda r: LeaveChat(session, state.user, r))
            if out.ok:
                state.rooms.discard(p.chatId)
            return out.ack()

        @on("room:info", ChatRef)
        async def room_info(session: Session, state: ChatSession, p: ChatRef) -> dict[str, Any]:
            out: Outcome = await self._room(p.chatId, lambda r: GetRoomInfo(state.user, r))
            return out.ack(roomInfo=out.data) if out.ok else out.ack()

        @on("room:list", Nothing | None)
        async def room_list(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            records = await self.store.read(db.chats_of(state.user.user_id))
            rooms = [
                {
                    "chatId": c.chat_id,
                    "name": c.name,
                    "description": c.description,
                    "participantCount": len(c.participants),
                    "lastActivity": iso(c.last_activity),
                    "joined": c.chat_id in state.rooms,
                }
                for c in records
            ]
            return {"success": True, "rooms": rooms}

        @on("room:online", ChatRef)
        async def room_online(session: Session, state: ChatSession, p: ChatRef) -> dict[str, Any]:
            out: Outcome = await self._room(p.chatId, lambda r: GetOnline(state.user, r))
            if not out.ok:
                return out.ack()
            members: list[dict[str, Any]] = out.data
            ids = tuple(m["userId"] for m in members)
            presence: dict[str, dict[str, Any]] = await self.presence.ask(
                lambda r: StatusesOf(ids, r)
            )
            users = []
            for m in members:
                seen = presence.get(m["userId"], {})
                users.append(
                    {
                        "userId": m["userId"],
                        "username": m["username"],
                        "status": seen.get("status", "online"),
                        "lastSeen": seen.get("lastSeen", m["connectedAt"]),
                        "connectedAt": m["connectedAt"],
                    }
                )
            return {"success": True, "onlineUsers": users}

        # --- messages ------------------------------------------------------------------------
        @on("message:send", SendRequest)
        async def send(session: Session, state: ChatSession, p: SendRequest) -> dict[str, Any]:
            limit = self.settings.chat_max_message_chars
            if not p.content.strip():
                raise InvalidRequest("content is empty")
            if len(p.content) > limit:
                raise InvalidRequest(f"content is longer than {limit} characters")
            user = state.user
            if not await self.gate.ask(lambda r: Allow("message", user.user_id, r)):
                await self.monitor.tell(self._event("rate_limit", session, limit="message"))
                return {"success": False, "message": MESSAGE_RATE}
            out: Outcome = await self._room(
                p.chatId, lambda r: SendMessage(user, p.content, p.type, r), timeout=60.0
            )
            if not out.ok:
                return out.ack()
            wire: dict[str, Any] = out.data
            session.emit(
                "message:sent",
                {
                    "messageId": wire["id"],
                    "chatId": wire["chatId"],
                    "sentAt": wire["createdAt"],
                    "message": wire,
                },
            )
            return out.ack(sentMessage=wire)

        @on("message:typing", TypingRequest)
        async def typing(session: Session, state: ChatSession, p: TypingRequest) -> dict[str, Any]:
            user = state.user
            if not await self.gate.ask(lambda r: Allow("typing", user.user_id, r)):
                await self.monitor.tell(self._event("rate_limit", session, limit="typing"))
                return {"success": False, "message": TYPING_RATE}
            out: Outcome = await self._room(
                p.chatId, lambda r: SetTyping(session.sid, user, p.isTyping, r)
            )
            return out.ack()

        @on("message:typing-users", ChatRef)
        async def typing_users(session: Session, state: ChatSession, p: ChatRef) -> dict[str, Any]:
            out: Outcome = await self._room(p.chatId, lambda r: GetTypingUsers(state.user, r))
            return out.ack(typingUsers=out.data) if out.ok else out.ack()

        def receipt(kind: str) -> Handler:
            async def confirm(
                session: Session, state: ChatSession, p: ReceiptRequest
            ) -> dict[str, Any]:
                out: Outcome = await self._room(
                    p.chatId, lambda r: ConfirmReceipt(kind, p.messageId, state.user, r)
                )
                return out.ack()

            return confirm

        on("message:delivered", ReceiptRequest)(receipt("delivered"))
        on("message:read", ReceiptRequest)(receipt("read"))

        @on("message:delivery-status", MessageRef)
        async def delivery_status(
            session: Session, state: ChatSession, p: MessageRef
        ) -> dict[str, Any]:
            found = await self.store.read(db.delivery_status(p.messageId))
            user = state.user
            if found is None or not (user.is_admin or user.user_id in found.participants):
                return {"success": False, "message": "Message not found or access denied"}
            return {
                "success": True,
                "status": {
                    "messageId": p.messageId,
                    "chatId": found.message.chat_id,
                    "deliveredTo": found.delivered_to,
                    "readBy": found.read_by,
                    "sentAt": iso(found.message.created_at),
                    "lastUpdate": iso(found.last_update),
                },
            }

        @on("message:stats", Nothing | None)
        async def message_stats(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            totals = await self.store.read(db.totals)
            typing_now = 0
            for room in list(self.chats.actors.values()):
                try:
                    typing_now += await room.ask(CountTyping, timeout=2.0)
                except Exception:  # a room that retired meanwhile has nobody typing
                    continue
            return {
                "success": True,
                "stats": {
                    "activeTypingUsers": typing_now,
                    "trackedMessages": totals.messages,
                    "totalDelivered": totals.delivered,
                    "totalRead": totals.read,
                },
            }

        # --- presence ------------------------------------------------------------------------
        @on("presence:update-status", StatusRequest)
        async def update_status(
            session: Session, state: ChatSession, p: StatusRequest
        ) -> dict[str, Any]:
            user = state.user
            now = self.clock.now()
            previous: str | None = await self.presence.ask(
                lambda r: SetStatus(user.user_id, p.status, now, r)
            )
            if previous is None:  # raced with the disconnect of the user's last socket
                return {"success": False, "message": NOT_AUTHENTICATED}
            if previous != p.status:
                await self.ns.emit(
                    "user:status-changed",
                    {
                        "userId": user.user_id,
                        "username": user.username,
                        "status": p.status,
                        "previousStatus": previous,
                        "timestamp": iso(now),
                    },
                )
            return {"success": True, "message": "Status updated successfully"}

        @on("presence:online-users", Nothing | None)
        async def online_users(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            users = await self.presence.ask(OnlineUsers)
            return {"success": True, "users": users}

        @on("presence:user-status", UserRef)
        async def user_status(session: Session, state: ChatSession, p: UserRef) -> dict[str, Any]:
            found: dict[str, Any] | None = await self.presence.ask(
                lambda r: UserStatus(p.userId, state.user, r)
            )
            if found is None:
                return {"success": False, "message": "User not found"}
            return {"success": True, "presence": found}

        @on("presence:stats", Nothing | None)
        async def presence_stats(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            return {"success": True, "stats": await self.presence.ask(PresenceStats)}

        # --- recovery ------------------------------------------------------------------------
        @on("connection:create-session", Nothing | None)
        async def create_session(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            rooms = tuple(sorted(state.rooms))
            token: str = await self.recovery.ask(
                lambda r: CreateSession(state.user.user_id, session.sid, rooms, r)
            )
            state.recovery_token = token
            ttl = self.settings.chat_recovery_token_ttl_seconds
            session.emit(
                "connection:recovery-token",
                {
                    "recoveryToken": token,
                    "userId": state.user.user_id,
                    "socketId": session.sid,
                    "expiresInSeconds": ttl,
                },
            )
            return {"success": True, "recoveryToken": token}

        @on("connection:recover", RecoverRequest)
        async def recover(
            session: Session, state: ChatSession, p: RecoverRequest
        ) -> dict[str, Any]:
            user = state.user
            token = p.recoveryToken
            rooms: tuple[str, ...] | str = await self.recovery.ask(
                lambda r: Peek(token, user.user_id, r)
            )
            if isinstance(rooms, str):
                await self.monitor.tell(self._event("error", session, event="connection:recover"))
                return {"success": False, "message": rooms}
            upto: dict[str, int] = {}
            for chat_id in rooms:
                out: Outcome = await self._room(
                    chat_id, lambda r: JoinChat(session, user, r, quiet=True)
                )
                if out.ok:
                    state.rooms.add(chat_id)
                    upto[chat_id] = out.data.last_seq
            queued: list[dict[str, Any]] | str = await self.recovery.ask(
                lambda r: Claim(token, user.user_id, session.sid, upto, r)
            )
            if isinstance(queued, str):
                return {"success": False, "message": queued}
            state.recovery_token = token
            info = state.info(session.sid)
            session.emit("connection:recovered", {"session": info})
            if queued:
                session.emit(
                    "connection:queued-messages", {"messages": queued, "count": len(queued)}
                )
            return {
                "success": True,
                "message": "Connection recovered successfully",
                "session": info,
                "queuedMessages": len(queued),
            }

        @on("connection:session-info", Nothing | None)
        async def session_info(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            await self.presence.tell(Touch(state.user.user_id, state.last_activity))
            return {"success": True, "sessionInfo": state.info(session.sid)}

        @on("connection:stats", Nothing | None)
        async def connection_stats(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            return {"success": True, "stats": await self.recovery.ask(RecoveryStats)}

        # --- monitoring ----------------------------------------------------------------------
        @on("monitoring:metrics", Nothing | None)
        async def metrics(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            return {"success": True, "metrics": await self.monitor.ask(GetMetrics)}

        @on("monitoring:events", EventsRequest | None)
        async def events(
            session: Session, state: ChatSession, p: EventsRequest | None
        ) -> dict[str, Any]:
            p = p or EventsRequest()
            wanted = EventFilter(p.limit, p.type, p.userId, p.ip)
            found: list[dict[str, Any]] = await self.monitor.ask(
                lambda r: GetEvents(wanted, state.user, r)
            )
            return {"success": True, "events": found}

        @on("monitoring:stats", Nothing | None)
        async def monitoring_stats(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            stats: dict[str, Any] = await self.monitor.ask(lambda r: GetStats(state.user, r))
            return {"success": True, "stats": stats}

        @on("monitoring:health", Nothing | None)
        async def health(session: Session, state: ChatSession, p: Any) -> dict[str, Any]:
            figures = self._figures()
            status: dict[str, Any] = await self.monitor.ask(lambda r: GetHealth(figures, r))
            return {"success": True, "health": status}

    def _figures(self) -> RuntimeFigures:
        """Sample the runtime: slow-consumer disconnects and the fullest mailbox."""
        runtime = self.runtime
        actors: list[tuple[str, Actor]] = [
            ("store", self.store),
            ("presence", self.presence),
            ("recovery", self.recovery),
            ("chat-gate", self.gate),
            ("chat-monitor", self.monitor),
        ]
        actors += [(f"chat-room {cid}", a) for cid, a in list(self.chats.actors.items())]
        actors += [(f"room {name}", a) for name, a in list(self.ns.rooms.registry.actors.items())]
        worst = ("none", 0, 0)
        worst_fill = 0.0
        for name, actor in actors:
            depth, capacity = _mailbox(actor)
            fill = depth / capacity if capacity else 0.0
            if fill > worst_fill:
                worst, worst_fill = (name, depth, capacity), fill
        return RuntimeFigures(
            slow_consumer_disconnects=runtime.engine.stats.slow_consumers,
            deepest_mailbox=worst[0],
            mailbox_depth=worst[1],
            mailbox_capacity=worst[2],
            handler_errors=runtime.sio.stats.handler_errors,
        )

    # --- REST ------------------------------------------------------------------------------------
    def _caller(self) -> User:
        try:
            ident = caller(self.runtime.authenticator)
        except ApiError:
            raise ApiError(401, NOT_AUTHENTICATED) from None
        assert ident is not None
        return User(ident.user_id, ident.name, ident.is_admin)

    def _blueprint(self) -> Blueprint:
        bp = Blueprint("chat", __name__)
        app = self

        def answer(status: int, message: str, **extra: Any) -> Response:
            return json_response(status, {"success": status < 400, "message": message, **extra})

        @bp.post("/api/chats")
        async def create_chat() -> Response:
            user = app._caller()
            limit = app.settings.chat_max_body_bytes
            body = await read_body(limit, f"Request body too large: at most {limit} bytes")
            spec = decode_json(body, CreateChatRequest)
            if not spec.name.strip():
                raise ApiError(400, INVALID, error="name is empty")
            chat = await app.store.write(
                db.create_chat(
                    str(uuid.uuid4()),
                    spec.name.strip(),
                    spec.description,
                    user.user_id,
                    spec.participants,
                    app.clock.now(),
                )
            )
            return answer(201, "Chat created successfully", chat=chat.summary())

        @bp.get("/api/chats")
        async def list_chats() -> Response:
            user = app._caller()
            records = await app.store.read(db.chats_of(user.user_id))
            return answer(200, "", chats=[c.summary() for c in records])

        @bp.get("/api/chats/<chatId>/messages")
        async def messages(chatId: str) -> Response:
            user = app._caller()
            chat = await app.store.read(db.load_chat(chatId))
            if chat is None or not chat.allows(user):
                raise ApiError(404, NOT_FOUND)
            cap = app.settings.chat_history_page_max
            raw_limit = request.args.get("limit", "50")
            try:
                limit = int(raw_limit)
            except ValueError:
                raise ApiError(400, INVALID, error="limit must be an integer") from None
            if not 1 <= limit <= cap:
                raise ApiError(400, INVALID, error=f"limit must be between 1 and {cap}")
            before = request.args.get("before") or None
            page = await app.store.read(db.history(chatId, before, limit))
            if page is None:
                raise ApiError(400, INVALID, error="before is not a message of this chat")
            found, more = page
            wires = [m.wire() for m in found]
            return answer(
                200,
                "",
                messages=wires,
                hasMore=more,
                nextBefore=wires[-1]["id"] if more and wires else None,
            )

        return bp
