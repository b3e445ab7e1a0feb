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
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import secrets
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h11
import msgspec
import trio
import trio_websocket

from web.platform.runtime import Runtime

log = logging.getLogger("switchboard.demo")

DEMO_PREFIX = "demo-"
DEMO_GUILD = "demo-guild"
DEMO_CHAT_NAME = "Demo room"
DEMO_CHAT_HOST = "demo-host"
DASHBOARD_USER = "admin"  # the user of the token `serve` prints
CHAT_USERS = (("demo-alice", "Alice"), ("demo-bob", "Bob"), ("demo-carol", "Carol"))
TOKEN_TTL_SECONDS = 86400
BACKFILL_BATCH = 500
BACKFILL_MAX_EVENTS = 3000

_encode = msgspec.json.encode
_decode = msgspec.json.decode


# --- what the simulated people do -----------------------------------------------------------------
PAGES: dict[str, list[tuple[str, int]]] = {  # page -> next pages with weights ("" = leave)
    "/": [("/features", 4), ("/pricing", 4), ("/blog", 3), ("/docs", 2), ("", 2)],
    "/features": [("/pricing", 5), ("/docs", 3), ("/", 1), ("", 2)],
    "/pricing": [("/signup", 4), ("/checkout", 2), ("/features", 2), ("", 3)],
    "/blog": [("/blog/realtime-on-trio", 3), ("/", 2), ("/features", 2), ("", 3)],
    "/blog/realtime-on-trio": [("/features", 2), ("/docs", 2), ("", 4)],
    "/docs": [("/docs/quickstart", 4), ("/pricing", 2), ("", 2)],
    "/docs/quickstart": [("/signup", 3), ("/docs", 1), ("", 3)],
    "/signup": [("/checkout", 3), ("/docs/quickstart", 2), ("", 2)],
    "/checkout": [("/", 1), ("", 5)],
}
ENTRY_PAGES = [("/", 6), ("/blog/realtime-on-trio", 2), ("/pricing", 2), ("/docs", 1)]
COUNTRIES = [
    ("US", 30), ("DE", 12), ("IN", 12), ("GB", 9), ("BR", 8), ("FR", 7), ("JP", 6),
    ("EG", 5), ("CA", 5), ("NG", 3), ("AU", 3),
]  # fmt: skip
DEVICES = [("web", 5), ("mobile", 4), ("tablet", 1)]
REFERRERS = [
    ("google.com", 10), ("direct", 6), ("twitter.com", 3), ("news.ycombinator.com", 3),
    ("github.com", 3), ("reddit.com", 2), ("duckduckgo.com", 1),
]  # fmt: skip
PRODUCT_EVENTS = [
    ("login", 8), ("search", 6), ("add_to_cart", 4), ("logout", 3), ("share", 2),
    ("purchase", 1), ("signup", 1),
]  # fmt: skip
CONVERSION_PAGES = {"/signup": "signup", "/checkout": "purchase"}

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
GUILD_MEMBERS = [
    ("u100", "nightowl"), ("u101", "pixel"), ("u102", "quietfox"), ("u103", "marble"),
    ("u104", "tinkerer"), ("u105", "lurkr"), ("u106", "echo"), ("u107", "sprout"),
]  # fmt: skip
GUILD_CHANNELS = [("c1", "general"), ("c2", "random"), ("c3", "dev"), ("c4", "support")]
GUILD_ROLES = ["member", "helper", "moderator", "contributor"]
PLATFORMS = ["desktop", "mobile", "web"]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, weights = zip(*weighted, strict=True)
    chosen: str = rng.choices(values, weights)[0]
    return chosen


# --- a tiny HTTP/1.1 client (h11) and a tiny Socket.IO client, both over loopback -----------------
class DemoHTTPError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


async def http_json(
    host: str, port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One request (``Connection: close``); returns the status and the decoded JSON body."""
    payload = b"" if body is None else _encode(body)
    headers = [("Host", f"{host}:{port}"), ("Connection", "close"), ("User-Agent", "sb-demo")]
    if body is not None:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        out = conn.send(h11.Request(method=method, target=path, headers=headers))
        out += conn.send(h11.Data(data=payload)) if payload else b""
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        status = 0
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    raw = b"".join(chunks)
    try:
        return status, _decode(raw) if raw else None
    except msgspec.DecodeError:
        return status, raw.decode("utf-8", "replace")


class SocketIOError(Exception):
    pass


class SocketIOClient:
    """One Socket.IO namespace over one Engine.IO WebSocket: ``emit`` and ``call`` (with ack)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, namespace: str) -> None:
        self.ws = ws
        self.namespace = namespace
        self._prefix = "" if namespace == "/" else f"{namespace},"
        self._ack_ids = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[Any]]] = {}
        self.received: list[tuple[str, list[Any]]] = []  # the last few events, for debugging
        self.on_event: Callable[[str, list[Any]], None] | None = None

    async def emit(self, event: str, *args: Any) -> None:
        await self.ws.send_message(f"42{self._prefix}" + _encode([event, *args]).decode())

    async def call(self, event: str, *args: Any, timeout: float = 15.0) -> Any:
        ack_id = next(self._ack_ids)
        done = trio.Event()
        slot: list[Any] = []
        self._waiting[ack_id] = (done, slot)
        try:
            await self.ws.send_message(
                f"42{self._prefix}{ack_id}" + _encode([event, *args]).decode()
            )
            with trio.fail_after(timeout):
                await done.wait()
        finally:
            self._waiting.pop(ack_id, None)
        return slot[0] if slot else None

    async def read(self) -> None:
        """Answer pings, resolve acks, note events; raises when the server closes."""
        while True:
            message = await self.ws.get_message()
            if not isinstance(message, str) or not message:
                continue
            if message == "2":
                await self.ws.send_message("3")
            elif message[0] == "1":
                raise SocketIOError("the server closed the connection")
            elif message.startswith("4"):
                self._packet(message[1:])

    def _packet(self, text: str) -> None:
        kind, rest = text[:1], text[1:]
        if not rest.startswith(self._prefix):
            return
        rest = rest[len(self._prefix) :]
        if kind == "3":  # ACK: <id>[args]
            digits = len(rest) - len(rest.lstrip("0123456789"))
            waiter = self._waiting.get(int(rest[:digits] or "0"))
            if waiter is not None:
                args = _decode(rest[digits:])
                waiter[1].append(args[0] if args else None)
                waiter[0].set()
        elif kind == "2":  # EVENT: [name, args...]
            start = len(rest) - len(rest.lstrip("0123456789"))
            data = _decode(rest[start:])
            if isinstance(data, list) and data and isinstance(data[0], str):
                self.received = [*self.received[-19:], (data[0], data[1:])]
                if self.on_event is not None:
                    self.on_event(data[0], data[1:])


@asynccontextmanager
async def socketio_client(
    url: str, namespace: str, token: str, *, timeout: float = 15.0
) -> AsyncIterator[SocketIOClient]:
    """Connect (Engine.IO v4 over WebSocket), join ``namespace`` with ``auth.token``, and keep
    reading until the block ends. Raises :class:`SocketIOError` when the namespace refuses."""
    async with trio_websocket.open_websocket_url(url) as ws:
        client = SocketIOClient(ws, namespace)
        with trio.fail_after(timeout):
            opened = await ws.get_message()
            if not isinstance(opened, str) or not opened.startswith("0"):
                raise SocketIOError(f"unexpected Engine.IO open packet {opened!r}")
            await ws.send_message(f"40{client._prefix}" + _encode({"token": token}).decode())
            while True:
                reply = await ws.get_message()
                if reply == "2":
                    await ws.send_message("3")
                elif isinstance(reply, str) and reply.startswith(f"44{client._prefix}"):
                    raise SocketIOError(f"{namespace} refused the connection: {reply}")
                elif isinstance(reply, str) and reply.startswith(f"40{client._prefix}"):
                    break
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.read)
            yield client
            nursery.cancel_scope.cancel()


# --- the demo task --------------------------------------------------------------------------------
@dataclass
class Visitor:
    session_id: str
    country: str
    device: str
    referrer: str
    page: str
    user_id: str | None = None
    pages_left: int = 6


@dataclass
class DemoStats:
    """What the demo did (logged on stop, read by tests)."""

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
        self.host = _loopback(s.host)
        self.port = int(s.port)
        self.stats = DemoStats()
        self.scope = trio.CancelScope()
        self.visitors: list[Visitor] = []
        self.chat_clients: dict[str, SocketIOClient] = {}
        self.backfilled = False
        self.users = [f"demo-user-{i}" for i in range(1, 41)]
        runtime.on_start(self.start)
        runtime.on_stop(self.stop)

    def token(self, user: str) -> str:
        """A fresh token for a demo user (each connection and request gets one, so a server that
        runs for weeks never sends an expired token)."""
        names = dict(CHAT_USERS)
        if user == "demo-bot":
            return str(
                self.runtime.authenticator.issue(
                    user,
                    name="Demo bot",
                    role="bot",
                    guilds=[DEMO_GUILD],
                    ttl_seconds=TOKEN_TTL_SECONDS,
                )
            )
        return str(
            self.runtime.authenticator.issue(
                user, name=names.get(user, "Demo host"), role="user", ttl_seconds=TOKEN_TTL_SECONDS
            )
        )

    @property
    def ws_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.settings.engineio_path}?EIO=4&transport=websocket"

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.run)
        log.info("demo: traffic starts (about %s events/s)", self.settings.demo_events_per_second)

    async def stop(self) -> None:
        self.scope.cancel()
        log.info(
            "demo: stopped after %d events, %d chat messages, %d guild events",
            self.stats.events, self.stats.chat_messages, self.stats.guild_events,
        )  # fmt: skip

    async def run(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forever, "analytics", self._analytics)
                nursery.start_soon(self._forever, "chat", self._chat)
                nursery.start_soon(self._forever, "guild", self._guild)

    async def _forever(self, part: str, job: Callable[[], Any]) -> None:
        """Run one part of the demo; a failure is logged and the part starts again later."""
        backoff = 1.0
        while not self.runtime.draining:
            try:
                if await job() == "unavailable":
                    return
                backoff = 1.0
            except Exception as err:
                if self.runtime.draining:  # the server is stopping: its sockets close under us
                    return
                self.stats.failures[part] = self.stats.failures.get(part, 0) + 1
                if _expected(err):
                    log.warning("demo %s: %s (retrying in %.0fs)", part, _reason(err), backoff)
                else:
                    log.exception("demo %s failed (retrying in %.0fs)", part, backoff)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _http(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> Any:
        status, answer = await http_json(self.host, self.port, method, path, body, token)
        if status >= 400:
            raise DemoHTTPError(status, answer)
        return answer

    # --- visitors and product events --------------------------------------------------------------
    async def _analytics(self) -> None:
        rate = self.settings.demo_events_per_second
        if rate <= 0:
            return
        if not self.backfilled:
            await self._backfill()
            self.backfilled = True
        while True:
            await trio.sleep(self.rng.expovariate(rate))
            await self._http("POST", "/api/events", self.next_event())
            self.stats.events += 1

    async def _backfill(self) -> None:
        """On a log with no earlier hours, post a day of past demo visits (``timestamp`` in the
        past, through ``POST /api/events/batch``) so the 24 h chart has a shape from the start."""
        dashboard = await self._http(
            "GET", "/api/metrics/dashboard", token=self.token(DEMO_CHAT_HOST)
        )
        if any(bucket["events"] for bucket in dashboard["eventVolumeData"][:-1]):
            return
        events = self.history(self.runtime.clock.now())
        for start in range(0, len(events), BACKFILL_BATCH):
            batch = events[start : start + BACKFILL_BATCH]
            await self._http("POST", "/api/events/batch", {"events": batch})
            self.stats.events += len(batch)
        log.info("demo: posted %d past demo events for the last 24 h", len(events))

    def history(self, now: float) -> list[dict[str, Any]]:
        """Simulated visits over the 23 clock hours before this one (busier in the afternoon
        UTC), each event with its past ``timestamp``; at most ``BACKFILL_MAX_EVENTS``."""
        rng = random.Random(int(now) // 3600)
        this_hour = now - now % 3600
        events: list[dict[str, Any]] = []
        for hours_ago in range(23, 0, -1):
            hour_start = this_hour - hours_ago * 3600
            hour_of_day = int(hour_start // 3600) % 24
            busy = 0.35 + 0.65 * math.exp(-(((hour_of_day - 16) / 5.0) ** 2))
            for _ in range(int(rng.uniform(10, 16) * busy)):  # visits this hour
                at = hour_start + rng.uniform(0, 3300)
                for event in self._visit(rng):
                    at += rng.uniform(5, 60)
                    event["timestamp"] = _iso(min(at, now - 1))
                    events.append(event)
        return events[-BACKFILL_MAX_EVENTS:]

    def _visit(self, rng: random.Random) -> list[dict[str, Any]]:
        """One whole visit: pageviews along the site's links, a conversion now and then."""
        v = Visitor(
            session_id=DEMO_PREFIX + secrets.token_hex(6),
            country=_pick(rng, COUNTRIES),
            device=_pick(rng, DEVICES),
            referrer=_pick(rng, REFERRERS),
            page=_pick(rng, ENTRY_PAGES),
        )
        out = [self._pageview(v)]
        for _ in range(rng.randint(1, 6)):
            following = _pick(rng, PAGES.get(v.page, [("", 1)]))
            if not following:
                break
            v.page = following
            out.append(self._pageview(v))
            if following in CONVERSION_PAGES and rng.random() < 0.6:
                out.append(self._product_event(v, CONVERSION_PAGES[following]))
            elif rng.random() < 0.2:
                out.append(self._product_event(v, _pick(rng, PRODUCT_EVENTS)))
        return out

    def next_event(self) -> dict[str, Any]:
        """The next thing a simulated person does: mostly pageviews, some product events."""
        rng = self.rng
        if rng.random() < 0.25 and self.visitors:
            visitor = rng.choice(self.visitors)
            return self._product_event(visitor, _pick(rng, PRODUCT_EVENTS))
        if len(self.visitors) < 4 or (len(self.visitors) < 14 and rng.random() < 0.3):
            visitor = Visitor(
                session_id=DEMO_PREFIX + secrets.token_hex(6),
                country=_pick(rng, COUNTRIES),
                device=_pick(rng, DEVICES),
                referrer=_pick(rng, REFERRERS),
                page=_pick(rng, ENTRY_PAGES),
                pages_left=rng.randint(2, 7),
            )
            self.visitors.append(visitor)
        else:
            visitor = rng.choice(self.visitors)
            following = _pick(rng, PAGES.get(visitor.page, [("", 1)]))
            visitor.pages_left -= 1
            if not following or visitor.pages_left <= 0:
                self.visitors.remove(visitor)
                return self.next_event() if self.visitors else self._pageview(visitor)
            visitor.page = following
            if following in CONVERSION_PAGES:
                visitor.user_id = visitor.user_id or rng.choice(self.users)
                if rng.random() < 0.6:
                    return self._product_event(visitor, CONVERSION_PAGES[following])
        return self._pageview(visitor)

    def _pageview(self, v: Visitor) -> dict[str, Any]:
        metadata: dict[str, Any] = {"device": v.device, "demo": True}
        if v.referrer != "direct":
            metadata["referrer"] = v.referrer
        return {
            "type": "pageview",
            "page": v.page,
            "session_id": v.session_id,
            "country": v.country,
            "metadata": metadata,
        }

    def _product_event(self, v: Visitor, name: str) -> dict[str, Any]:
        v.user_id = v.user_id or self.rng.choice(self.users)
        properties: dict[str, Any] = {"demo": True, "page": v.page}
        if name == "purchase":
            properties["amount"] = self.rng.choice([9, 19, 49, 99, 199])
        event = {
            "eventName": name,
            "userId": v.user_id,
            "session_id": v.session_id,
            "country": v.country,
            "device": v.device,
            "properties": properties,
        }
        if v.referrer != "direct":
            event["referrer"] = v.referrer
        return event

    # --- chat -------------------------------------------------------------------------------------
    async def demo_chat_id(self) -> str | None:
        """The id of the demo chat, created on first use; None when chat is not installed."""
        token = self.token(DEMO_CHAT_HOST)
        status, answer = await http_json(self.host, self.port, "GET", "/api/chats", None, token)
        if status == 404:
            return None
        if status >= 400:
            raise DemoHTTPError(status, answer)
        for chat in answer.get("chats", []):
            if chat.get("name") == DEMO_CHAT_NAME:
                return str(chat.get("chatId") or chat.get("id"))
        created = await self._http(
            "POST",
            "/api/chats",
            {
                "name": DEMO_CHAT_NAME,
                "description": "Simulated users talking (switchboard serve --demo)",
                "participants": [user for user, _ in CHAT_USERS] + [DASHBOARD_USER],
            },
            token,
        )
        chat = created["chat"]
        return str(chat.get("chatId") or chat.get("id"))

    async def _chat(self) -> str | None:
        chat_id = await self.demo_chat_id()
        if chat_id is None:
            log.info("demo: no chat application on this server; the demo chat is skipped")
            return "unavailable"
        self.chat_clients.clear()
        async with trio.open_nursery() as nursery:
            for n, (user, _name) in enumerate(CHAT_USERS):
                nursery.start_soon(self._chat_member, user, chat_id, n == 0)
                await trio.sleep(self.rng.uniform(0.3, 1.0))
            await self._conversation(chat_id)
        return None

    async def _chat_member(self, user: str, chat_id: str, stays: bool) -> None:
        """One simulated user: connects, joins the demo room, talks when picked, leaves after a
        few minutes (the first one after an hour or two) and comes back (presence changes)."""
        while True:
            async with socketio_client(self.ws_url, "/chat", self.token(user)) as client:
                joined = await client.call("join:chat", {"chatId": chat_id})
                if not isinstance(joined, dict) or not joined.get("success"):
                    raise SocketIOError(f"join:chat refused for {user}: {joined!r}")
                self.chat_clients[user] = client
                try:
                    stay = (3600.0, 7200.0) if stays else (60.0, 180.0)
                    await trio.sleep(self.rng.uniform(*stay))
                finally:
                    self.chat_clients.pop(user, None)
            await trio.sleep(self.rng.uniform(10.0, 25.0))

    async def _conversation(self, chat_id: str) -> None:
        rng = self.rng
        lines = CHAT_LINES[:]
        rng.shuffle(lines)
        for n in itertools.count():
            await trio.sleep(rng.uniform(3.0, 7.0))
            if not self.chat_clients:
                continue
            user, client = rng.choice(sorted(self.chat_clients.items()))
            if n % 9 == 8:  # now and then someone steps away or comes back
                status = rng.choice(["away", "busy", "online"])
                await client.call("presence:update-status", {"status": status})
                continue
            await client.call("message:typing", {"chatId": chat_id, "isTyping": True})
            await trio.sleep(rng.uniform(1.0, 2.5))
            if self.chat_clients.get(user) is not client:
                continue  # left while typing
            answer = await client.call(
                "message:send", {"chatId": chat_id, "content": lines[n % len(lines)]}
            )
            if isinstance(answer, dict) and answer.get("success"):
                self.stats.chat_messages += 1
            else:
                log.warning("demo chat: %s could not send: %r", user, answer)

    # --- guild ------------------------------------------------------------------------------------
    async def _guild(self) -> str | None:
        path = f"/api/guilds/{DEMO_GUILD}/events"
        rng = self.rng
        while True:
            batch = [self.guild_event() for _ in range(rng.randint(1, 3))]
            status, answer = await http_json(
                self.host, self.port, "POST", path, {"events": batch}, self.token("demo-bot")
            )
            if status == 404 and self.stats.guild_events == 0:
                log.info("demo: no guild application on this server; the demo guild is skipped")
                return "unavailable"
            if status >= 400:
                raise DemoHTTPError(status, answer)
            self.stats.guild_events += len(batch)
            await trio.sleep(rng.uniform(1.0, 2.5))

    def guild_event(self) -> dict[str, Any]:
        rng = self.rng
        user_id, username = rng.choice(GUILD_MEMBERS)
        channel_id, channel_name = rng.choice(GUILD_CHANNELS)
        base = {"userId": user_id, "username": username}
        kind = _pick(rng, [("message", 8), ("typing", 4), ("presence", 4), ("reaction", 3),
                           ("role", 1), ("join", 1)])  # fmt: skip
        if kind == "message":
            return {**base, "kind": kind, "channelId": channel_id, "channelName": channel_name}
        if kind == "typing":
            return {**base, "kind": kind, "channelId": channel_id, "channelName": channel_name}
        if kind == "presence":
            status = rng.choice(["online", "online", "idle", "dnd", "offline"])
            platforms = [] if status == "offline" else rng.sample(PLATFORMS, rng.randint(1, 2))
            return {**base, "kind": kind, "status": status, "platforms": platforms}
        if kind == "reaction":
            return {**base, "kind": kind, "channelId": channel_id, "emoji": "👍"}
        if kind == "role":
            return {**base, "kind": kind, "addedRoles": [rng.choice(GUILD_ROLES)]}
        newcomer = f"u{rng.randint(200, 999)}"
        return {"userId": newcomer, "username": f"newbie{newcomer[1:]}", "kind": "join",
                "accountAgeDays": rng.randint(0, 2000)}  # fmt: skip


_EXPECTED = (
    OSError,
    trio.TooSlowError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    SocketIOError,
    DemoHTTPError,
)


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


def _expected(err: BaseException) -> bool:
    """Network trouble and refusals (worth a line), not bugs (worth a traceback)."""
    return all(isinstance(leaf, _EXPECTED) for leaf in _leaves(err))


def _reason(err: BaseException) -> str:
    return "; ".join(str(leaf) or type(leaf).__name__ for leaf in _leaves(err))


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _loopback(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


# --- switchboard reset-demo -----------------------------------------------------------------------
RESET_STATEMENTS: list[tuple[str, str, tuple[str, ...]]] = [
    # (table that must exist, statement, parameters)
    (
        "analytics_events",
        "DELETE FROM analytics_events WHERE session_id LIKE 'demo-%' OR user_id LIKE 'demo-%'",
        (),
    ),
    ("guild_events", "DELETE FROM guild_events WHERE guild_id = ?", (DEMO_GUILD,)),
    (
        "chat_receipts",
        "DELETE FROM chat_receipts WHERE message_id IN (SELECT m.id FROM chat_messages m "
        "JOIN chat_chats c ON c.id = m.chat_id WHERE c.created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    (
        "chat_messages",
        "DELETE FROM chat_messages WHERE chat_id IN "
        "(SELECT id FROM chat_chats WHERE created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    (
        "chat_participants",
        "DELETE FROM chat_participants WHERE chat_id IN "
        "(SELECT id FROM chat_chats WHERE created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    ("chat_chats", "DELETE FROM chat_chats WHERE created_by = ?", (DEMO_CHAT_HOST,)),
]


def reset_demo(database: Path) -> dict[str, int]:
    """Delete every row the demo traffic made; returns the rows deleted per table. Run it while
    the server is stopped (a running server keeps its aggregates in memory)."""
    if not database.exists():
        return {}
    deleted: dict[str, int] = {}
    db = sqlite3.connect(database, timeout=10.0)
    try:
        with db:  # one transaction: all or nothing
            tables = {
                name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            for table, statement, params in RESET_STATEMENTS:
                if table in tables:
                    deleted[table] = db.execute(statement, params).rowcount
    finally:
        db.close()
    return deleted


def server_running(host: str, port: int) -> bool:
    """Whether something accepts connections on the server's address (a running server)."""
    try:
        with socket.create_connection((_loopback(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def reset_demo_command(settings: Any) -> int:
    """``switchboard reset-demo``: the exit code (2 when a server is still running)."""
    if settings.port and server_running(settings.host, settings.port):
        print(
            f"switchboard: a server is running on {settings.host}:{settings.port}; "
            "stop it before reset-demo"
        )
        return 2
    database = settings.data_path / "switchboard.sqlite3"
    deleted = reset_demo(database)
    if not deleted:
        print(f"switchboard: no demo data in {database}")
        return 0
    total = sum(deleted.values())
    detail = ", ".join(f"{table}: {count}" for table, count in deleted.items())
    print(f"switchboard: deleted {total} demo rows from {database} ({detail})")
    return 0
