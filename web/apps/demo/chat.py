"""The demo's chat: a few users connected to ``/chat`` as real Socket.IO clients, talking and
typing in the chat "Demo room".

The room is created once through ``POST /api/chats`` by ``demo-host``, with the ``admin`` user of
``serve``'s token as a participant so the dashboard lists it. Each user stays a few minutes,
leaves and comes back (presence changes); the first one stays an hour or two. A message every
few seconds, after a short ``message:typing``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable

import msgspec
import trio

from web.apps.demo.clients import (
    DemoHTTPError,
    Server,
    SocketIOClient,
    SocketIOError,
    socketio_client,
    succeeded,
)
from web.apps.demo.marks import DEMO_CHAT_HOST, DEMO_CHAT_NAME

log = logging.getLogger("switchboard.demo")

DASHBOARD_USER = "admin"  # the user of the token `serve` prints
CHAT_USERS = (("demo-alice", "Alice"), ("demo-bob", "Bob"), ("demo-carol", "Carol"))
CHAT_LINES = [
    "Morning! Anyone looked at the dashboard today?",
    "Traffic from Germany is up again.",
    "The pricing page converts better since the redesign.",
    "Deploying the new docs in five minutes.",
    "Who broke the staging build? 😅",
    "Looks like mobile is catching up with web.",
    "Lunch at 12:30?",
    "I'll take the checkout bug.",
    "Purchases are trickling in, nice.",
    "Can someone review my PR on the search page?",
    "The blog post on trio got picked up by HN!",
    "Coffee first, then the retro.",
    "Latency looks flat, good sign.",
    "Signups doubled compared to yesterday.",
]


# --- what the demo sends -------------------------------------------------------------------------
class NewChat(msgspec.Struct):
    name: str
    description: str
    participants: list[str]


class JoinChat(msgspec.Struct, rename="camel"):
    chat_id: str


class Typing(msgspec.Struct, rename="camel"):
    chat_id: str
    is_typing: bool


class SendMessage(msgspec.Struct, rename="camel"):
    chat_id: str
    content: str


class PresenceStatus(msgspec.Struct):
    status: str


# --- what it reads of the answers ----------------------------------------------------------------
class _Chat(msgspec.Struct, rename="camel"):
    name: str | None = None
    chat_id: str | None = None
    id: str | None = None

    @property
    def key(self) -> str:
        return str(self.chat_id or self.id)


class _Chats(msgspec.Struct):
    chats: list[_Chat] = []


class _Created(msgspec.Struct):
    chat: _Chat


class DemoChat:
    """The chat part of the demo."""

    def __init__(self, server: Server, token: Callable[[str], str], rng: random.Random) -> None:
        self.server = server
        self.token = token
        self.rng = rng
        self.clients: dict[str, SocketIOClient] = {}
        self.sent = 0

    async def chat_id(self) -> str | None:
        """The id of the demo chat, created on first use; None when chat is not installed."""
        token = self.token(DEMO_CHAT_HOST)
        status, answer = await self.server.request("GET", "/api/chats", None, token)
        if status == 404:
            return None
        if status >= 400:
            raise DemoHTTPError(status, answer)
        for chat in msgspec.convert(answer, _Chats).chats:
            if chat.name == DEMO_CHAT_NAME:
                return chat.key
        room = NewChat(
            name=DEMO_CHAT_NAME,
            description="Simulated users talking (switchboard serve --demo)",
            participants=[user for user, _ in CHAT_USERS] + [DASHBOARD_USER],
        )
        created = await self.server.call("POST", "/api/chats", _Created, room, token)
        return created.chat.key

    async def run(self) -> str | None:
        chat_id = await self.chat_id()
        if chat_id is None:
            log.info("demo: no chat application on this server; the demo chat is skipped")
            return "unavailable"
        self.clients.clear()
        async with trio.open_nursery() as nursery:
            for n, (user, _name) in enumerate(CHAT_USERS):
                nursery.start_soon(self._member, user, chat_id, n == 0)
                await trio.sleep(self.rng.uniform(0.3, 1.0))
            await self._conversation(chat_id)
        return None

    async def _member(self, user: str, chat_id: str, stays: bool) -> None:
        """One simulated user: connects, joins the demo room, talks when picked, leaves after a
        few minutes (the first one after an hour or two) and comes back (presence changes)."""
        while True:
            async with socketio_client(self.server.ws_url, "/chat", self.token(user)) as client:
                joined = await client.call("join:chat", JoinChat(chat_id))
                if not succeeded(joined):
                    raise SocketIOError(f"join:chat refused for {user}: {joined!r}")
                self.clients[user] = client
                try:
                    stay = (3600.0, 7200.0) if stays else (60.0, 180.0)
                    await trio.sleep(self.rng.uniform(*stay))
                finally:
                    self.clients.pop(user, None)
            await trio.sleep(self.rng.uniform(10.0, 25.0))

    async def _conversation(self, chat_id: str) -> None:
        rng = self.rng
        lines = CHAT_LINES[:]
        rng.shuffle(lines)
        for n in itertools.count():
            await trio.sleep(rng.uniform(3.0, 7.0))
            if not self.clients:
                continue
            user, client = rng.choice(sorted(self.clients.items()))
            if n % 9 == 8:  # now and then someone steps away or comes back
                status = rng.choice(["away", "busy", "online"])
                await client.call("presence:update-status", PresenceStatus(status))
                continue
            await client.call("message:typing", Typing(chat_id, True))
            await trio.sleep(rng.uniform(1.0, 2.5))
            if self.clients.get(user) is not client:
                continue  # left while typing
            answer = await client.call("message:send", SendMessage(chat_id, lines[n % len(lines)]))
            if succeeded(answer):
                self.sent += 1
            else:
                log.warning("demo chat: %s could not send: %r", user, answer)
