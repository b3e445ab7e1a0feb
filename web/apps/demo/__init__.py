"""Demo traffic: ``switchboard serve --demo`` makes the server busy, through its public APIs only.

A task in the server's nursery plays, over loopback:

* **visitors**: simulated people browsing a small site (pageviews with a journey per session,
  countries, devices, referrers), posted with ``POST /api/events`` (real HTTP to this server, the
  same code path as any website's tracker);
* **product events** (``login``, ``search``, ``add_to_cart``, ``signup``, ``purchase`` ...), posted
  the same way, a signup or purchase when a visitor reaches that page;
* **history**: when the log has no events in the 23 hours before this one (a fresh data folder),
  a day of past visits is posted first (``POST /api/events/batch`` with past ``timestamp``s, at
  most 3,000 events), so the 24 h chart has a shape from the first minute;
* **chat**: a few users (``demo-alice``, ``demo-bob``, ``demo-carol``) connected to ``/chat`` as
  real Socket.IO clients (a small Engine.IO v4 / Socket.IO v5 client over trio-websocket), talking
  and typing in the chat "Demo room" (created once through ``POST /api/chats``, with the ``admin``
  user of ``serve``'s token as a participant so the dashboard lists it);
* **guild**: a bot (``demo-bot``) posting message, typing, presence, reaction, role and join events
  for the guild ``demo-guild`` with ``POST /api/guilds/demo-guild/events``.

Rates: about ``demo_events_per_second`` analytics events per second (default 3), a chat message
every few seconds, a guild batch every 1 to 2.5 s; everything bounded, nothing queued. Parts whose
application is not installed (no chat, no guild routes) are skipped with a log line. The task
stops with the server (graceful stop) and never takes it down: a failure is logged and retried.

Everything the demo makes is marked so that ``switchboard reset-demo`` can delete it while the
server is stopped (:func:`reset_demo`): session ids and user ids start with ``demo-``, events carry
``demo: true`` in their ``metadata``/``properties``, the chat is created by ``demo-host``, the guild
is ``demo-guild``.

The demo needs to reach the server, so ``--demo`` needs a fixed ``--port`` (not 0).

The parts are :mod:`~web.apps.demo.visitors`, :mod:`~web.apps.demo.chat` and
:mod:`~web.apps.demo.guild`, over the loopback clients of :mod:`~web.apps.demo.clients`;
:mod:`~web.apps.demo.reset` is ``switchboard reset-demo``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio_websocket

from web.apps.demo.chat import CHAT_USERS, DemoChat
from web.apps.demo.clients import DemoHTTPError, Server, SocketIOError
from web.apps.demo.guild import DemoGuild
from web.apps.demo.marks import DEMO_BOT, DEMO_GUILD
from web.apps.demo.reset import reset_demo, reset_demo_command
from web.apps.demo.visitors import Visitors
from web.platform.runtime import Runtime

__all__ = ["DemoStats", "DemoTraffic", "reset_demo", "reset_demo_command"]

log = logging.getLogger("switchboard.demo")

TOKEN_TTL_SECONDS = 86400

_EXPECTED = (
    OSError,
    trio.TooSlowError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    SocketIOError,
    DemoHTTPError,
)


@dataclass
class DemoStats:
    """What the demo did (logged on stop)."""

    events: int = 0
    chat_messages: int = 0
    guild_events: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class DemoTraffic:
    """The demo traffic: built by the composition root when ``demo`` is on; starts and stops
    with the server."""

    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.settings = s
        self.rng = random.Random()
        self.server = Server(s.host, int(s.port), s.engineio_path)
        self.failures: dict[str, int] = {}
        self.scope = trio.CancelScope()
        self.visitors = Visitors(
            self.server, self.token, runtime.clock, self.rng, s.demo_events_per_second
        )
        self.chat = DemoChat(self.server, self.token, self.rng)
        self.guild = DemoGuild(self.server, self.token, self.rng)
        runtime.on_start(self.start)
        runtime.on_stop(self.stop)

    @property
    def stats(self) -> DemoStats:
        return DemoStats(self.visitors.sent, self.chat.sent, self.guild.sent, dict(self.failures))

    def token(self, user: str) -> str:
        """A fresh token for a demo user (each connection and request gets one, so a server that
        runs for weeks never sends an expired token)."""
        issue = self.runtime.authenticator.issue
        if user == DEMO_BOT:
            return str(
                issue(
                    user,
                    name="Demo bot",
                    role="bot",
                    guilds=[DEMO_GUILD],
                    ttl_seconds=TOKEN_TTL_SECONDS,
                )
            )
        name = dict(CHAT_USERS).get(user, "Demo host")
        return str(issue(user, name=name, role="user", ttl_seconds=TOKEN_TTL_SECONDS))

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.run)
        log.info("demo: traffic starts (about %s events/s)", self.settings.demo_events_per_second)

    async def stop(self) -> None:
        self.scope.cancel()
        stats = self.stats
        log.info(
            "demo: stopped after %d events, %d chat messages, %d guild events",
            stats.events, stats.chat_messages, stats.guild_events,
        )  # fmt: skip

    async def run(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forever, "analytics", self.visitors.run)
                nursery.start_soon(self._forever, "chat", self.chat.run)
                nursery.start_soon(self._forever, "guild", self.guild.run)

    async def _forever(self, part: str, job: Callable[[], Awaitable[str | None]]) -> None:
        """Run one part of the demo; a failure is logged and the part starts again later. A
        part that says ``"unavailable"`` (its application is not installed) is not retried."""
        backoff = 1.0
        while not self.runtime.draining:
            try:
                if await job() == "unavailable":
                    return
                backoff = 1.0
            except Exception as err:
                if self.runtime.draining:  # the server is stopping: its sockets close under us
                    return
                self.failures[part] = self.failures.get(part, 0) + 1
                if _expected(err):
                    log.warning("demo %s: %s (retrying in %.0fs)", part, _reason(err), backoff)
                else:
                    log.exception("demo %s failed (retrying in %.0fs)", part, backoff)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


def _expected(err: BaseException) -> bool:
    """Network trouble and refusals (worth a line), not bugs (worth a traceback)."""
    return all(isinstance(leaf, _EXPECTED) for leaf in _leaves(err))


def _reason(err: BaseException) -> str:
    return "; ".join(str(leaf) or type(leaf).__name__ for leaf in _leaves(err))
