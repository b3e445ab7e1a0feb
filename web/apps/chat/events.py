"""The ``/chat`` event table: one function per event, registered with the checks they share.

Each function gets the app, the socket, its :class:`~web.apps.chat.lifecycle.ChatSession` and
the payload (converted to the event's schema) and returns the ack body. The wrapper
:func:`register` puts around each does the rest once: an authenticated, unexpired identity
("User not authenticated"), the answer through the ack when the client asked for one, and the
error mapping (a broken limit: "Invalid request data" with ``error``; an actor that did not answer
in time: "Server busy. Please retry."; a bug: "Internal server error").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from actors.chat import db
from actors.chat.gate import Allow
from actors.chat.model import Outcome, ReceiptKind, iso
from actors.chat.monitor import (
    EventFilter,
    GetEvents,
    GetHealth,
    GetMetrics,
    GetStats,
    RuntimeFigures,
)
from actors.chat.presence import (
    OnlineUsers,
    PresenceStats,
    SetStatus,
    StatusesOf,
    Touch,
    UserStatus,
)
from actors.chat.recovery import Claim, CreateSession, Peek, RecoveryStats
from actors.chat.room import (
    ConfirmReceipt,
    CountTyping,
    GetOnline,
    GetRoomInfo,
    GetTypingUsers,
    JoinChat,
    JoinResult,
    LeaveChat,
    SendMessage,
    SetTyping,
    refusal,
)
from actors.chat.wire import (
    AckBody,
    ChatMessage,
    ConnectionMetrics,
    HealthReport,
    LoggedEvent,
    MonitorStats,
    Presence,
    PresenceCounts,
    PresenceDetail,
    PresenceStatus,
    RecoveryFigures,
    RoomInfo,
    RoomMember,
    TypingUser,
)
from actors.runtime import Actor, AskTimeout
from actors.sockets.session import Session
from actors.store.faults import OutcomeUnknown, StoreError
from web.apps.chat.lifecycle import ChatSession, marks_of, record
from web.apps.chat.schemas import (
    INVALID,
    NOT_AUTHENTICATED,
    ChatRef,
    ConnectionStatsAck,
    DeliveryReport,
    DeliveryStatusAck,
    EventsAck,
    EventsRequest,
    HealthAck,
    JoinAck,
    MessageRef,
    MessageSent,
    MessageStats,
    MessageStatsAck,
    MetricsAck,
    MonitorStatsAck,
    Nothing,
    OnlineUser,
    OnlineUsersAck,
    PresenceStatsAck,
    QueuedMessages,
    ReceiptRequest,
    RecoverAck,
    Recovered,
    RecoverRequest,
    RecoveryToken,
    RoomInfoAck,
    RoomListAck,
    RoomListing,
    RoomOnlineAck,
    SendAck,
    SendRequest,
    SessionCreatedAck,
    SessionInfoAck,
    StatusRequest,
    TypingRequest,
    TypingUsersAck,
    UserRef,
    UserStatusAck,
    UserStatusChanged,
)
from web.platform.http import Failure
from web.sockets.namespace import Ack, Handler

if TYPE_CHECKING:
    from web.apps.chat import ChatApp

log = logging.getLogger("switchboard.chat")

MESSAGE_RATE = "Message rate limit exceeded. Please slow down."
TYPING_RATE = "Typing rate limit exceeded. Please slow down."
BUSY = "Server busy. Please retry."
INTERNAL = "Internal server error"
ROOM_TIMEOUT = 10.0  # seconds an event waits for its chat room
SEND_TIMEOUT_MARGIN = 10.0  # message:send waits for the commit (the store's timeout) and this

P = TypeVar("P")
Answer = AckBody | Failure
EventFn = Callable[["ChatApp", Session, ChatSession, P], Awaitable[Answer]]


class InvalidRequest(Exception):
    """A payload that fits its schema but breaks a limit; ``str()`` says which."""


@dataclass(frozen=True, slots=True)
class Event(Generic[P]):
    """A row of the table: the event's payload schema and the function that answers it."""

    schema: object  # the msgspec type the event's first argument is converted to
    run: EventFn[P]


def register(app: ChatApp) -> None:
    """Register every event of :data:`EVENTS` on the app's namespace, with the common checks."""
    for name, event in EVENTS.items():
        app.ns.on(name, event.schema)(_checked(app, name, event.run))


def _checked(app: ChatApp, name: str, run: EventFn[Any]) -> Handler:
    """``run`` behind the checks every event shares (see the module docstring)."""

    async def handler(session: Session, payload: object, ack: Ack | None) -> None:
        state = session.state
        ident = session.identity
        now = app.clock.now()
        if (
            ident is None
            or not isinstance(state, ChatSession)
            or (ident.expires_at is not None and ident.expires_at <= now)
        ):
            if ack is not None:
                ack(Failure(False, NOT_AUTHENTICATED))
            return
        state.last_activity = now
        body: Answer
        try:
            body = await run(app, session, state, payload)
        except InvalidRequest as err:
            await record(app, "error", session, event=name, error=str(err))
            body = Failure(False, INVALID, error=str(err))
        except StoreError as err:
            log.warning("%s: %s", name, err)
            await record(app, "error", session, event=name)
            body = Failure(
                False, f"Storage unavailable ({err.fault}). Please retry.", error="storage"
            )
        except (AskTimeout, trio.TooSlowError):
            log.warning("%s: an actor did not answer in time", name)
            await record(app, "error", session, event=name)
            body = Failure(False, BUSY)
        except Exception:
            log.exception("chat event %r failed", name)
            await record(app, "error", session, event=name)
            body = Failure(False, INTERNAL)
        if ack is not None:
            ack(body)

    return handler


# --- rooms ----------------------------------------------------------------------------------------
async def join_chat(app: ChatApp, session: Session, state: ChatSession, p: ChatRef) -> Answer:
    out: Outcome[JoinResult] = await app.chats.ask(
        p.chatId, lambda r: JoinChat(session, state.user, r), ROOM_TIMEOUT
    )
    if out.data is None:
        return out.ack()
    state.rooms.add(p.chatId)
    return JoinAck(True, out.message, room_info=out.data.room_info)


async def leave_chat(app: ChatApp, session: Session, state: ChatSession, p: ChatRef) -> Answer:
    out: Outcome[None] = await app.chats.ask(
        p.chatId, lambda r: LeaveChat(session, state.user, r), ROOM_TIMEOUT
    )
    if out.ok:
        state.rooms.discard(p.chatId)
    return out.ack()


async def room_info(app: ChatApp, session: Session, state: ChatSession, p: ChatRef) -> Answer:
    out: Outcome[RoomInfo] = await app.chats.ask(
        p.chatId, lambda r: GetRoomInfo(state.user, r), ROOM_TIMEOUT
    )
    if out.data is None:
        return out.ack()
    return RoomInfoAck(True, out.message, room_info=out.data)


async def room_list(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    records = await app.store.read(db.chats_of(state.user.user_id))
    rooms = [
        RoomListing(
            chat_id=c.chat_id,
            name=c.name,
            description=c.description,
            participant_count=len(c.participants),
            last_activity=iso(c.last_activity),
            joined=c.chat_id in state.rooms,
        )
        for c in records
    ]
    return RoomListAck(True, rooms=rooms)


async def room_online(app: ChatApp, session: Session, state: ChatSession, p: ChatRef) -> Answer:
    out: Outcome[list[RoomMember]] = await app.chats.ask(
        p.chatId, lambda r: GetOnline(state.user, r), ROOM_TIMEOUT
    )
    if out.data is None:
        return out.ack()
    members = out.data
    ids = tuple(m.user_id for m in members)
    presence: dict[str, Presence] = await app.presence.ask(lambda r: StatusesOf(ids, r))
    return RoomOnlineAck(True, online_users=[_online(m, presence.get(m.user_id)) for m in members])


def _online(member: RoomMember, seen: Presence | None) -> OnlineUser:
    return OnlineUser(
        user_id=member.user_id,
        username=member.username,
        status=seen.status if seen is not None else "online",
        last_seen=seen.last_seen if seen is not None else member.connected_at,
        connected_at=member.connected_at,
    )


# --- messages -------------------------------------------------------------------------------------
async def send_message(
    app: ChatApp, session: Session, state: ChatSession, p: SendRequest
) -> Answer:
    """The hot path: the gate, then the room (which commits, broadcasts ``message:new`` once
    to the room, and answers)."""
    limit = app.settings.chat_max_message_chars
    if not p.content.strip():
        raise InvalidRequest("content is empty")
    if len(p.content) > limit:
        raise InvalidRequest(f"content is longer than {limit} characters")
    user = state.user
    allowed: bool = await app.gate.ask(lambda r: Allow("message", user.user_id, r))
    if not allowed:
        await record(app, "rate_limit", session, limit="message")
        return Failure(False, MESSAGE_RATE)
    try:
        out: Outcome[ChatMessage] = await app.chats.ask(
            p.chatId,
            lambda r: SendMessage(user, p.content, p.type, r, p.clientMessageId),
            app.store.write_timeout_seconds + SEND_TIMEOUT_MARGIN,
        )
    except AskTimeout:  # the room had the message: whether it was stored is not known
        out = refusal(OutcomeUnknown("locked", "no answer in time"), p.clientMessageId is not None)
    if out.data is None:
        return Failure(False, out.message, error=out.error) if out.error else out.ack()
    sent = out.data
    session.emit("message:sent", MessageSent(sent.id, sent.chat_id, sent.created_at, sent))
    return SendAck(True, out.message, sent_message=sent)


async def typing(app: ChatApp, session: Session, state: ChatSession, p: TypingRequest) -> Answer:
    user = state.user
    allowed: bool = await app.gate.ask(lambda r: Allow("typing", user.user_id, r))
    if not allowed:
        await record(app, "rate_limit", session, limit="typing")
        return Failure(False, TYPING_RATE)
    out: Outcome[None] = await app.chats.ask(
        p.chatId, lambda r: SetTyping(session.sid, user, p.isTyping, r), ROOM_TIMEOUT
    )
    return out.ack()


async def typing_users(app: ChatApp, session: Session, state: ChatSession, p: ChatRef) -> Answer:
    out: Outcome[list[TypingUser]] = await app.chats.ask(
        p.chatId, lambda r: GetTypingUsers(state.user, r), ROOM_TIMEOUT
    )
    if out.data is None:
        return out.ack()
    return TypingUsersAck(True, out.message, typing_users=out.data)


async def delivered(
    app: ChatApp, session: Session, state: ChatSession, p: ReceiptRequest
) -> Answer:
    return await _confirm(app, state, p, "delivered")


async def read(app: ChatApp, session: Session, state: ChatSession, p: ReceiptRequest) -> Answer:
    return await _confirm(app, state, p, "read")


async def _confirm(
    app: ChatApp, state: ChatSession, p: ReceiptRequest, kind: ReceiptKind
) -> Answer:
    out: Outcome[None] = await app.chats.ask(
        p.chatId, lambda r: ConfirmReceipt(kind, p.messageId, state.user, r), ROOM_TIMEOUT
    )
    return out.ack()


async def delivery_status(
    app: ChatApp, session: Session, state: ChatSession, p: MessageRef
) -> Answer:
    found = await app.store.read(db.delivery_status(p.messageId))
    user = state.user
    if found is None or not (user.is_admin or user.user_id in found.participants):
        return Failure(False, "Message not found or access denied")
    report = DeliveryReport(
        message_id=p.messageId,
        chat_id=found.message.chat_id,
        delivered_to=found.delivered_to,
        read_by=found.read_by,
        sent_at=iso(found.message.created_at),
        last_update=iso(found.last_update),
    )
    return DeliveryStatusAck(True, status=report)


async def message_stats(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    totals = await app.store.read(db.totals)
    typing_now = 0
    for room in list(app.chats.actors.values()):
        try:
            typing_now += await room.ask(CountTyping, timeout=2.0)
        except Exception:  # a room that retired meanwhile has nobody typing
            continue
    stats = MessageStats(
        active_typing_users=typing_now,
        tracked_messages=totals.messages,
        total_delivered=totals.delivered,
        total_read=totals.read,
    )
    return MessageStatsAck(True, stats=stats)


# --- presence -------------------------------------------------------------------------------------
async def update_status(
    app: ChatApp, session: Session, state: ChatSession, p: StatusRequest
) -> Answer:
    user = state.user
    now = app.clock.now()
    previous: PresenceStatus | None = await app.presence.ask(
        lambda r: SetStatus(user.user_id, p.status, now, r)
    )
    if previous is None:  # raced with the disconnect of the user's last socket
        return Failure(False, NOT_AUTHENTICATED)
    if previous != p.status:
        changed = UserStatusChanged(user.user_id, user.username, p.status, previous, iso(now))
        await app.ns.emit("user:status-changed", changed)
    return AckBody(True, "Status updated successfully")


async def online_users(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    users: list[Presence] = await app.presence.ask(OnlineUsers)
    return OnlineUsersAck(True, users=users)


async def user_status(app: ChatApp, session: Session, state: ChatSession, p: UserRef) -> Answer:
    found: PresenceDetail | None = await app.presence.ask(
        lambda r: UserStatus(p.userId, state.user, r)
    )
    if found is None:
        return Failure(False, "User not found")
    return UserStatusAck(True, presence=found)


async def presence_stats(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    stats: PresenceCounts = await app.presence.ask(PresenceStats)
    return PresenceStatsAck(True, stats=stats)


# --- recovery -------------------------------------------------------------------------------------
async def create_session(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    rooms = tuple(sorted(state.rooms))
    user_id = state.user.user_id
    marks = await marks_of(app, rooms)
    token: str = await app.recovery.ask(
        lambda r: CreateSession(user_id, session.sid, rooms, r, marks)
    )
    state.recovery_token = token
    ttl = app.settings.chat_recovery_token_ttl_seconds
    session.emit("connection:recovery-token", RecoveryToken(token, user_id, session.sid, ttl))
    return SessionCreatedAck(True, recovery_token=token)


async def recover(app: ChatApp, session: Session, state: ChatSession, p: RecoverRequest) -> Answer:
    """Re-join the token's chats, then claim the messages committed there meanwhile (up to
    where each re-join began: later ones arrive live)."""
    user = state.user
    token = p.recoveryToken
    rooms: tuple[str, ...] | str = await app.recovery.ask(lambda r: Peek(token, user.user_id, r))
    if isinstance(rooms, str):
        await record(app, "error", session, event="connection:recover")
        return Failure(False, rooms)
    upto: dict[str, int] = {}
    for chat_id in rooms:
        out: Outcome[JoinResult] = await app.chats.ask(
            chat_id, lambda r: JoinChat(session, user, r, quiet=True), ROOM_TIMEOUT
        )
        if out.data is not None:
            state.rooms.add(chat_id)
            upto[chat_id] = out.data.last_seq
    queued: list[ChatMessage] | str = await app.recovery.ask(
        lambda r: Claim(token, user.user_id, session.sid, upto, r)
    )
    if isinstance(queued, str):
        return Failure(False, queued)
    state.recovery_token = token
    info = state.info(session.sid)
    session.emit("connection:recovered", Recovered(info))
    if queued:
        session.emit("connection:queued-messages", QueuedMessages(queued, len(queued)))
    return RecoverAck(
        True, "Connection recovered successfully", session=info, queued_messages=len(queued)
    )


async def session_info(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    await app.presence.tell(Touch(state.user.user_id, state.last_activity))
    return SessionInfoAck(True, session_info=state.info(session.sid))


async def connection_stats(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    stats: RecoveryFigures = await app.recovery.ask(RecoveryStats)
    return ConnectionStatsAck(True, stats=stats)


# --- monitoring -----------------------------------------------------------------------------------
async def metrics(app: ChatApp, session: Session, state: ChatSession, p: Nothing | None) -> Answer:
    figures: ConnectionMetrics = await app.monitor.ask(GetMetrics)
    return MetricsAck(True, metrics=figures)


async def events(
    app: ChatApp, session: Session, state: ChatSession, p: EventsRequest | None
) -> Answer:
    p = p or EventsRequest()
    wanted = EventFilter(p.limit, p.type, p.userId, p.ip)
    found: list[LoggedEvent] = await app.monitor.ask(lambda r: GetEvents(wanted, state.user, r))
    return EventsAck(True, events=found)


async def monitoring_stats(
    app: ChatApp, session: Session, state: ChatSession, p: Nothing | None
) -> Answer:
    stats: MonitorStats = await app.monitor.ask(lambda r: GetStats(state.user, r))
    return MonitorStatsAck(True, stats=stats)


async def health(app: ChatApp, session: Session, state: ChatSession, p: Nothing | None) -> Answer:
    figures = runtime_figures(app)
    report: HealthReport = await app.monitor.ask(lambda r: GetHealth(figures, r))
    return HealthAck(True, health=report)


def runtime_figures(app: ChatApp) -> RuntimeFigures:
    """Sample the runtime: slow-consumer disconnects and the fullest mailbox."""
    actors: list[tuple[str, Actor]] = [
        ("store", app.store),
        ("presence", app.presence),
        ("recovery", app.recovery),
        ("chat-gate", app.gate),
        ("chat-monitor", app.monitor),
    ]
    actors += [(f"chat-room {cid}", a) for cid, a in list(app.chats.actors.items())]
    actors += [(f"room {name}", a) for name, a in list(app.ns.rooms.registry.actors.items())]
    worst = ("none", 0, 0)
    worst_fill = 0.0
    for name, actor in actors:
        depth, capacity = actor.mailbox_depth, actor.mailbox_capacity
        fill = depth / capacity if capacity else 0.0
        if fill > worst_fill:
            worst, worst_fill = (name, depth, capacity), fill
    return RuntimeFigures(
        slow_consumer_disconnects=app.runtime.engine.stats.slow_consumers,
        deepest_mailbox=worst[0],
        mailbox_depth=worst[1],
        mailbox_capacity=worst[2],
        handler_errors=app.runtime.sio.stats.handler_errors,
        storage_status=app.store.health.state,
        storage_fault=app.store.health.fault,
        storage_last_error=app.store.health.last_error,
        node_id=app.runtime.cluster.config.node_id if app.runtime.cluster is not None else "",
    )


# --- the table ------------------------------------------------------------------------------------
NONE = Nothing | None  # events without arguments take {} or nothing

EVENTS: dict[str, Event[Any]] = {
    "join:chat": Event(ChatRef, join_chat),
    "leave:chat": Event(ChatRef, leave_chat),
    "room:info": Event(ChatRef, room_info),
    "room:list": Event(NONE, room_list),
    "room:online": Event(ChatRef, room_online),
    "message:send": Event(SendRequest, send_message),
    "message:typing": Event(TypingRequest, typing),
    "message:typing-users": Event(ChatRef, typing_users),
    "message:delivered": Event(ReceiptRequest, delivered),
    "message:read": Event(ReceiptRequest, read),
    "message:delivery-status": Event(MessageRef, delivery_status),
    "message:stats": Event(NONE, message_stats),
    "presence:update-status": Event(StatusRequest, update_status),
    "presence:online-users": Event(NONE, online_users),
    "presence:user-status": Event(UserRef, user_status),
    "presence:stats": Event(NONE, presence_stats),
    "connection:create-session": Event(NONE, create_session),
    "connection:recover": Event(RecoverRequest, recover),
    "connection:session-info": Event(NONE, session_info),
    "connection:stats": Event(NONE, connection_stats),
    "monitoring:metrics": Event(NONE, metrics),
    "monitoring:events": Event(EventsRequest | None, events),
    "monitoring:stats": Event(NONE, monitoring_stats),
    "monitoring:health": Event(NONE, health),
}
