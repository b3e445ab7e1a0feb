"""One actor per chat: access, who is in the room, typing, messages and receipts.

The room is the single writer of its chat's live state and the only one that broadcasts its
events, so the order clients see is the order the room decided. A message is persisted through the
Store (group commit) and only then broadcast as ``message:new`` and answered: what anybody has
seen or been acknowledged is committed. Broadcasts go through the namespace's rooms (encoded once,
offered to every member's outbox without waiting for any of them).

Typing state expires on its own (``typing_expiry_seconds`` on the service clock, so tests advance
it) and is cleared when the user sends or leaves.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from actors.chat import db
from actors.chat.model import (
    NOT_FOUND,
    ChatRecord,
    Emitter,
    Outcome,
    StoredMessage,
    User,
    iso,
    room_name,
)
from actors.clock import Clock
from actors.runtime import Actor, ActorStopped, Reply
from actors.sockets.session import Session
from actors.store import Store, Write


# --- messages -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JoinChat:
    session: Session
    user: User
    reply: Reply[Outcome]
    quiet: bool = False  # recovery re-joins: no room:joined echo


@dataclass(frozen=True, slots=True)
class LeaveChat:
    session: Session
    user: User
    reply: Reply[Outcome] | None = None
    disconnected: bool = False


@dataclass(frozen=True, slots=True)
class SendMessage:
    user: User
    content: str
    type: str
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class SetTyping:
    sid: str
    user: User
    is_typing: bool
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class GetTypingUsers:
    user: User
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class ConfirmReceipt:
    kind: str  # "delivered" | "read"
    message_id: str
    user: User
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class GetRoomInfo:
    user: User
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class GetOnline:
    user: User
    reply: Reply[Outcome]


@dataclass(frozen=True, slots=True)
class CountTyping:
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class ExpireTyping:
    user_id: str
    token: int


@dataclass(frozen=True, slots=True)
class Persisted:
    """From the room's committer task to the room: a message's write has finished."""

    request: SendMessage
    stored: StoredMessage | None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class JoinResult:
    room_info: dict[str, Any]
    last_seq: int  # every message up to this one was broadcast before the join


@dataclass(frozen=True, slots=True)
class Committed:
    """Told to the recovery actor after each message is committed and broadcast."""

    chat_id: str
    seq: int
    message: dict[str, Any]


# --- state ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Member:
    user: User
    joined_at: float


@dataclass(slots=True)
class Typist:
    username: str
    started_at: float
    token: int


@dataclass
class RoomConfig:
    typing_expiry_seconds: float = 5.0
    idle_seconds: float = 30.0
    mailbox_size: int = 256


class ChatRoomActor(Actor):
    kind = "chat-room"

    def __init__(
        self,
        chat_id: str,
        *,
        store: Store,
        emitter: Emitter,
        clock: Clock,
        on_commit: Callable[[Committed], Awaitable[None]],
        config: RoomConfig | None = None,
    ) -> None:
        self.config = config or RoomConfig()
        super().__init__(mailbox_size=self.config.mailbox_size)
        self.idle_seconds = self.config.idle_seconds  # type: ignore[misc]  # per instance
        self.chat_id = chat_id
        self.store = store
        self.emitter = emitter
        self.clock = clock
        self.on_commit = on_commit
        self.room = room_name(chat_id)
        self.chat: ChatRecord | None = None
        self.loaded = False
        self.last_seq = 0
        self.last_activity = 0.0
        self.members: dict[str, Member] = {}
        self.typing: dict[str, Typist] = {}
        self._token = 0
        self._nursery: trio.Nursery | None = None
        self._writes: trio.MemorySendChannel[tuple[SendMessage, Reply[StoredMessage]]] | None
        self._writes = None
        self.in_flight = 0  # messages handed to the Store and not broadcast yet
        self.messages_sent = 0

    # --- life ------------------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # unbounded: each client has at most one message:send waiting for its answer
            send, receive = trio.open_memory_channel[tuple[SendMessage, Reply[StoredMessage]]](
                math.inf
            )
            self._writes = send
            self.in_flight = 0
            nursery.start_soon(self._committer, receive)
            for user_id, typist in self.typing.items():  # after a restart: re-arm the timers
                self._arm(user_id, typist.token, self.config.typing_expiry_seconds)
            try:
                await super().run()
            finally:
                nursery.cancel_scope.cancel()

    async def idle(self) -> bool:
        return not self.members and not self.typing and not self.in_flight

    async def _committer(
        self, receive: trio.MemoryReceiveChannel[tuple[SendMessage, Reply[StoredMessage]]]
    ) -> None:
        """Wait for each write in the order they were handed to the Store (which commits them in
        that order) and hand the result back to the room, which broadcasts it. The room keeps
        taking messages meanwhile, so one room's writes share group commits."""
        async for request, reply in receive:
            try:
                stored: StoredMessage | None = await reply.wait()
                error: BaseException | None = None
            except Exception as exc:
                stored, error = None, exc
            await self.tell(Persisted(request, stored, error))

    async def _load(self) -> ChatRecord | None:
        if not self.loaded:
            chat_id = self.chat_id
            self.chat = await self.store.read(db.load_chat(chat_id))
            if self.chat is None:
                self.idle_seconds = min(self.idle_seconds, 1.0)  # type: ignore[misc]
            else:
                self.last_activity = self.chat.last_activity
                self.last_seq = await self.store.read(
                    lambda c: c.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM chat_messages WHERE chat_id = ?",
                        (chat_id,),
                    ).fetchone()[0]
                )
            self.loaded = True
        return self.chat

    async def _access(self, user: User) -> ChatRecord | None:
        chat = await self._load()
        if chat is None or not chat.allows(user):
            return None
        return chat

    # --- figures ---------------------------------------------------------------------------------
    def online_users(self) -> dict[str, Member]:
        """Distinct users with a socket in the room (earliest join per user)."""
        users: dict[str, Member] = {}
        for member in self.members.values():
            seen = users.get(member.user.user_id)
            if seen is None or member.joined_at < seen.joined_at:
                users[member.user.user_id] = member
        return users

    def room_info(self, chat: ChatRecord, *, full: bool) -> dict[str, Any]:
        online = len(self.online_users())
        info: dict[str, Any] = {"chatId": chat.chat_id}
        if full:
            info["name"] = chat.name
            info["description"] = chat.description
        info["participantCount"] = len(chat.participants)
        if full:
            info["onlineCount"] = online
        info["isActive"] = online > 0
        info["lastActivity"] = iso(self.last_activity)
        return info

    def _online_list(self) -> list[dict[str, Any]]:
        return [
            {"userId": m.user.user_id, "username": m.user.username, "connectedAt": iso(m.joined_at)}
            for m in sorted(self.online_users().values(), key=lambda m: m.joined_at)
        ]

    async def _online_update(self) -> None:
        """Who is in the room changed: ``room:online-update`` and the seed's ``room:info``
        ("room information updated", with the ``roomInfo`` of the ``room:info`` answer)."""
        users = self._online_list()
        await self.emitter.emit(
            "room:online-update",
            {"chatId": self.chat_id, "onlineUsers": users, "onlineCount": len(users)},
            to=self.room,
        )
        if self.chat is not None:
            info = self.room_info(self.chat, full=True)
            await self.emitter.emit(
                "room:info", {"chatId": self.chat_id, "roomInfo": info}, to=self.room
            )

    # --- typing ----------------------------------------------------------------------------------
    def _arm(self, user_id: str, token: int, delay: float) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._expire_later, user_id, token, delay)

    async def _expire_later(self, user_id: str, token: int, delay: float) -> None:
        await self.clock.sleep(delay)
        try:
            await self.tell(ExpireTyping(user_id, token))
        except ActorStopped:
            pass

    async def _stop_typing(self, user: User | str, username: str = "") -> None:
        user_id = user.user_id if isinstance(user, User) else user
        typist = self.typing.pop(user_id, None)
        if typist is not None:
            await self.emitter.emit(
                "user:typing",
                {
                    "chatId": self.chat_id,
                    "userId": user_id,
                    "username": typist.username,
                    "isTyping": False,
                    "timestamp": iso(self.clock.now()),
                },
                to=self.room,
            )

    # --- handling --------------------------------------------------------------------------------
    async def handle(self, message: object) -> None:
        kind = type(message)
        if kind is SendMessage:
            assert isinstance(message, SendMessage)
            await self._send(message)
        elif kind is Persisted:
            assert isinstance(message, Persisted)
            await self._persisted(message)
        elif kind is SetTyping:
            assert isinstance(message, SetTyping)
            await self._typing(message)
        elif kind is ExpireTyping:
            assert isinstance(message, ExpireTyping)
            typist = self.typing.get(message.user_id)
            if typist is not None and typist.token == message.token:
                await self._stop_typing(message.user_id)
        elif kind is JoinChat:
            assert isinstance(message, JoinChat)
            await self._join(message)
        elif kind is LeaveChat:
            assert isinstance(message, LeaveChat)
            await self._leave(message)
        elif kind is ConfirmReceipt:
            assert isinstance(message, ConfirmReceipt)
            await self._receipt(message)
        elif kind is GetTypingUsers:
            assert isinstance(message, GetTypingUsers)
            if await self._access(message.user) is None:
                message.reply.send(Outcome(False, NOT_FOUND))
                return
            users = [
                {
                    "userId": user_id,
                    "username": t.username,
                    "chatId": self.chat_id,
                    "startedAt": iso(t.started_at),
                }
                for user_id, t in self.typing.items()
            ]
            message.reply.send(Outcome(True, data=users))
        elif kind is GetRoomInfo:
            assert isinstance(message, GetRoomInfo)
            chat = await self._access(message.user)
            if chat is None:
                message.reply.send(Outcome(False, NOT_FOUND))
            else:
                message.reply.send(Outcome(True, data=self.room_info(chat, full=True)))
        elif kind is GetOnline:
            assert isinstance(message, GetOnline)
            if await self._access(message.user) is None:
                message.reply.send(Outcome(False, NOT_FOUND))
            else:
                message.reply.send(Outcome(True, data=self._online_list()))
        elif kind is CountTyping:
            assert isinstance(message, CountTyping)
            message.reply.send(len(self.typing))
        else:
            raise TypeError(f"chat room got an unknown message {message!r}")

    async def _join(self, message: JoinChat) -> None:
        chat = await self._access(message.user)
        if chat is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        session, user = message.session, message.user
        now = self.clock.now()
        first_of_user = user.user_id not in self.online_users()
        already = session.sid in self.members
        if not already:
            await self.emitter.rooms.join(session, self.room)
            self.members[session.sid] = Member(user, now)
        info = self.room_info(chat, full=False)
        if first_of_user:
            await self.emitter.emit(
                "user:joined",
                {
                    "chatId": self.chat_id,
                    "userId": user.user_id,
                    "username": user.username,
                    "joinedAt": iso(now),
                },
                to=self.room,
                exclude=[session.sid],
            )
        if not message.quiet:
            session.emit("room:joined", {"chatId": self.chat_id, "roomInfo": info})
        if first_of_user:
            await self._online_update()
        message.reply.send(
            Outcome(True, "Joined chat successfully", JoinResult(info, self.last_seq))
        )

    async def _leave(self, message: LeaveChat) -> None:
        session, user = message.session, message.user
        member = self.members.pop(session.sid, None)
        if member is None:
            if message.reply is not None:
                chat = await self._access(user)
                if chat is None:
                    message.reply.send(Outcome(False, NOT_FOUND))
                else:  # not in the room: leaving is idempotent
                    session.emit("room:left", {"chatId": self.chat_id})
                    message.reply.send(Outcome(True, "Left chat successfully"))
            return
        if not message.disconnected:
            await self.emitter.rooms.leave(session, self.room)
        still_here = user.user_id in self.online_users()
        if not still_here:
            await self._stop_typing(user)
            await self.emitter.emit(
                "user:left",
                {
                    "chatId": self.chat_id,
                    "userId": user.user_id,
                    "username": user.username,
                    "leftAt": iso(self.clock.now()),
                },
                to=self.room,
            )
        if not message.disconnected:
            session.emit("room:left", {"chatId": self.chat_id})
        if not still_here:
            await self._online_update()
        if message.reply is not None:
            message.reply.send(Outcome(True, "Left chat successfully"))

    async def _send(self, message: SendMessage) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        op = db.insert_message(
            str(uuid.uuid4()),
            self.chat_id,
            user.user_id,
            user.username,
            message.content,
            message.type,
            now,
        )
        reply: Reply[StoredMessage] = Reply()
        await self.store.tell(Write(op, reply))
        assert self._writes is not None
        self._writes.send_nowait((message, reply))
        self.in_flight += 1

    async def _persisted(self, done: Persisted) -> None:
        self.in_flight -= 1
        request, stored = done.request, done.stored
        if stored is None:  # not committed: the sender is told, nobody else hears of it
            request.reply.fail(done.error or RuntimeError("message not stored"))
            return
        self.last_seq = stored.seq
        self.last_activity = stored.created_at
        self.messages_sent += 1
        await self._stop_typing(request.user)
        wire = stored.wire()
        await self.emitter.emit("message:new", wire, to=self.room)
        request.reply.send(Outcome(True, "Message sent successfully", wire))
        await self.on_commit(Committed(self.chat_id, stored.seq, wire))

    async def _typing(self, message: SetTyping) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        if message.is_typing:
            self._token += 1
            typist = self.typing.get(user.user_id)
            fresh = typist is None
            started = now if typist is None else typist.started_at
            self.typing[user.user_id] = Typist(user.username, started, self._token)
            self._arm(user.user_id, self._token, self.config.typing_expiry_seconds)
            if fresh:
                await self.emitter.emit(
                    "user:typing",
                    {
                        "chatId": self.chat_id,
                        "userId": user.user_id,
                        "username": user.username,
                        "isTyping": True,
                        "timestamp": iso(now),
                    },
                    to=self.room,
                    exclude=[message.sid],
                )
        else:
            await self._stop_typing(user)
        message.reply.send(Outcome(True, "Typing status updated"))

    async def _receipt(self, message: ConfirmReceipt) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        result = await self.store.write(
            db.record_receipt(message.message_id, self.chat_id, user.user_id, message.kind, now)
        )
        if not result.found:
            message.reply.send(Outcome(False, "Message not found"))
            return
        if result.recorded:
            stamp = "deliveredAt" if message.kind == "delivered" else "readAt"
            await self.emitter.emit(
                f"message:{message.kind}",
                {
                    "messageId": message.message_id,
                    "chatId": self.chat_id,
                    "userId": user.user_id,
                    "username": user.username,
                    stamp: iso(now),
                },
                to=self.room,
            )
        text = "Delivery confirmed" if message.kind == "delivered" else "Read confirmation recorded"
        message.reply.send(Outcome(True, text))
