"""Helpers for the guild monitor tests: a real server, tokens, REST, the test clock, and a
python-socketio client on ``/`` that records every event in arrival order.

python-socketio is asyncio-based: tests are sync functions calling :func:`run`; every wait is for
an event (or an ack), bounded by a timeout."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import socketio

from web.platform.auth import Authenticator

SECRET = "guild-test-secret-0123456789-abcdefghijklmnop"
AUTH = Authenticator(SECRET)
WAIT = 10.0
READY = "Switchboard listening on"
SERVE = "tests/product_server.py"

GUILD_EVENTS = ("message:new", "presence:update", "role:change", "user:join", "alert:multiClient")


def token(
    sub: str,
    *,
    role: str = "user",
    guilds: Iterable[str] = (),
    name: str | None = None,
    ttl: int = 30 * 86400,  # outlives the test clock's 7-day jumps (sessions end at expiry)
) -> str:
    return AUTH.issue(sub, name=name or sub, role=role, guilds=list(guilds), ttl_seconds=ttl)


def start_server(factory: Callable[..., Any], *flags: str, data_dir: str | None = None) -> Any:
    """A real ``switchboard serve`` (with the guild monitor) on a free port, the test clock on."""
    data = data_dir or tempfile.mkdtemp(prefix="guild-test-")
    return factory(
        SERVE,
        "--data-dir",
        data,
        "--jwt-secret",
        SECRET,
        "--test-clock",
        "true",
        "--log-level",
        "warning",
        *flags,
        ready_marker=READY,
    )


def iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def base_time() -> float:
    """A whole second an hour ago: event stamps inside the window, exact on the wire."""
    return float(int(time.time()) - 3600)


def post_events(server: Any, guild: str, body: Any, tok: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
    return httpx.post(
        f"{server.url}/api/guilds/{guild}/events", json=body, headers=headers, timeout=WAIT
    )


def advance(server: Any, seconds: float) -> None:
    answer = httpx.post(
        f"{server.url}/api/test/clock", json={"advance_seconds": seconds}, timeout=WAIT
    )
    assert answer.status_code == 200, answer.text


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout)

    asyncio.run(bounded())


class Client:
    """A python-socketio AsyncClient on ``/`` recording ``(event, payload)`` in arrival order."""

    def __init__(self, server: Any, tok: str | None) -> None:
        self.server = server
        self.token = tok
        self.sio = socketio.AsyncClient(reconnection=False)
        self.log: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self._changed = asyncio.Event()
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._connect_error)

    async def _record(self, event: str, *args: Any) -> None:
        self.log.append((event, args[0] if len(args) == 1 else list(args)))
        self._changed.set()

    async def _connect_error(self, data: Any = None) -> None:
        self.connect_errors.append(data)
        self._changed.set()

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
        deadline = time.monotonic() + timeout
        while len(self.events(*names)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} of {names}, got {len(self.events(*names))}: "
                    f"{self.events(*names)[-5:]!r}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return self.events(*names)

    async def close(self) -> None:
        await self.sio.disconnect()


async def connected(server: Any, *tokens: str) -> list[Client]:
    return list(await asyncio.gather(*(Client(server, t).connect() for t in tokens)))


async def close_all(*clients: Client) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


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
