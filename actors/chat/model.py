"""Shared vocabulary of the chat actors: wire time stamps, records, and the emitter seam."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from actors.sockets.rooms import Rooms

MessageType = Literal["text", "image", "file", "system"]
Status = Literal["online", "away", "busy"]


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
        *args: Any,
        to: str | Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        volatile: bool = False,
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

    def summary(self) -> dict[str, Any]:
        return {
            "chatId": self.chat_id,
            "name": self.name,
            "description": self.description,
            "participants": sorted(self.participants),
            "participantCount": len(self.participants),
            "createdBy": self.created_by,
            "createdAt": iso(self.created_at),
            "lastActivity": iso(self.last_activity),
        }


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

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "content": self.content,
            "type": self.type,
            "chatId": self.chat_id,
            "userId": self.user_id,
            "createdAt": iso(self.created_at),
            "user": {"id": self.user_id, "username": self.username},
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """An actor's answer to a request from a client: an ack body, ready to send."""

    ok: bool
    message: str = ""
    data: Any = None

    def ack(self, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"success": self.ok}
        if self.message:
            body["message"] = self.message
        body.update(extra)
        return body


NOT_FOUND = "Chat not found or access denied"
