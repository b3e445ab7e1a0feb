"""Recovery tokens of a cluster: kept in Redis, so a token made on one node is claimed on any
other, and the messages missed are rebuilt from the database by sequence range.

A token records its user, the socket it is attached to (and that socket's node), the chats it
was in and, per chat, the number of the last message delivered to it (``marks``: when the token
is made and when its socket disconnects). Claiming it (one Lua script: checked, moved to the new
socket and re-marked at once, so two claims cannot both get the queue) answers the chats to
re-join; the queue is each chat's messages after its mark up to where the re-join began, read
from the database in commit order (the latest ``queue_max_messages``): once, in order, whichever
node committed them. A token whose node died while attached is claimed with the marks of its
last join or creation: the messages after them come again (at least once; ids tell repeats).
Expiry is on the service clock (tokens also expire in Redis a while after their TTL).
"""

from __future__ import annotations

import secrets
from typing import Any

import coredis
import trio

from actors.chat import db
from actors.chat.recovery import (
    FOREIGN,
    INVALID,
    Claim,
    CreateSession,
    Detach,
    Peek,
    Prune,
    RecoveryStats,
)
from actors.chat.room import Committed
from actors.chat.wire import RecoveryFigures
from actors.clock import Clock
from actors.runtime import Actor, handles
from actors.store import Store

SEP = "\x1f"
EXPIRY_MARGIN_SECONDS = 60  # a token's key outlives its TTL this long (service clocks run ahead)

# KEYS: token, tokens set, expired counter; ARGV: user, now, ttl, check only (1/0), new sid,
# node, marks. Returns {verdict, rooms, marks}
_CLAIM = """
local t = redis.call('HMGET', KEYS[1], 'user', 'detached_at', 'rooms', 'marks')
if not t[1] then return {'invalid', '', ''} end
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if t[2] ~= '' and now - tonumber(t[2]) >= ttl then
  redis.call('DEL', KEYS[1])
  if redis.call('SREM', KEYS[2], KEYS[1]) == 1 then redis.call('INCR', KEYS[3]) end
  return {'invalid', '', ''}
end
if t[1] ~= ARGV[1] then return {'foreign', '', ''} end
if ARGV[4] == '1' then return {'ok', t[3], t[4]} end
redis.call('HSET', KEYS[1], 'sid', ARGV[5], 'node', ARGV[6], 'detached_at', '', 'marks', ARGV[7])
redis.call('PERSIST', KEYS[1])
return {'ok', t[3], t[4]}
"""

# KEYS: token; ARGV: sid, now, rooms, marks, expire ms. Only if still that socket's.
_DETACH = """
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sid', '', 'detached_at', ARGV[2], 'rooms', ARGV[3], 'marks', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def encode_marks(marks: dict[str, int]) -> str:
    return SEP.join(f"{chat}={seq}" for chat, seq in sorted(marks.items()))


def decode_marks(text: str) -> dict[str, int]:
    marks: dict[str, int] = {}
    for item in text.split(SEP) if text else ():
        chat, _, seq = item.rpartition("=")
        if chat and seq.isdigit():
            marks[chat] = int(seq)
    return marks


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedRecoveryActor(Actor):
    """The recovery actor of a cluster node: the same messages, with tokens in Redis."""

    kind = "recovery"
    mailbox_size = 1024

    def __init__(
        self,
        clock: Clock,
        store: Store,
        client: coredis.Redis[bytes],
        prefix: str,
        tag: str,
        *,
        ttl_seconds: float,
        queue_max_messages: int,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.store = store
        self.client = client
        self.tag = tag
        self.p = f"{{{prefix}-chat}}:recovery:"
        self.ttl_seconds = ttl_seconds
        self.queue_max_messages = queue_max_messages
        self.by_sid: dict[str, str] = {}  # this node's sockets -> their tokens
        self._scripts: dict[str, Any] = {}

    def key(self, token: str) -> str:
        return self.p + "token:" + token

    @property
    def tokens_key(self) -> str:
        return self.p + "tokens"

    async def _run(self, body: str, keys: list[str], args: list[object]) -> Any:
        script = self._scripts.get(body)
        if script is None:
            script = self._scripts[body] = self.client.register_script(body)
        return await script(keys=keys, args=[str(a) for a in args])

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pruner)
            try:
                await super().run()
            finally:
                nursery.cancel_scope.cancel()

    async def _pruner(self) -> None:
        await self.clock.every(max(1.0, self.ttl_seconds / 4), lambda: self.tell(Prune()))

    async def _claim(
        self, token: str, user_id: str, *, check_only: bool, sid: str = "", marks: str = ""
    ) -> tuple[str, tuple[str, ...], dict[str, int]]:
        keys = [self.key(token), self.tokens_key, self.p + "expired"]
        args: list[object] = [
            user_id, repr(self.clock.now()), self.ttl_seconds, "1" if check_only else "0",
            sid, self.tag, marks,
        ]  # fmt: skip
        verdict, rooms, old_marks = (_text(v) for v in await self._run(_CLAIM, keys, args))
        chats = tuple(r for r in rooms.split(SEP) if r)
        return verdict, chats, decode_marks(old_marks)

    # --- handling: one method per message type -------------------------------------------------
    @handles(Committed)
    async def _committed(self, message: Committed) -> None:
        pass  # queues are rebuilt from the database

    @handles(CreateSession)
    async def _create(self, message: CreateSession) -> None:
        existing = self.by_sid.get(message.sid)
        if existing is not None:
            message.reply.send(existing)
            return
        token = secrets.token_urlsafe(32)
        fields = {
            "user": message.user_id,
            "sid": message.sid,
            "node": self.tag,
            "created_at": repr(self.clock.now()),
            "rooms": SEP.join(message.rooms),
            "detached_at": "",
            "marks": encode_marks(message.marks),
        }
        await self.client.hset(self.key(token), fields)
        await self.client.sadd(self.tokens_key, [self.key(token)])
        self.by_sid[message.sid] = token
        message.reply.send(token)

    @handles(Detach)
    async def _detach(self, message: Detach) -> None:
        token = self.by_sid.pop(message.sid, None)
        if token is None:
            return
        expire_ms = int((self.ttl_seconds + EXPIRY_MARGIN_SECONDS) * 1000)
        args: list[object] = [
            message.sid, repr(self.clock.now()), SEP.join(message.rooms),
            encode_marks(message.marks), expire_ms,
        ]  # fmt: skip
        await self._run(_DETACH, [self.key(token)], args)

    @handles(Peek)
    async def _peek(self, message: Peek) -> None:
        verdict, rooms, _ = await self._claim(message.token, message.user_id, check_only=True)
        message.reply.send(
            rooms if verdict == "ok" else FOREIGN if verdict == "foreign" else INVALID
        )

    @handles(Claim)
    async def _claim_it(self, message: Claim) -> None:
        verdict, _, marks = await self._claim(
            message.token, message.user_id, check_only=False, sid=message.sid,
            marks=encode_marks(message.upto),
        )  # fmt: skip
        if verdict != "ok":
            message.reply.send(FOREIGN if verdict == "foreign" else INVALID)
            return
        old = self.by_sid.get(message.sid)
        if old is not None and old != message.token:
            await self.client.delete([self.key(old)])
            await self.client.srem(self.tokens_key, [self.key(old)])
        self.by_sid[message.sid] = message.token
        ranges = {chat: (marks[chat], upto) for chat, upto in message.upto.items() if chat in marks}
        missed = await self.store.read(db.missed(ranges, self.queue_max_messages))
        await self.client.incr(self.p + "recovered")
        message.reply.send([m.wire() for m in missed])

    async def _tokens(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        for raw in await self.client.smembers(self.tokens_key):
            key = _text(raw)
            record = {_text(k): _text(v) for k, v in (await self.client.hgetall(key)).items()}
            if not record:  # expired in Redis meanwhile
                await self.client.srem(self.tokens_key, [key])
                continue
            record["key"] = key
            found.append(record)
        return found

    @handles(Prune)
    async def _prune(self, message: Prune) -> None:
        now = self.clock.now()
        for record in await self._tokens():
            detached = record.get("detached_at", "")
            if detached and now - float(detached) >= self.ttl_seconds:
                await self.client.delete([record["key"]])
                if await self.client.srem(self.tokens_key, [record["key"]]):
                    await self.client.incr(self.p + "expired")

    @handles(RecoveryStats)
    async def _stats(self, message: RecoveryStats) -> None:
        await self._prune(Prune())
        now = self.clock.now()
        records = await self._tokens()
        ages = [now - float(r.get("created_at") or now) for r in records]
        queued = 0
        for record in records:
            if record.get("detached_at"):
                marks = decode_marks(record.get("marks", ""))
                queued += min(self.queue_max_messages, await self.store.read(db.count_after(marks)))
        counters = await self.client.mget([self.p + "recovered", self.p + "expired"])
        recovered, expired = (int(_text(c)) if c is not None else 0 for c in counters)
        message.reply.send(
            RecoveryFigures(
                active_sessions=sum(1 for r in records if not r.get("detached_at")),
                recovery_tokens=len(records),
                queued_messages=queued,
                average_session_age=round(sum(ages) / len(ages) / 60, 2) if ages else 0,
                recovered=recovered,
                expired=expired,
            )
        )
