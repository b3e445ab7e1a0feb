"""The chat's rate limits counted in Redis, so that a cluster's nodes share them: 100 messages a
minute is 100 whichever nodes they reach, and an address blocked on one node is blocked on all.

Each limit is a sliding window (a sorted set of attempts scored by the service clock, trimmed
and counted by one Lua script: exact, like the in-process
:class:`~actors.ratelimit.SlidingWindowLimiter` a single node keeps). The keys expire on their
own a window after the last attempt. :class:`SharedGateActor` answers the gate's messages with
them; refusal counts are this node's.
"""

from __future__ import annotations

import itertools
from typing import Any

import coredis

from actors.chat.gate import (
    CONNECT_BLOCKED,
    HANDSHAKES_CAPPED,
    Allow,
    CheckHandshake,
    GateActor,
    GateConfig,
    GateStats,
    HandshakeFailed,
)
from actors.chat.wire import GateFigures
from actors.clock import Clock
from actors.runtime import handles

MESSAGE_WINDOW_SECONDS = 60.0
HANDSHAKE_WINDOW_SECONDS = 60.0

_FUNCTIONS = """
local function trim(key, now, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  return redis.call('ZCARD', key)
end
local function add(key, now, window, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
end
-- a failed attempt: counted; past the limit the address is blocked (returns 0)
local function fail(key, block, now, window, limit, member, block_seconds)
  if limit <= 0 then return 1 end
  if tonumber(redis.call('GET', block) or '0') > now then return 0 end
  if trim(key, now, window) >= limit then
    if block_seconds > 0 then
      local px = math.ceil(block_seconds * 1000) + 1000
      redis.call('SET', block, tostring(now + block_seconds), 'PX', px)
      redis.call('DEL', key)
    end
    return 0
  end
  add(key, now, window, member)
  return 1
end
"""

_ALLOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if trim(KEYS[1], now, window) >= limit then return 0 end
add(KEYS[1], now, window, ARGV[4])
return 1
"""

_FAILED = """
return fail(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
            tonumber(ARGV[5]))
"""

# 0: go ahead; 1: blocked (too many failed attempts); 2: over the handshake cap
_HANDSHAKE = """
local now, fwindow, flimit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local member, block_seconds = ARGV[4], tonumber(ARGV[5])
local hwindow, hlimit = tonumber(ARGV[6]), tonumber(ARGV[7])
if flimit > 0 then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > now then return 1 end
  if trim(KEYS[1], now, fwindow) >= flimit then
    fail(KEYS[1], KEYS[2], now, fwindow, flimit, member, block_seconds)
    return 1
  end
end
if hlimit > 0 then
  if trim(KEYS[3], now, hwindow) >= hlimit then
    fail(KEYS[1], KEYS[2], now, fwindow, flimit, member, block_seconds)
    return 2
  end
  add(KEYS[3], now, hwindow, member)
end
return 0
"""


class SharedGateActor(GateActor):
    """The gate of a cluster node: the same messages, counted in Redis."""

    def __init__(
        self, clock: Clock, config: GateConfig, client: coredis.Redis[bytes], prefix: str,
        tag: str,
    ) -> None:  # fmt: skip
        super().__init__(clock, config)
        self.config = config
        self.client = client
        self.p = f"{{{prefix}-chat}}:rate:"
        self.tag = tag
        self._ids = itertools.count()
        self._scripts: dict[str, Any] = {}
        self.blocks: dict[str, float] = {}  # addresses this node saw blocked -> until

    async def _run(self, body: str, keys: list[str], args: list[object]) -> int:
        script = self._scripts.get(body)
        if script is None:
            script = self._scripts[body] = self.client.register_script(_FUNCTIONS + body)
        return int(await script(keys=keys, args=[str(a) for a in args]))

    def _member(self, now: float) -> str:
        return f"{now!r}:{self.tag}:{next(self._ids)}"

    @handles(Allow)
    async def _allow(self, message: Allow) -> None:
        limit = (
            self.config.message_rate_per_minute
            if message.kind == "message"
            else self.config.typing_rate_per_minute
        )
        if limit <= 0:
            message.reply.send(True)
            return
        now = self.clock.now()
        key = f"{self.p}{message.kind}:{message.user_id}"
        args: list[object] = [repr(now), MESSAGE_WINDOW_SECONDS, limit, self._member(now)]
        allowed = await self._run(_ALLOW, [key], args) == 1
        if not allowed:
            limiter = self.messages if message.kind == "message" else self.typing
            limiter.refused += 1
        message.reply.send(allowed)

    def _ip_keys(self, ip: str) -> list[str]:
        return [f"{self.p}failed:{ip}", f"{self.p}blocked:{ip}", f"{self.p}handshakes:{ip}"]

    @handles(CheckHandshake)
    async def _check_handshake(self, message: CheckHandshake) -> None:
        c = self.config
        now = self.clock.now()
        args: list[object] = [
            repr(now), c.connect_window_seconds, c.connect_attempts, self._member(now),
            c.connect_block_seconds, HANDSHAKE_WINDOW_SECONDS, c.handshakes_per_minute,
        ]  # fmt: skip
        verdict = await self._run(_HANDSHAKE, self._ip_keys(message.ip), args)
        if verdict == 0:
            message.reply.send(None)
            return
        if verdict == 1:
            self.failures.refused += 1
            self.blocks[message.ip] = now + c.connect_block_seconds
            message.reply.send(CONNECT_BLOCKED)
        else:
            self.handshakes.refused += 1
            message.reply.send(HANDSHAKES_CAPPED)

    @handles(HandshakeFailed)
    async def _handshake_failed(self, message: HandshakeFailed) -> None:
        c = self.config
        if c.connect_attempts <= 0:
            return
        now = self.clock.now()
        keys = self._ip_keys(message.ip)[:2]
        args: list[object] = [
            repr(now), c.connect_window_seconds, c.connect_attempts, self._member(now),
            c.connect_block_seconds,
        ]  # fmt: skip
        if await self._run(_FAILED, keys, args) == 0:
            self.blocks[message.ip] = now + c.connect_block_seconds

    @handles(GateStats)
    async def _stats(self, message: GateStats) -> None:
        now = self.clock.now()
        message.reply.send(
            GateFigures(
                messages_refused=self.messages.refused,
                typing_refused=self.typing.refused,
                handshakes_refused=self.failures.refused + self.handshakes.refused,
                blocked_addresses=sum(1 for t in self.blocks.values() if t > now),
            )
        )
