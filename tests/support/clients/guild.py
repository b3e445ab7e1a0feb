"""The guild monitor tests' helpers: a real server, tokens, REST, and a python-socketio client
on ``/`` that records every event in arrival order. The test clock is on:
``server.advance(seconds)`` moves it.

python-socketio is asyncio-based: tests are sync functions calling
:func:`~tests.support.clients.scenarios.run`; every wait is for an event (or an ack), bounded by a
timeout."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import socketio

from tests.support.processes import ProductServer
from tests.support.stamps import iso
from tests.support.tokens import DAY, GUILD_SECRET, Tokens
from tests.support.waiting import Changes

WAIT = 10.0

GUILD_EVENTS = ("message:new", "presence:update", "role:change", "user:join", "alert:multiClient")

# outlives the test clock's 7-day jumps (sessions end at expiry)
token = Tokens(GUILD_SECRET, ttl=30 * DAY)


def start_server(factory: Callable[..., Any], *flags: str, data_dir: str | None = None) -> Any:
    """A real ``switchboard serve`` (with the guild monitor) on a free port, the test clock on."""
    data = data_dir or tempfile.mkdtemp(prefix="guild-test-")
    server = ProductServer(
        "--log-level", "warning", *flags, secret=GUILD_SECRET, data_dir=data, test_clock=True
    )
    return factory(server)


def base_time() -> float:
    """A whole second an hour ago: event stamps inside the window, exact on the wire."""
    return float(int(time.time()) - 3600)


def post_events(server: Any, guild: str, body: Any, tok: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
    return httpx.post(
        f"{server.url}/api/guilds/{guild}/events", json=body, headers=headers, timeout=WAIT
    )


class Client:
    """A python-socketio AsyncClient on ``/`` recording ``(event, payload)`` in arrival order."""

    def __init__(self, server: Any, tok: str | None) -> None:
        self.server = server
        self.token = tok
        self.sio = socketio.AsyncClient(reconnection=False)
        self.log: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self._changes = Changes()
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._connect_error)

    async def _record(self, event: str, *args: Any) -> None:
        self.log.append((event, args[0] if len(args) == 1 else list(args)))
        self._changes.changed()

    async def _connect_error(self, data: Any = None) -> None:
        self.connect_errors.append(data)
        self._changes.changed()

    async def connect(self) -> Client:
        auth = {"token": self.token} if self.token is not None else None
        await self.sio.connect(
            self.server.url, auth=auth, transports=["websocket"], wait_timeout=WAIT
        )
        return self

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, args if len(args) > 1 else args[0], timeout=WAIT)

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, args if len(args) > 1 else args[0])

    def events(self, *names: str) -> list[tuple[str, Any]]:
        return [(e, p) for e, p in self.log if not names or e in names]

    def payloads(self, name: str) -> list[Any]:
        return [p for e, p in self.log if e == name]

    async def wait_count(self, count: int, *names: str, timeout: float = WAIT) -> list[Any]:
        """Wait until ``count`` events among ``names`` have arrived; returns them all."""
        await self._changes.until(
            lambda: len(self.events(*names)) >= count,
            timeout,
            lambda: (
                f"expected {count} of {names}, got {len(self.events(*names))}: "
                f"{self.events(*names)[-5:]!r}"
            ),
        )
        return self.events(*names)

    async def close(self) -> None:
        await self.sio.disconnect()


async def connected(server: Any, *tokens: str) -> list[Client]:
    return list(await asyncio.gather(*(Client(server, t).connect() for t in tokens)))


# --- event builders (what a bot sends) -----------------------------------------------------------
def message(user: str, name: str, channel: str, channel_name: str, at: float) -> dict[str, Any]:
    return {
        "kind": "message",
        "userId": user,
        "username": name,
        "channelId": channel,
        "channelName": channel_name,
        "timestamp": iso(at),
    }


def typing(user: str, name: str, channel: str, at: float) -> dict[str, Any]:
    return {
        "kind": "typing",
        "userId": user,
        "username": name,
        "channelId": channel,
        "timestamp": iso(at),
    }


def presence(user: str, name: str, status: str, platforms: list[str], at: float) -> dict[str, Any]:
    return {
        "kind": "presence",
        "userId": user,
        "username": name,
        "status": status,
        "platforms": platforms,
        "timestamp": iso(at),
    }


def reaction(user: str, name: str, channel: str, at: float) -> dict[str, Any]:
    return {
        "kind": "reaction",
        "userId": user,
        "username": name,
        "channelId": channel,
        "emoji": "👍",
        "timestamp": iso(at),
    }


def role(user: str, name: str, roles: list[str], at: float) -> dict[str, Any]:
    return {
        "kind": "role",
        "userId": user,
        "username": name,
        "addedRoles": roles,
        "timestamp": iso(at),
    }


def join(user: str, name: str, days: int, at: float) -> dict[str, Any]:
    return {
        "kind": "join",
        "userId": user,
        "username": name,
        "accountAgeDays": days,
        "timestamp": iso(at),
    }
