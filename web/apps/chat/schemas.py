"""The chat's shapes at its doors: the event and REST payloads it accepts, and the acks, events
and REST bodies it sends. (What the actors produce, messages, rooms, presence and monitoring
figures, is in :mod:`actors.chat.wire`; the acks here carry it.)"""

from __future__ import annotations

from typing import Annotated

import msgspec

from actors.chat.model import MessageType, Status
from actors.chat.wire import (
    AckBody,
    ChatMessage,
    ChatSummary,
    ConnectionMetrics,
    EventType,
    HealthReport,
    JoinedRoom,
    LoggedEvent,
    MonitorStats,
    Presence,
    PresenceCounts,
    PresenceDetail,
    PresenceStatus,
    RecoveryFigures,
    RoomInfo,
    TypingUser,
    Wire,
)

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

# the refusals both doors send
NOT_AUTHENTICATED = "User not authenticated"
INVALID = "Invalid request data"


# --- incoming: event payloads ---------------------------------------------------------------------
class ChatRef(msgspec.Struct):
    chatId: Id


class SendRequest(msgspec.Struct):
    chatId: Id
    content: str
    type: MessageType = "text"
    # the sender's own id for this message: a send retried with it is stored once, and
    # answered with the message stored the first time
    clientMessageId: Id | None = None


class TypingRequest(msgspec.Struct):
    chatId: Id
    isTyping: bool


class ReceiptRequest(msgspec.Struct):
    messageId: Id
    chatId: Id


class MessageRef(msgspec.Struct):
    messageId: Id


class StatusRequest(msgspec.Struct):
    status: Status


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


# --- incoming: REST -------------------------------------------------------------------------------
class CreateChatRequest(msgspec.Struct):
    """A new chat; the caller is a participant whether listed or not."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    participants: Annotated[list[Id], msgspec.Meta(max_length=1000)] = []


class HistoryQuery(msgspec.Struct):
    """The query of ``GET /api/chats/<chatId>/messages``."""

    before: Annotated[
        str | None, msgspec.Meta(description="A message id of this chat: the page ends before it.")
    ] = None
    limit: Annotated[
        str | None,
        msgspec.Meta(description="Messages per page: 1 to chat_history_page_max (default 50)."),
    ] = None


# --- outgoing: the per-socket session -------------------------------------------------------------
class SessionInfo(Wire):
    """A socket's session (``connection:session-info``, ``connection:recover``)."""

    user_id: str
    socket_id: str
    connected_at: str
    last_activity: str
    rooms: list[str]
    message_queue: list[ChatMessage]  # always empty: queued messages arrive in their own event
    recovery_token: str | None


# --- outgoing: events -----------------------------------------------------------------------------
class MessageSent(Wire):
    """``message:sent``, to the sending socket, once the message is committed."""

    message_id: str
    chat_id: str
    sent_at: str
    message: ChatMessage


class UserOnline(Wire):
    """``user:online``: a user's first socket connected."""

    user_id: str
    username: str
    status: PresenceStatus
    timestamp: str


class UserOffline(Wire):
    """``user:offline``: a user's last socket left."""

    user_id: str
    username: str
    status: PresenceStatus
    last_seen: str
    timestamp: str


class UsersOnline(Wire):
    """``users:online``: the online users list, whenever someone comes or goes."""

    users: list[Presence]
    count: int
    timestamp: str


class UserStatusChanged(Wire):
    """``user:status-changed``."""

    user_id: str
    username: str
    status: Status
    previous_status: PresenceStatus
    timestamp: str


class RecoveryToken(Wire):
    """``connection:recovery-token``."""

    recovery_token: str
    user_id: str
    socket_id: str
    expires_in_seconds: float


class Recovered(Wire):
    """``connection:recovered``."""

    session: SessionInfo


class QueuedMessages(Wire):
    """``connection:queued-messages``: what was committed in the chats while away, in order."""

    messages: list[ChatMessage]
    count: int


# --- outgoing: acks (``{success, message?}`` and their fields) ------------------------------------
class RoomListing(Wire):
    chat_id: str
    name: str
    description: str
    participant_count: int
    last_activity: str
    joined: bool


class OnlineUser(Wire):
    """A user in a room, with their presence."""

    user_id: str
    username: str
    status: PresenceStatus
    last_seen: str
    connected_at: str


class DeliveryReport(Wire):
    message_id: str
    chat_id: str
    delivered_to: list[str]
    read_by: list[str]
    sent_at: str
    last_update: str


class MessageStats(Wire):
    active_typing_users: int
    tracked_messages: int
    total_delivered: int
    total_read: int


class JoinAck(AckBody, kw_only=True):
    room_info: JoinedRoom


class RoomInfoAck(AckBody, kw_only=True):
    room_info: RoomInfo


class RoomListAck(AckBody, kw_only=True):
    rooms: list[RoomListing]


class RoomOnlineAck(AckBody, kw_only=True):
    online_users: list[OnlineUser]


class SendAck(AckBody, kw_only=True):
    sent_message: ChatMessage


class TypingUsersAck(AckBody, kw_only=True):
    typing_users: list[TypingUser]


class DeliveryStatusAck(AckBody, kw_only=True):
    status: DeliveryReport


class MessageStatsAck(AckBody, kw_only=True):
    stats: MessageStats


class OnlineUsersAck(AckBody, kw_only=True):
    users: list[Presence]


class UserStatusAck(AckBody, kw_only=True):
    presence: PresenceDetail


class PresenceStatsAck(AckBody, kw_only=True):
    stats: PresenceCounts


class SessionCreatedAck(AckBody, kw_only=True):
    recovery_token: str


class RecoverAck(AckBody, kw_only=True):
    session: SessionInfo
    queued_messages: int


class SessionInfoAck(AckBody, kw_only=True):
    session_info: SessionInfo


class ConnectionStatsAck(AckBody, kw_only=True):
    stats: RecoveryFigures


class MetricsAck(AckBody, kw_only=True):
    metrics: ConnectionMetrics


class EventsAck(AckBody, kw_only=True):
    events: list[LoggedEvent]


class MonitorStatsAck(AckBody, kw_only=True):
    stats: MonitorStats


class HealthAck(AckBody, kw_only=True):
    health: HealthReport


# --- outgoing: REST -------------------------------------------------------------------------------
class ChatCreated(Wire):
    """201: the chat is stored."""

    success: bool
    message: str
    chat: ChatSummary


class ChatList(Wire):
    """The caller's chats, the most recently active first."""

    success: bool
    message: str
    chats: list[ChatSummary]


class MessagePage(Wire):
    """One page of a chat's messages, newest first; ``nextBefore`` asks for the next page."""

    success: bool
    message: str
    messages: list[ChatMessage]
    has_more: bool
    next_before: str | None
