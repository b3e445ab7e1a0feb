"""Shared vocabulary of the chat actors: wire time stamps, records, and the emitter seam."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, Protocol, TypeVar

from actors.chat.wire import AckBody, Author, ChatMessage, ChatSummary
from actors.sockets.rooms import Rooms

T = TypeVar("T")

MessageType = Literal["text", "image", "file", "system"]
Status = Literal["online", "away", "busy"]
ReceiptKind = Literal["delivered", "read"]


def iso(epoch_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (the wire format of every stamp)."""
    stamp = datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def room_name(chat_id: str) -> str:
    """The Socket.IO room that carries one chat's broadcasts."""
    return f"chat:{chat_id}"


class Emitter(Protocol):
    """What chat actors need from their namespace (``web.sockets.namespace.Namespace`` fits)."""

    async def emit(
        self,
        event: str,
        *args: object,
        to: str | Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        volatile: bool = False,
    ) -> None: ...

    async def emit_here(
        self, event: str, *args: object, to: str | Iterable[str] | None = None
    ) -> None: ...

    @property
    def rooms(self) -> Rooms: ...


@dataclass(frozen=True, slots=True)
class User:
    """Who is acting (taken from the session's verified identity)."""

    user_id: str
    username: str
    is_admin: bool = False

    def sees_ip_of(self, user_id: str | None) -> bool:
        """IP addresses are personal data: only admins see other users'."""
        return self.is_admin or user_id == self.user_id


@dataclass(frozen=True, slots=True)
class ChatRecord:
    chat_id: str
    name: str
    description: str
    created_by: str
    created_at: float
    last_activity: float
    participants: frozenset[str]

    def allows(self, user: User) -> bool:
        return user.is_admin or user.user_id in self.participants

    def summary(self) -> ChatSummary:
        return ChatSummary(
            chat_id=self.chat_id,
            name=self.name,
            description=self.description,
            participants=sorted(self.participants),
            participant_count=len(self.participants),
            created_by=self.created_by,
            created_at=iso(self.created_at),
            last_activity=iso(self.last_activity),
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    seq: int
    message_id: str
    chat_id: str
    user_id: str
    username: str
    content: str
    type: str
    created_at: float

    def wire(self) -> ChatMessage:
        return ChatMessage(
            id=self.message_id,
            content=self.content,
            type=self.type,
            chat_id=self.chat_id,
            user_id=self.user_id,
            created_at=iso(self.created_at),
            user=Author(self.user_id, self.username),
        )


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """An actor's answer to a request from a client: success or a refusal (``message``), and
    what a success found (``data``, None when refused)."""

    ok: bool
    message: str = ""
    data: T | None = None
    error: str = ""  # why a refusal happened, for the client's code (e.g. ``not_stored``)

    def ack(self) -> AckBody:
        """The plain ack ``{success, message?}``; acks with more fields extend it."""
        return AckBody(self.ok, self.message)


NOT_FOUND = "Chat not found or access denied"
