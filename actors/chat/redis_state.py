"""The chat's shared live state on a cluster, in Redis: rooms' members, typing, and presence.

Every change is one Lua script, so the answer it gives is the cluster's edge: a socket joining
returns whether it is its user's first in the chat (``user:joined`` fires once cluster-wide),
leaving whether it was the last; a user's first socket anywhere is ``user:online``, the last one
``user:offline``, however many tabs on however many nodes. State is kept per socket (joining
twice counts once), and every entry a node adds is also listed under that node
(``node:<tag>``): when the node dies (its lease lapses), one survivor runs :meth:`reap`, which
takes the node's sockets out as if each had disconnected, and returns the edges it crossed (who
went offline, who left which chat, whose typing stopped) for the survivor to announce.

All keys share one hash tag (``{<prefix>-chat}``): the scripts touch several keys, which Redis
Cluster allows only within one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import coredis

from actors.chat.model import User, iso
from actors.chat.wire import Presence, PresenceCounts, PresenceDetail, RoomMember, TypingUser

SEP = "\x1f"

_ROOM_JOIN = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[4], 'r' .. '\\31' .. ARGV[5] .. '\\31' .. ARGV[1])
redis.call('SADD', KEYS[5], ARGV[6])
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if n == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. '\\31' .. ARGV[4])
  return 1
end
return 0
"""

# shared by the leave script and the reaper: take socket ARGV sid out of a chat's keys
_ROOM_LEAVE_FN = """
local function room_leave(prefix, chat, sid)
  local socks = prefix .. 'room:' .. chat .. ':socks'
  local uid = redis.call('HGET', socks, sid)
  if not uid then return nil end
  redis.call('HDEL', socks, sid)
  local users = prefix .. 'room:' .. chat .. ':users'
  local n = redis.call('HINCRBY', users, uid, -1)
  if n <= 0 then
    redis.call('HDEL', users, uid)
    local meta = prefix .. 'room:' .. chat .. ':meta'
    local info = redis.call('HGET', meta, uid) or ''
    redis.call('HDEL', meta, uid)
    local name = string.match(info, '^([^\\31]*)') or ''
    return {uid, name}
  end
  return false
end
"""

_ROOM_LEAVE = (
    _ROOM_LEAVE_FN
    + """
redis.call('SREM', KEYS[1], 'r' .. '\\31' .. ARGV[2] .. '\\31' .. ARGV[3])
local gone = room_leave(ARGV[1], ARGV[2], ARGV[3])
if gone then return 1 end
return 0
"""
)

_TYPING_START = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local started = ARGV[3]
local news = 1
if cur then
  started = string.match(cur, '^[^\\31]*\\31([^\\31]*)') or ARGV[3]
  news = 0
end
local entry = ARGV[2] .. '\\31' .. started .. '\\31' .. ARGV[4] .. '\\31' .. ARGV[5]
redis.call('HSET', KEYS[1], ARGV[1], entry)
redis.call('SADD', KEYS[2], 't' .. '\\31' .. ARGV[6] .. '\\31' .. ARGV[1])
redis.call('SADD', KEYS[3], ARGV[5])
return news
"""

_TYPING_STOP = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return false end
local name, started, token = string.match(cur, '^([^\\31]*)\\31([^\\31]*)\\31([^\\31]*)')
if ARGV[2] ~= '' and token ~= ARGV[2] then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return name or ''
"""

_CONNECT = """
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[5], 'p' .. '\\31' .. ARGV[5] .. '\\31' .. ARGV[1])
redis.call('SADD', KEYS[6], ARGV[6])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('HSET', KEYS[2], 'username', ARGV[3], 'last_seen', ARGV[4])
if added == 1 and redis.call('HLEN', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[2], 'status', 'online', 'connected_at', ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  return 1
end
return 0
"""

_DISCONNECT_FN = """
local function disconnect(prefix, uid, sid, now)
  local socks = prefix .. 'presence:socks:' .. uid
  if redis.call('HDEL', socks, sid) == 0 then return nil end
  local user = prefix .. 'presence:user:' .. uid
  redis.call('HSET', user, 'last_seen', now)
  if redis.call('HLEN', socks) == 0 then
    redis.call('HSET', user, 'status', 'offline')
    redis.call('ZREM', prefix .. 'presence:online', uid)
    return {uid, redis.call('HGET', user, 'username') or ''}
  end
  return false
end
"""

_DISCONNECT = (
    _DISCONNECT_FN
    + """
redis.call('SREM', KEYS[1], 'p' .. '\\31' .. ARGV[2] .. '\\31' .. ARGV[3])
local gone = disconnect(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if gone then return 1 end
return 0
"""
)

_SET_STATUS = """
if redis.call('HLEN', KEYS[1]) == 0 then return false end
local previous = redis.call('HGET', KEYS[2], 'status') or 'online'
redis.call('HSET', KEYS[2], 'status', ARGV[1], 'last_seen', ARGV[2])
return previous
"""

_TOUCH = """
if redis.call('HLEN', KEYS[1]) > 0 then redis.call('HSET', KEYS[2], 'last_seen', ARGV[1]) end
return 0
"""

_REAP = (
    _ROOM_LEAVE_FN
    + _DISCONNECT_FN
    + """
local prefix, tag, now = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local kind, a, b = string.match(entry, '^(%a)\\31([^\\31]*)\\31([^\\31]*)$')
  if kind == 'r' then
    local gone = room_leave(prefix, a, b)
    if gone then table.insert(out, 'r' .. '\\31' .. a .. '\\31' .. gone[1] .. '\\31' .. gone[2]) end
  elseif kind == 'p' then
    local gone = disconnect(prefix, a, b, now)
    if gone then table.insert(out, 'p' .. '\\31' .. gone[1] .. '\\31' .. gone[2]) end
  elseif kind == 't' then
    local key = prefix .. 'typing:' .. a
    local cur = redis.call('HGET', key, b)
    if cur then
      local f = '([^\\31]*)\\31'
      local name, _, _, node = string.match(cur, '^' .. f .. f .. f .. '([^\\31]*)')
      if node == tag then
        redis.call('HDEL', key, b)
        table.insert(out, 't' .. '\\31' .. a .. '\\31' .. b .. '\\31' .. (name or ''))
      end
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], tag)
return out
"""
)


@dataclass(frozen=True, slots=True)
class Reaped:
    """The edges a dead node's sockets crossed when the reaper took them out."""

    offline: list[tuple[str, str]]  # (user id, username): their last socket was there
    left: dict[str, list[tuple[str, str]]]  # chat id -> users whose last socket there it was
    stopped_typing: dict[str, list[tuple[str, str]]]  # chat id -> users typing from there


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(_text(value))
    except (TypeError, ValueError):
        return default


class RedisChatState:
    """The :class:`~actors.chat.roster.Roster` of every room, and presence, for one node."""

    def __init__(self, client: coredis.Redis[bytes], prefix: str, tag: str) -> None:
        self.client = client
        self.tag = tag
        self.p = f"{{{prefix}-chat}}:"
        self._scripts: dict[str, Any] = {}

    def key(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    @property
    def node_key(self) -> str:
        return self.node_key_of(self.tag)

    def node_key_of(self, tag: str) -> str:
        return self.key("node", tag)

    @property
    def nodes_key(self) -> str:
        return self.key("nodes")

    async def _run(self, source: str, keys: Sequence[str], args: Sequence[str | float]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return await script(keys=list(keys), args=[str(a) for a in args])

    # --- the rooms (Roster) --------------------------------------------------------------------
    def _room(self, chat_id: str, what: str) -> str:
        return self.key("room", chat_id, what)

    async def join(self, chat_id: str, sid: str, user: User, at: float) -> bool:
        keys = [
            self._room(chat_id, "socks"),
            self._room(chat_id, "users"),
            self._room(chat_id, "meta"),
            self.node_key,
            self.nodes_key,
        ]
        args = [sid, user.user_id, user.username, repr(at), chat_id, self.tag]
        return bool(await self._run(_ROOM_JOIN, keys, args))

    async def leave(self, chat_id: str, sid: str) -> bool:
        return bool(await self._run(_ROOM_LEAVE, [self.node_key], [self.p, chat_id, sid]))

    async def online(self, chat_id: str) -> list[RoomMember]:
        meta = await self.client.hgetall(self._room(chat_id, "meta"))
        members: list[tuple[float, str, str]] = []
        for uid, info in meta.items():
            name, _, joined = _text(info).partition(SEP)
            members.append((_num(joined), _text(uid), name))
        members.sort()
        return [RoomMember(uid, name, iso(joined)) for joined, uid, name in members]

    async def start_typing(self, chat_id: str, user: User, at: float, token: str) -> bool:
        keys = [self.key("typing", chat_id), self.node_key, self.nodes_key]
        args = [user.user_id, user.username, repr(at), token, self.tag, chat_id]
        return bool(await self._run(_TYPING_START, keys, args))

    async def stop_typing(self, chat_id: str, user_id: str, token: str = "") -> str | None:
        found = await self._run(_TYPING_STOP, [self.key("typing", chat_id)], [user_id, token])
        return None if found is None or found is False else _text(found)

    async def typing(self, chat_id: str) -> list[TypingUser]:
        entries = await self.client.hgetall(self.key("typing", chat_id))
        users: list[tuple[float, str, str]] = []
        for uid, value in entries.items():
            name, started, *_ = _text(value).split(SEP)
            users.append((_num(started), _text(uid), name))
        users.sort()
        return [TypingUser(uid, name, chat_id, iso(started)) for started, uid, name in users]

    # --- presence ------------------------------------------------------------------------------
    def _socks(self, user_id: str) -> str:
        return self.key("presence", "socks", user_id)

    def _user(self, user_id: str) -> str:
        return self.key("presence", "user", user_id)

    async def connected(self, user: User, sid: str, at: float, ip: str, user_agent: str) -> bool:
        """A socket connected; True when it is the user's first anywhere."""
        info = SEP.join([repr(at), ip, user_agent.replace(SEP, " "), self.tag])
        keys = [
            self._socks(user.user_id),
            self._user(user.user_id),
            self.key("presence", "online"),
            self.key("presence", "seen"),
            self.node_key,
            self.nodes_key,
        ]
        args = [sid, info, user.username, repr(at), user.user_id, self.tag]
        return bool(await self._run(_CONNECT, keys, args))

    async def disconnected(self, user_id: str, sid: str, at: float) -> bool:
        """A socket went away; True when it was the user's last anywhere."""
        args = [self.p, user_id, sid, repr(at)]
        return bool(await self._run(_DISCONNECT, [self.node_key], args))

    async def set_status(self, user_id: str, status: str, at: float) -> str | None:
        keys = [self._socks(user_id), self._user(user_id)]
        previous = await self._run(_SET_STATUS, keys, [status, repr(at)])
        return None if previous is None or previous is False else _text(previous)

    async def touch(self, user_id: str, at: float) -> None:
        await self._run(_TOUCH, [self._socks(user_id), self._user(user_id)], [repr(at)])

    async def _record(self, user_id: str) -> dict[str, str]:
        raw = await self.client.hgetall(self._user(user_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    def _presence(self, user_id: str, record: dict[str, str], online: bool) -> Presence:
        return Presence(
            user_id=user_id,
            username=record.get("username", user_id),
            status=record.get("status", "offline") if online else "offline",  # type: ignore[arg-type]
            last_seen=iso(_num(record.get("last_seen"))),
            connected_at=iso(_num(record.get("connected_at"))) if online else None,
        )

    async def online_users(self) -> list[Presence]:
        uids = await self.client.zrange(self.key("presence", "online"), 0, -1)
        found: list[Presence] = []
        for raw in uids:
            uid = _text(raw)
            found.append(self._presence(uid, await self._record(uid), True))
        return found

    async def statuses_of(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        out: dict[str, Presence] = {}
        for uid in user_ids:
            record = await self._record(uid)
            if record:
                sockets = await self.client.hlen(self._socks(uid))
                out[uid] = self._presence(uid, record, sockets > 0)
        return out

    async def user_status(self, user_id: str, viewer: User) -> PresenceDetail | None:
        record = await self._record(user_id)
        if not record:
            return None
        sockets = await self.client.hgetall(self._socks(user_id))
        latest: tuple[float, str, str, str] | None = None
        for sid, value in sockets.items():
            at, ip, agent, *_ = _text(value).split(SEP)
            candidate = (_num(at), _text(sid), ip, agent)
            if latest is None or candidate > latest:
                latest = candidate
        online = latest is not None
        base = self._presence(user_id, record, online)
        return PresenceDetail(
            user_id=user_id,
            username=base.username,
            status=base.status,
            last_seen=base.last_seen,
            connected_at=base.connected_at,
            email=None,
            socket_id=latest[1] if latest else None,
            socket_count=len(sockets),
            user_agent=latest[3] if latest else None,
            ip_address=latest[2] if latest and viewer.sees_ip_of(user_id) else None,
        )

    async def counts(self) -> PresenceCounts:
        total = await self.client.scard(self.key("presence", "seen"))
        counts = {"online": 0, "away": 0, "busy": 0}
        for presence in await self.online_users():
            if presence.status in counts:
                counts[presence.status] += 1
        online = sum(counts.values())
        return PresenceCounts(
            total_users=total,
            online_users=counts["online"],
            away_users=counts["away"],
            busy_users=counts["busy"],
            offline_users=max(0, total - online),
        )

    # --- nodes ---------------------------------------------------------------------------------
    async def nodes_with_state(self) -> list[str]:
        return [_text(t) for t in await self.client.smembers(self.nodes_key)]

    async def reap(self, tag: str, now: float) -> Reaped:
        """Take node ``tag``'s sockets out of every room and of presence (it is dead)."""
        entries = await self._run(
            _REAP, [self.node_key_of(tag), self.nodes_key], [self.p, tag, repr(now)]
        )
        offline: list[tuple[str, str]] = []
        left: dict[str, list[tuple[str, str]]] = {}
        typing: dict[str, list[tuple[str, str]]] = {}
        for raw in entries or []:
            kind, *fields = _text(raw).split(SEP)
            if kind == "p" and len(fields) == 2:
                offline.append((fields[0], fields[1]))
            elif kind == "r" and len(fields) == 3:
                left.setdefault(fields[0], []).append((fields[1], fields[2]))
            elif kind == "t" and len(fields) == 3:
                typing.setdefault(fields[0], []).append((fields[1], fields[2]))
        return Reaped(offline, left, typing)
