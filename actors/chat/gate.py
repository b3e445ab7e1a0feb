"""The chat rate limits, owned by one actor (sliding windows on the service clock).

* messages per user per minute and typing events per user per minute (all of a user's sockets
  together);
* connection attempts per IP: a failed or refused handshake counts; past
  ``connect_attempts`` within ``connect_window_seconds`` the IP is refused for
  ``connect_block_seconds``, whatever token it presents;
* a separate, generous cap on every handshake per IP per minute.

Each limit is a setting; 0 disables it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from actors.chat.wire import GateFigures
from actors.clock import Clock
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import Actor, Reply, handles

Kind = Literal["message", "typing"]

CONNECT_BLOCKED = "Too many connection attempts. Please try again later."
HANDSHAKES_CAPPED = "Too many connections from this address. Please slow down."


@dataclass(frozen=True, slots=True)
class GateConfig:
    message_rate_per_minute: int = 100
    typing_rate_per_minute: int = 10
    connect_attempts: int = 5
    connect_window_seconds: float = 300.0
    connect_block_seconds: float = 900.0
    handshakes_per_minute: int = 600


@dataclass(frozen=True, slots=True)
class Allow:
    kind: Kind
    user_id: str
    reply: Reply[bool]


@dataclass(frozen=True, slots=True)
class CheckHandshake:
    ip: str
    reply: Reply[str | None]  # a refusal message, or None: go ahead


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    ip: str


@dataclass(frozen=True, slots=True)
class GateStats:
    reply: Reply[GateFigures]


class GateActor(Actor):
    kind = "chat-gate"
    mailbox_size = 4096

    def __init__(self, clock: Clock, config: GateConfig) -> None:
        super().__init__()
        now = clock.now
        self.messages = SlidingWindowLimiter(config.message_rate_per_minute, 60.0, now)
        self.typing = SlidingWindowLimiter(config.typing_rate_per_minute, 60.0, now)
        self.failures = SlidingWindowLimiter(
            config.connect_attempts,
            config.connect_window_seconds,
            now,
            block_seconds=config.connect_block_seconds,
        )
        self.handshakes = SlidingWindowLimiter(config.handshakes_per_minute, 60.0, now)
        self.clock = clock
        self.checks = 0

    @handles(Allow)
    async def _allow(self, message: Allow) -> None:
        limiter = self.messages if message.kind == "message" else self.typing
        message.reply.send(limiter.allow(message.user_id))
        self.checks += 1
        if self.checks % 4096 == 0:
            for lim in (self.messages, self.typing, self.failures, self.handshakes):
                lim.prune()

    @handles(CheckHandshake)
    async def _check_handshake(self, message: CheckHandshake) -> None:
        ip = message.ip
        failures = self.failures
        if failures.enabled:
            until = failures.blocked_until.get(ip)
            if until is not None and until > self.clock.now():
                failures.refused += 1
                message.reply.send(CONNECT_BLOCKED)
                return
            if failures.remaining(ip) <= 0:  # the attempts are used up: this one blocks
                failures.allow(ip)
                message.reply.send(CONNECT_BLOCKED)
                return
        if not self.handshakes.allow(ip):
            failures.allow(ip)  # a refused handshake counts as a failed attempt
            message.reply.send(HANDSHAKES_CAPPED)
            return
        message.reply.send(None)

    @handles(HandshakeFailed)
    async def _handshake_failed(self, message: HandshakeFailed) -> None:
        self.failures.allow(message.ip)

    @handles(GateStats)
    async def _stats(self, message: GateStats) -> None:
        now = self.clock.now()
        message.reply.send(
            GateFigures(
                messages_refused=self.messages.refused,
                typing_refused=self.typing.refused,
                handshakes_refused=self.failures.refused + self.handshakes.refused,
                blocked_addresses=sum(1 for t in self.failures.blocked_until.values() if t > now),
            )
        )
