"""One actor per chat (per node): access, who is in the room, typing, messages and receipts.

A message is persisted through the Store (group commit) and only then delivered as
``message:new`` and answered: what anybody has seen or been acknowledged is committed. The
commit numbers it within its chat (``seq``, see :mod:`actors.chat.db`); the room delivers its
chat's messages to the members on this node strictly in that order, each once (a
:class:`Sequenced` message: from its own commits, and on a cluster from the other nodes' through
:mod:`actors.chat.fanout`). A number that is missing (a publish lost between another node's
commit and its publish, a Redis reconnect) is waited for ``gap_wait_seconds`` and then read from
the database: a lost broadcast becomes a delay, never a loss. Events other than messages
(receipts, typing, ``room:*``, ``user:joined``/``user:left``) are broadcast through the
namespace, which reaches every node.

Who is in the room and who is typing is the :class:`~actors.chat.roster.Roster`'s: this actor's
own on a single node, Redis on a cluster (so the edges and the lists are cluster-wide). Typing
expires on its own (``typing_expiry_seconds`` on the service clock, so tests advance it) and is
cleared when the user sends or leaves.
"""

from __future__ import annotations

import logging
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
from actors.chat.roster import LocalRoster, Roster
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

log = logging.getLogger("switchboard.chat")


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
    token: str


@dataclass(frozen=True, slots=True)
class Sequenced:
    """A committed message of this chat, by its number: from this room's own commits or from
    another node's (delivered here in ``seq`` order, once)."""

    seq: int
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class FillGap:
    """Read what is missing from the database (after the wait, a reconnect, or the periodic
    check that the latest message was heard of)."""

    check_latest: bool = False


@dataclass(frozen=True, slots=True)
class DeliveredSeq:
    """The number of the last message delivered to this node's members."""

    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class RosterSwept:
    """A dead node's sockets were taken out of the roster: these users left the room."""

    users: tuple[tuple[str, str], ...]  # (user id, username)
    stopped_typing: tuple[tuple[str, str], ...] = ()


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
    last_seq: int  # every message up to this one was delivered before the join


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


@dataclass
class RoomConfig:
    typing_expiry_seconds: float = 5.0
    idle_seconds: float = 30.0
    mailbox_size: int = 256
    gap_wait_seconds: float = 0.2


Publish = Callable[[str, int, ChatMessage], None]  # (chat id, seq, message): to the other nodes


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
        roster: Roster | None = None,
        publish: Publish | None = None,
        node: str = "",
    ) -> None:
        self.config = config or RoomConfig()
        super().__init__(mailbox_size=self.config.mailbox_size)
        self.idle_seconds = self.config.idle_seconds  # type: ignore[misc]  # per instance
        self.chat_id = chat_id
        self.store = store
        self.emitter = emitter
        self.clock = clock
        self.on_commit = on_commit
        self.roster: Roster = roster if roster is not None else LocalRoster()
        self.publish = publish
        self.node = node
        self.room = room_name(chat_id)
        self.chat: ChatRecord | None = None
        self.loaded = False
        self.last_seq = 0  # the last message delivered to the members here
        self.pending: dict[int, ChatMessage] = {}  # numbered past a gap: wait for the gap
        self.gap_armed = False
        self.gaps_filled = 0  # messages read from the database to fill a gap
        self.last_activity = 0.0
        self.members: dict[str, Member] = {}  # this node's sockets in the room
        self.armed: dict[str, str] = {}  # user id -> the typing token this node's timer expires
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
            self.gap_armed = False
            # unbounded: each client has at most one message:send waiting for its answer
            send, receive = trio.open_memory_channel[tuple[SendMessage, str, Reply[db.Inserted]]](
                math.inf
            )
            self._writes = send
            self.in_flight = 0
            nursery.start_soon(self._committer, receive)
            for user_id, token in self.armed.items():  # after a restart: re-arm the timers
                self._arm(user_id, token, self.config.typing_expiry_seconds)
            if self.pending:
                self._arm_gap()
            try:
                await super().run()
            finally:
                nursery.cancel_scope.cancel()

    async def idle(self) -> bool:
        return not self.members and not self.armed and not self.in_flight

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
                self.last_seq = await self.store.read(db.last_seq(chat_id))
            self.loaded = True
        return self.chat

    async def _access(self, user: User) -> ChatRecord | None:
        chat = await self._load()
        if chat is None or not chat.allows(user):
            return None
        return chat

    # --- figures ---------------------------------------------------------------------------------
    def joined_info(self, chat: ChatRecord, online: int) -> JoinedRoom:
        return JoinedRoom(
            chat_id=chat.chat_id,
            participant_count=len(chat.participants),
            is_active=online > 0,
            last_activity=iso(self.last_activity),
        )

    def room_info(self, chat: ChatRecord, online: int) -> RoomInfo:
        return RoomInfo(
            chat_id=chat.chat_id,
            name=chat.name,
            description=chat.description,
            participant_count=len(chat.participants),
            online_count=online,
            is_active=online > 0,
            last_activity=iso(self.last_activity),
        )

    async def _online_update(self) -> None:
        """Who is in the room changed: ``room:online-update`` and the seed's ``room:info``
        ("room information updated", with the ``roomInfo`` of the ``room:info`` answer)."""
        users = await self.roster.online(self.chat_id)
        await self.emitter.emit(
            "room:online-update", RoomOnlineUpdate(self.chat_id, users, len(users)), to=self.room
        )
        if self.chat is not None:
            info = self.room_info(self.chat, len(users))
            await self.emitter.emit("room:info", RoomInfoUpdate(self.chat_id, info), to=self.room)

    # --- messages in sequence --------------------------------------------------------------------
    async def _sequenced(self, seq: int, message: ChatMessage) -> None:
        """Deliver ``seq`` when its turn comes: now if it is the next, after the gap otherwise;
        a number already delivered (a retry, our own publish heard back) is dropped."""
        if seq <= self.last_seq or seq in self.pending:
            return
        self.pending[seq] = message
        await self._drain()
        if self.pending:
            self._arm_gap()

    async def _drain(self) -> None:
        while (message := self.pending.pop(self.last_seq + 1, None)) is not None:
            self.last_seq += 1
            await self.emitter.emit_here("message:new", message, to=self.room)
            await self.on_commit(Committed(self.chat_id, self.last_seq, message))

    def _arm_gap(self) -> None:
        if not self.gap_armed and self._nursery is not None:
            self.gap_armed = True
            self._nursery.start_soon(self._gap_later)

    async def _gap_later(self) -> None:
        await trio.sleep(self.config.gap_wait_seconds)  # network time, not the service clock
        try:
            await self.tell(FillGap())
        except ActorStopped:
            pass

    @handles(Sequenced)
    async def _heard(self, message: Sequenced) -> None:
        if await self._load() is None:
            return
        await self._sequenced(message.seq, message.message)

    @handles(FillGap)
    async def _fill_gap(self, message: FillGap) -> None:
        self.gap_armed = False
        if await self._load() is None:
            return
        if message.check_latest:
            latest = await self.store.read(db.last_seq(self.chat_id))
            if latest <= self.last_seq:
                return
            upto = latest
        elif not self.pending:
            return
        else:
            upto = max(self.pending)
        while self.last_seq < upto:
            found = await self.store.read(db.messages_after(self.chat_id, self.last_seq, upto))
            if not found:
                break
            for stored in found:
                if stored.seq > self.last_seq and stored.seq not in self.pending:
                    self.pending[stored.seq] = stored.wire()
                    self.gaps_filled += 1
            before = self.last_seq
            await self._drain()
            if self.last_seq == before:
                break
        if self.pending and min(self.pending) != self.last_seq + 1:
            # the database has no such number (it never burns one): skip it, loudly
            log.error(
                "chat %s: messages %d..%d are missing",
                self.chat_id,
                self.last_seq + 1,
                min(self.pending) - 1,
            )
            self.last_seq = min(self.pending) - 1
            await self._drain()
        if self.pending:
            self._arm_gap()

    @handles(DeliveredSeq)
    async def _delivered_seq(self, message: DeliveredSeq) -> None:
        await self._load()
        message.reply.send(self.last_seq)

    # --- typing ----------------------------------------------------------------------------------
    def _arm(self, user_id: str, token: str, delay: float) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._expire_later, user_id, token, delay)

    async def _expire_later(self, user_id: str, token: str, delay: float) -> None:
        await self.clock.sleep(delay)
        try:
            await self.tell(ExpireTyping(user_id, token))
        except ActorStopped:
            pass

    async def _stop_typing(self, user_id: str, token: str = "") -> None:
        self.armed.pop(user_id, None)
        username = await self.roster.stop_typing(self.chat_id, user_id, token)
        if username is not None:
            await self._typing_stopped(user_id, username)

    async def _typing_stopped(self, user_id: str, username: str) -> None:
        stopped = UserTyping(self.chat_id, user_id, username, False, iso(self.clock.now()))
        await self.emitter.emit("user:typing", stopped, to=self.room)

    # --- handling: one method per message type -------------------------------------------------
    @handles(ExpireTyping)
    async def _expire(self, message: ExpireTyping) -> None:
        if self.armed.get(message.user_id) == message.token:
            await self._stop_typing(message.user_id, message.token)

    @handles(GetTypingUsers)
    async def _typing_users(self, message: GetTypingUsers) -> None:
        if await self._access(message.user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        users = await self.roster.typing(self.chat_id)
        message.reply.send(Outcome(True, data=users))

    @handles(GetRoomInfo)
    async def _room_info(self, message: GetRoomInfo) -> None:
        chat = await self._access(message.user)
        if chat is None:
            message.reply.send(Outcome(False, NOT_FOUND))
        else:
            online = await self.roster.online(self.chat_id)
            message.reply.send(Outcome(True, data=self.room_info(chat, len(online))))

    @handles(GetOnline)
    async def _online(self, message: GetOnline) -> None:
        if await self._access(message.user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
        else:
            message.reply.send(Outcome(True, data=await self.roster.online(self.chat_id)))

    @handles(CountTyping)
    async def _count_typing(self, message: CountTyping) -> None:
        message.reply.send(len(await self.roster.typing(self.chat_id)))

    @handles(RosterSwept)
    async def _swept(self, message: RosterSwept) -> None:
        if await self._load() is None:
            return
        now = iso(self.clock.now())
        for user_id, username in message.stopped_typing:
            await self._typing_stopped(user_id, username)
        for user_id, username in message.users:
            left = UserLeft(self.chat_id, user_id, username, now)
            await self.emitter.emit("user:left", left, to=self.room)
        if message.users:
            await self._online_update()

    @handles(JoinChat)
    async def _join(self, message: JoinChat) -> None:
        chat = await self._access(message.user)
        if chat is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        session, user = message.session, message.user
        now = self.clock.now()
        first_of_user = False
        if session.sid not in self.members:
            try:
                await self.emitter.rooms.join(session, self.room)
            except RoomLimitReached as limit:
                message.reply.send(Outcome(False, str(limit), error="room_limit"))
                return
            self.members[session.sid] = Member(user, now)
            first_of_user = await self.roster.join(self.chat_id, session.sid, user, now)
        online = await self.roster.online(self.chat_id)
        info = self.joined_info(chat, len(online))
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
        last_of_user = await self.roster.leave(self.chat_id, session.sid)
        if last_of_user:
            await self._stop_typing(user.user_id)
            left = UserLeft(self.chat_id, user.user_id, user.username, iso(self.clock.now()))
            await self.emitter.emit("user:left", left, to=self.room)
        if not message.disconnected:
            session.emit("room:left", RoomLeft(self.chat_id))
        if last_of_user:
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
        self.last_activity = max(self.last_activity, stored.created_at)
        self.messages_sent += 1
        if self.publish is not None:
            self.publish(self.chat_id, stored.seq, wire)  # queued, never waits
        await self._stop_typing(request.user.user_id)
        await self._sequenced(stored.seq, wire)
        request.reply.send(Outcome(True, "Message sent successfully", wire))

    @handles(SetTyping)
    async def _typing(self, message: SetTyping) -> None:
        user = message.user
        if await self._access(user) is None:
            message.reply.send(Outcome(False, NOT_FOUND))
            return
        now = self.clock.now()
        if message.is_typing:
            self._token += 1
            token = f"{self.node}:{self._token}"
            started = await self.roster.start_typing(self.chat_id, user, now, token)
            self.armed[user.user_id] = token
            self._arm(user.user_id, token, self.config.typing_expiry_seconds)
            if started:  # news to the others
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
