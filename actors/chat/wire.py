"""What the chat actors put on the wire, as msgspec Structs: messages, chat and room summaries,
the room's events, and the answers of presence, recovery, the gate and monitoring.

Fields are snake_case in Python and camelCase on the wire; every time stamp is an ISO 8601
string (:func:`actors.chat.model.iso`). One message's :class:`ChatMessage` is shared by its
broadcast, its ack and the recovery queues: nobody changes a Struct once it is built.
"""

from __future__ import annotations

from typing import Literal

import msgspec

PresenceStatus = Literal["online", "away", "busy", "offline"]
Health = Literal["healthy", "warning", "critical"]
EventType = Literal["connect", "disconnect", "error", "rate_limit", "auth_failure"]


class Wire(msgspec.Struct, rename="camel"):
    """Base of the chat's wire Structs (camelCase keys)."""


class AckBody(Wire, omit_defaults=True):
    """An ack: ``{success, message?}``; an empty ``message`` is left out. Acks that carry more
    subclass it (their fields come after these two)."""

    success: bool
    message: str = ""


# --- messages and chats ---------------------------------------------------------------------------
class Author(Wire):
    id: str
    username: str


class ChatMessage(Wire):
    """A stored message: ``message:new``, ``sentMessage``, history and recovery queues."""

    id: str
    content: str
    type: str
    chat_id: str
    user_id: str
    created_at: str
    user: Author


class ChatSummary(Wire):
    """A chat as ``POST /api/chats`` and ``GET /api/chats`` describe it."""

    chat_id: str
    name: str
    description: str
    participants: list[str]
    participant_count: int
    created_by: str
    created_at: str
    last_activity: str


# --- the room -------------------------------------------------------------------------------------
class JoinedRoom(Wire):
    """The ``roomInfo`` of ``join:chat`` and ``room:joined``."""

    chat_id: str
    participant_count: int
    is_active: bool
    last_activity: str


class RoomInfo(Wire):
    """The ``roomInfo`` of ``room:info`` (the answer and the broadcast)."""

    chat_id: str
    name: str
    description: str
    participant_count: int
    online_count: int
    is_active: bool
    last_activity: str


class RoomMember(Wire):
    """A user with a socket in the room (``room:online-update``)."""

    user_id: str
    username: str
    connected_at: str


class TypingUser(Wire):
    user_id: str
    username: str
    chat_id: str
    started_at: str


class UserJoined(Wire):
    """``user:joined``."""

    chat_id: str
    user_id: str
    username: str
    joined_at: str


class UserLeft(Wire):
    """``user:left``."""

    chat_id: str
    user_id: str
    username: str
    left_at: str


class RoomJoined(Wire):
    """``room:joined``, to the joining socket."""

    chat_id: str
    room_info: JoinedRoom


class RoomLeft(Wire):
    """``room:left``, to the leaving socket."""

    chat_id: str


class RoomOnlineUpdate(Wire):
    """``room:online-update``."""

    chat_id: str
    online_users: list[RoomMember]
    online_count: int


class RoomInfoUpdate(Wire):
    """``room:info`` broadcast to the room when who is in it changes."""

    chat_id: str
    room_info: RoomInfo


class UserTyping(Wire):
    """``user:typing``."""

    chat_id: str
    user_id: str
    username: str
    is_typing: bool
    timestamp: str


class MessageDelivered(Wire):
    """``message:delivered``."""

    message_id: str
    chat_id: str
    user_id: str
    username: str
    delivered_at: str


class MessageRead(Wire):
    """``message:read``."""

    message_id: str
    chat_id: str
    user_id: str
    username: str
    read_at: str


# --- presence -------------------------------------------------------------------------------------
class Presence(Wire):
    """A user's presence (``presence:online-users``, ``users:online``)."""

    user_id: str
    username: str
    status: PresenceStatus
    last_seen: str
    connected_at: str | None


class PresenceDetail(Wire):
    """``presence:user-status``: the presence, and the user's latest socket."""

    user_id: str
    username: str
    status: PresenceStatus
    last_seen: str
    connected_at: str | None
    email: None  # tokens carry no e-mail address
    socket_id: str | None
    socket_count: int
    user_agent: str | None
    ip_address: str | None


class PresenceCounts(Wire):
    total_users: int
    online_users: int
    away_users: int
    busy_users: int
    offline_users: int


# --- recovery and the gate ------------------------------------------------------------------------
class RecoveryFigures(Wire):
    active_sessions: int
    recovery_tokens: int
    queued_messages: int
    average_session_age: float  # minutes
    recovered: int
    expired: int


class GateFigures(Wire):
    messages_refused: int
    typing_refused: int
    handshakes_refused: int
    blocked_addresses: int


# --- monitoring -----------------------------------------------------------------------------------
class LoggedEvent(Wire):
    """An entry of the connection event log (``ipAddress`` null when the viewer may not see it)."""

    type: EventType
    socket_id: str | None
    user_id: str | None
    ip_address: str | None
    user_agent: str
    timestamp: str
    details: dict[str, str]


class ConnectionMetrics(Wire):
    total_connections: int
    active_connections: int
    failed_connections: int
    average_connection_duration: int  # milliseconds
    peak_connections: int
    connections_per_minute: int
    last_reset: str


class AddressCount(Wire):
    ip: str
    count: int


class AgentCount(Wire):
    user_agent: str
    count: int


class MonitorStats(Wire):
    metrics: ConnectionMetrics
    recent_events: list[LoggedEvent]
    top_ips: list[AddressCount] = msgspec.field(name="topIPs")
    top_user_agents: list[AgentCount]
    error_rate: float


class HealthFigures(Wire):
    error_rate: float
    slow_consumer_disconnects: int
    deepest_mailbox: str
    mailbox_depth: int
    mailbox_capacity: int
    active_connections: int
    storage_status: str = "ok"  # ok, degraded or failed (as /health's storage)
    storage_fault: str | None = None
    node_id: str = ""  # on a cluster: the node these figures are of (monitoring is per node)


class HealthReport(Wire):
    status: Health
    issues: list[str]
    recommendations: list[str]
    figures: HealthFigures
