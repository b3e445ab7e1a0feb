"""Connection recovery: tokens bound to a user, and the messages queued while they are away.

``connection:create-session`` gives the socket a token. While that socket is connected the token
is valid; when it disconnects, the token records the chats the socket was in and starts to queue
every message committed in those chats (in commit order, each once, at most
``queue_max_messages``). It can be claimed for ``ttl_seconds`` after the disconnect (service
clock), by the same user only: the claiming socket re-joins the chats and receives the queue. The
claim cuts the queue at the point where each re-join began (``upto``): later messages reach the new
socket live, earlier ones through the queue, so none is missed or repeated.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field

import trio

from actors.chat.room import Committed
from actors.chat.wire import ChatMessage, RecoveryFigures
from actors.clock import Clock
from actors.runtime import Actor, Reply, handles

INVALID = "Invalid or expired recovery token"
FOREIGN = "Recovery token belongs to another user"


@dataclass(slots=True)
class RecoverySession:
    token: str
    user_id: str
    sid: str | None  # the socket it is attached to; None while away
    created_at: float
    rooms: tuple[str, ...] = ()
    detached_at: float | None = None
    queue: deque[Committed] = field(default_factory=deque)
    dropped: int = 0

    def expired(self, now: float, ttl: float) -> bool:
        return self.detached_at is not None and now - self.detached_at >= ttl


@dataclass(frozen=True, slots=True)
class CreateSession:
    user_id: str
    sid: str
    rooms: tuple[str, ...]
    reply: Reply[str]
    marks: dict[str, int] = field(default_factory=dict)  # chat id -> last seq delivered


@dataclass(frozen=True, slots=True)
class Detach:
    sid: str
    rooms: tuple[str, ...]
    marks: dict[str, int] = field(default_factory=dict)  # chat id -> last seq delivered


@dataclass(frozen=True, slots=True)
class Peek:
    token: str
    user_id: str
    reply: Reply[tuple[str, ...] | str]  # the chats to re-join, or a refusal


@dataclass(frozen=True, slots=True)
class Claim:
    token: str
    user_id: str
    sid: str
    upto: dict[str, int]  # chat id -> last seq broadcast before the re-join
    reply: Reply[list[ChatMessage] | str]  # the queued messages, or a refusal


@dataclass(frozen=True, slots=True)
class RecoveryStats:
    reply: Reply[RecoveryFigures]


@dataclass(frozen=True, slots=True)
class Prune:
    pass


class RecoveryActor(Actor):
    kind = "recovery"
    mailbox_size = 1024

    def __init__(self, clock: Clock, *, ttl_seconds: float, queue_max_messages: int) -> None:
        super().__init__()
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self.queue_max_messages = queue_max_messages
        self.sessions: dict[str, RecoverySession] = {}
        self.by_sid: dict[str, str] = {}
        self.away_by_chat: dict[str, set[str]] = {}  # chat id -> tokens queueing for it
        self.recovered = 0
        self.expired = 0

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pruner)
            try:
                await super().run()
            finally:
                nursery.cancel_scope.cancel()

    async def _pruner(self) -> None:
        await self.clock.every(max(1.0, self.ttl_seconds / 4), lambda: self.tell(Prune()))

    # --- helpers -------------------------------------------------------------------------------
    def _forget(self, rec: RecoverySession) -> None:
        self.sessions.pop(rec.token, None)
        if rec.sid is not None and self.by_sid.get(rec.sid) == rec.token:
            del self.by_sid[rec.sid]
        self._stop_queueing(rec)

    def _stop_queueing(self, rec: RecoverySession) -> None:
        for chat_id in rec.rooms:
            tokens = self.away_by_chat.get(chat_id)
            if tokens is not None:
                tokens.discard(rec.token)
                if not tokens:
                    del self.away_by_chat[chat_id]

    def _valid(self, token: str, user_id: str) -> RecoverySession | str:
        rec = self.sessions.get(token)
        if rec is None:
            return INVALID
        if rec.expired(self.clock.now(), self.ttl_seconds):
            self.expired += 1
            self._forget(rec)
            return INVALID
        if rec.user_id != user_id:
            return FOREIGN
        return rec

    # --- handling: one method per message type -------------------------------------------------
    @handles(Committed)
    async def _committed(self, message: Committed) -> None:
        tokens = self.away_by_chat.get(message.chat_id)
        if tokens:
            for token in tokens:
                rec = self.sessions[token]
                rec.queue.append(message)
                if len(rec.queue) > self.queue_max_messages:
                    rec.queue.popleft()
                    rec.dropped += 1

    @handles(CreateSession)
    async def _create(self, message: CreateSession) -> None:
        existing = self.by_sid.get(message.sid)
        token = existing if existing is not None else secrets.token_urlsafe(32)
        if existing is None:
            self.sessions[token] = RecoverySession(
                token, message.user_id, message.sid, self.clock.now(), message.rooms
            )
            self.by_sid[message.sid] = token
        message.reply.send(token)

    @handles(Detach)
    async def _detach(self, message: Detach) -> None:
        detached = self.by_sid.pop(message.sid, None)
        rec = self.sessions.get(detached) if detached is not None else None
        if rec is None:
            return
        rec.sid = None
        rec.rooms = message.rooms
        rec.detached_at = self.clock.now()
        for chat_id in rec.rooms:
            self.away_by_chat.setdefault(chat_id, set()).add(rec.token)

    @handles(Peek)
    async def _peek(self, message: Peek) -> None:
        found = self._valid(message.token, message.user_id)
        message.reply.send(found if isinstance(found, str) else found.rooms)

    @handles(Claim)
    async def _claim(self, message: Claim) -> None:
        found = self._valid(message.token, message.user_id)
        if isinstance(found, str):
            message.reply.send(found)
            return
        rec = found
        self._stop_queueing(rec)
        queued = [c.message for c in rec.queue if c.seq <= message.upto.get(c.chat_id, -1)]
        rec.queue.clear()
        if rec.sid is not None and self.by_sid.get(rec.sid) == rec.token:
            del self.by_sid[rec.sid]  # claimed from another live socket: it moves here
        old = self.by_sid.get(message.sid)
        if old is not None and old != rec.token:
            self._forget(self.sessions[old])
        rec.sid = message.sid
        rec.detached_at = None
        self.by_sid[message.sid] = rec.token
        self.recovered += 1
        message.reply.send(queued)

    @handles(RecoveryStats)
    async def _stats(self, message: RecoveryStats) -> None:
        now = self.clock.now()
        live = list(self.sessions.values())
        ages = [now - r.created_at for r in live]
        message.reply.send(
            RecoveryFigures(
                active_sessions=sum(1 for r in live if r.sid is not None),
                recovery_tokens=len(live),
                queued_messages=sum(len(r.queue) for r in live),
                average_session_age=round(sum(ages) / len(ages) / 60, 2) if ages else 0,
                recovered=self.recovered,
                expired=self.expired,
            )
        )

    @handles(Prune)
    async def _prune(self, message: Prune) -> None:
        now = self.clock.now()
        for rec in [r for r in self.sessions.values() if r.expired(now, self.ttl_seconds)]:
            self.expired += 1
            self._forget(rec)
