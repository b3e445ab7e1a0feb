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

import trio

from actors.chat import db
from actors.chat.model import (
    NOT_FOUND,
    ChatRecord,
    Emitter,
    MessageType,
    Outcome,
    ReceiptKind,
    User,
    iso,
    room_name,
)
from actors.chat.wire import (
    ChatMessage,
    JoinedRoom,
    MessageDelivered,
    MessageRead,
    RoomInfo,
    RoomInfoUpdate,
    RoomJoined,
    RoomLeft,
    RoomMember,
    RoomOnlineUpdate,
    TypingUser,
    UserJoined,
    UserLeft,
    UserTyping,
)
from actors.clock import Clock
from actors.runtime import Actor, ActorStopped, Reply, handles
from actors.sockets.rooms import RoomLimitReached
from actors.sockets.session import Session
from actors.store import ANSWER_GRACE_SECONDS, Store
from actors.store.faults import OutcomeUnknown, StoreError


# --- messages -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JoinChat:
    session: Session
    user: User
    reply: Reply[Outcome[JoinResult]]
    quiet: bool = False  # recovery re-joins: no room:joined echo


@dataclass(frozen=True, slots=True)
class LeaveChat:
    session: Session
    user: User
    reply: Reply[Outcome[None]] | None = None
    disconnected: bool = False


@dataclass(frozen=True, slots=True)
class SendMessage:
    user: User
    content: str
    type: MessageType
    reply: Reply[Outcome[ChatMessage]]
    client_id: str | None = None  # the sender's clientMessageId: a retry is stored once


@dataclass(frozen=True, slots=True)
class SetTyping:
    sid: str
    user: User
    is_typing: bool
    reply: Reply[Outcome[None]]


@dataclass(frozen=True, slots=True)
class GetTypingUsers:
    user: User
    reply: Reply[Outcome[list[TypingUser]]]


@dataclass(frozen=True, slots=True)
class ConfirmReceipt:
    kind: ReceiptKind
    message_id: str
    user: User
    reply: Reply[Outcome[None]]


@dataclass(frozen=True, slots=True)
class GetRoomInfo:
    user: User
    reply: Reply[Outcome[RoomInfo]]


@dataclass(frozen=True, slots=True)
class GetOnline:
    user: User
    reply: Reply[Outcome[list[RoomMember]]]


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
    stored: db.Inserted | None
    error: BaseException | None = None
    message_id: str = ""  # the id the room gave the message


@dataclass(frozen=True, slots=True)
class JoinResult:
    room_info: JoinedRoom
    last_seq: int  # every message up to this one was broadcast before the join


@dataclass(frozen=True, slots=True)
class Committed:
    """Told to the recovery actor after each message is committed and broadcast."""

    chat_id: str
    seq: int
    message: ChatMessage


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
        self._writes: trio.MemorySendChannel[tuple[SendMessage, str, Reply[db.Inserted]]] | None
        self._writes = None
        # messages whose commit had an unknown outcome: broadcast if a retry finds them stored
        self.unconfirmed: set[str] = set()
        self.in_flight = 0  # messages handed to the Store and not broadcast yet
        self.messages_sent = 0

    # --- life ------------------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # unbounded: each client has at most one message:send waiting for its answer
            send, receive = trio.open_memory_channel[tuple[SendMessage, str, Reply[db.Inserted]]](
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
        self, receive: trio.MemoryReceiveChannel[tuple[SendMessage, str, Reply[db.Inserted]]]
    ) -> None:
        """Wait for each write in the order they were handed to the Store (which commits them in
        that order) and hand the result back to the room, which broadcasts it. The room keeps
        taking messages meanwhile, so one room's writes share group commits. The Store answers
        every write within its timeout; waiting is bounded all the same, so that no lost answer
        can wedge the room."""
        patience = self.store.write_timeout_seconds + 2 * ANSWER_GRACE_SECONDS
        async for request, message_id, reply in receive:
            stored: db.Inserted | None = None
            error: BaseException | None = None
            with trio.move_on_after(patience):
                try:
                    stored = await reply.wait()
                except Exception as exc:
                    error = exc
            if stored is None and error is None:
                error = OutcomeUnknown("unavailable", "no answer from the store in time")
            await self.tell(Persisted(request, stored, error, message_id))

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

    def joined_info(self, chat: ChatRecord) -> JoinedRoom:
        return JoinedRoom(
            chat_id=chat.chat_id,
            participant_count=len(chat.participants),
            is_active=bool(self.online_users()),
            last_activity=iso(self.last_activity),
        )

    def room_info(self, chat: ChatRecord) -> RoomInfo:
        online = len(self.online_users())
        return RoomInfo(
            chat_id=chat.chat_id,
            name=chat.name,
            description=chat.description,
            participant_count=len(chat.participants),
            online_count=online,
            is_active=online > 0,
            last_activity=iso(self.last_activity),
        )

    def _online_list(self) -> list[RoomMember]:
        return [
            RoomMember(m.user.user_id, m.user.username, iso(m.joined_at))
            for m in sorted(self.online_users().values(), key=lambda m: m.joined_at)
        ]

    async def _online_update(self) -> None:
        """Who is in the room changed: ``room:online-update`` and the seed's ``room:info``
        ("room information updated", with the ``roomInfo`` of the ``room:info`` answer)."""
        users = self._online_list()
        await self.emitter.emit(
            "room:online-update", RoomOnlineUpdate(self.chat_id, users, len(users)), to=self.room
        )
        if self.chat is not None:
            info = self.room_info(self.chat)
            await self.emitter.emit("room:info", RoomInfoUpdate(self.chat_id, info), to=self.room)

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

    async def _stop_typing(self, user_id: str) -> None:
        typist = self.typing.pop(user_id, None)
        if typist is not None:
            stopped = UserTyping(
                self.chat_id, user_id, typist.username, False, iso(self.clock.now())
            )
            await self.emitter.emit("user:typing", stopped, to=self.room)

    # --- handling: one method per message type -------------------------------------------------
    @handles(ExpireTyping)
    async def _expire(self, message: ExpireTyping) -> None:
        typist = self.typing.get(message.user_id)
        if typist is not None and typist.token == message.token:
            await self._stop_typing(message.user_id)

    @handles(GetTypingUsers)
    async def _typing_users(self, message: GetTypingUsers) -> None:
        if await self._access(message.user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        users = [
            TypingUser(user_id, t.username, self.chat_id, iso(t.started_at))
            for user_id, t in self.typing.items()
        ]
        message.reply.send(Outcome(True, data=users))

    @handles(GetRoomInfo)
    async def _room_info(self, message: GetRoomInfo) -> None:
        chat = await self._access(message.user)
        if chat is None:
            message.reply.send(Outcome(False, NOT_FOUND))
        else:
            message.reply.send(Outcome(True, data=self.room_info(chat)))

    @handles(GetOnline)
    async def _online(self, message: GetOnline) -> None:
        if await self._access(message.user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
        else:
            message.reply.send(Outcome(True, data=self._online_list()))

    @handles(CountTyping)
    async def _count_typing(self, message: CountTyping) -> None:
        message.reply.send(len(self.typing))

    @handles(JoinChat)
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
            try:
                await self.emitter.rooms.join(session, self.room)
            except RoomLimitReached as limit:
                message.reply.send(Outcome(False, str(limit), error="room_limit"))
                return
            self.members[session.sid] = Member(user, now)
        info = self.joined_info(chat)
        if first_of_user:
            await self.emitter.emit(
                "user:joined",
                UserJoined(self.chat_id, user.user_id, user.username, iso(now)),
                to=self.room,
                exclude=[session.sid],
            )
        if not message.quiet:
            session.emit("room:joined", RoomJoined(self.chat_id, info))
        if first_of_user:
            await self._online_update()
        message.reply.send(
            Outcome(True, "Joined chat successfully", JoinResult(info, self.last_seq))
        )

    @handles(LeaveChat)
    async def _leave(self, message: LeaveChat) -> None:
        session, user = message.session, message.user
        member = self.members.pop(session.sid, None)
        if member is None:
            if message.reply is not None:
                chat = await self._access(user)
                if chat is None:
                    message.reply.send(Outcome(False, NOT_FOUND))
                else:  # not in the room: leaving is idempotent
                    session.emit("room:left", RoomLeft(self.chat_id))
                    message.reply.send(Outcome(True, "Left chat successfully"))
            return
        if not message.disconnected:
            await self.emitter.rooms.leave(session, self.room)
        still_here = user.user_id in self.online_users()
        if not still_here:
            await self._stop_typing(user.user_id)
            left = UserLeft(self.chat_id, user.user_id, user.username, iso(self.clock.now()))
            await self.emitter.emit("user:left", left, to=self.room)
        if not message.disconnected:
            session.emit("room:left", RoomLeft(self.chat_id))
        if not still_here:
            await self._online_update()
        if message.reply is not None:
            message.reply.send(Outcome(True, "Left chat successfully"))

    @handles(SendMessage)
    async def _send(self, message: SendMessage) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        message_id = str(uuid.uuid4())
        op = db.insert_message(
            message_id,
            self.chat_id,
            user.user_id,
            user.username,
            message.content,
            message.type,
            now,
            message.client_id,
        )
        reply: Reply[db.Inserted] = Reply()
        await self.store.enqueue(op, reply)  # answered (maybe refused) within the timeout
        assert self._writes is not None
        self._writes.send_nowait((message, message_id, reply))
        self.in_flight += 1

    @handles(Persisted)
    async def _persisted(self, done: Persisted) -> None:
        self.in_flight -= 1
        request, inserted = done.request, done.stored
        if inserted is None:  # not committed (or not known to be): the sender is told
            if isinstance(done.error, OutcomeUnknown):
                self.unconfirmed.add(done.message_id)
            request.reply.send(refusal(done.error, request.client_id is not None))
            return
        stored = inserted.message
        wire = stored.wire()
        if inserted.duplicate and stored.message_id not in self.unconfirmed:
            # a retry of a message already stored and broadcast: answer it again, only
            request.reply.send(Outcome(True, "Message sent successfully", wire))
            return
        self.unconfirmed.discard(stored.message_id)
        self.last_seq = max(self.last_seq, stored.seq)
        self.last_activity = max(self.last_activity, stored.created_at)
        self.messages_sent += 1
        await self._stop_typing(request.user.user_id)
        await self.emitter.emit("message:new", wire, to=self.room)
        request.reply.send(Outcome(True, "Message sent successfully", wire))
        await self.on_commit(Committed(self.chat_id, stored.seq, wire))

    @handles(SetTyping)
    async def _typing(self, message: SetTyping) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        if message.is_typing:
            self._token += 1
            typist = self.typing.get(user.user_id)
            started = now if typist is None else typist.started_at
            self.typing[user.user_id] = Typist(user.username, started, self._token)
            self._arm(user.user_id, self._token, self.config.typing_expiry_seconds)
            if typist is None:  # started: news to the others
                await self.emitter.emit(
                    "user:typing",
                    UserTyping(self.chat_id, user.user_id, user.username, True, iso(now)),
                    to=self.room,
                    exclude=[message.sid],
                )
        else:
            await self._stop_typing(user.user_id)
        message.reply.send(Outcome(True, "Typing status updated"))

    @handles(ConfirmReceipt)
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
            event: MessageDelivered | MessageRead
            if message.kind == "delivered":
                event = MessageDelivered(
                    message.message_id, self.chat_id, user.user_id, user.username, iso(now)
                )
            else:
                event = MessageRead(
                    message.message_id, self.chat_id, user.user_id, user.username, iso(now)
                )
            await self.emitter.emit(f"message:{message.kind}", event, to=self.room)
        text = "Delivery confirmed" if message.kind == "delivered" else "Read confirmation recorded"
        message.reply.send(Outcome(True, text))


NOT_STORED = "not_stored"
OUTCOME_UNKNOWN = "outcome_unknown"


def refusal(error: BaseException | None, has_client_id: bool) -> Outcome[ChatMessage]:
    """The truthful answer to a send that was not committed (or not known to be)."""
    if isinstance(error, OutcomeUnknown):
        retry = (
            "retry with the same clientMessageId: it is stored once"
            if has_client_id
            else "send it with a clientMessageId to retry safely"
        )
        return Outcome(
            False,
            f"Message outcome unknown ({error.fault}): it may be stored; {retry}",
            error=OUTCOME_UNKNOWN,
        )
    if isinstance(error, StoreError):
        return Outcome(
            False, f"Message not stored ({error.fault}). Please retry.", error=NOT_STORED
        )
    return Outcome(False, f"Message not stored: {error or 'unknown error'}", error=NOT_STORED)
