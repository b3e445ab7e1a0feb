"""Fixtures for the visitor analytics tests: a real product server and raw feed clients.

:class:`VisitorServer` runs ``tests/product_server.py`` (``switchboard serve``) with a data folder,
a fixed JWT secret and the test clock. :class:`Feed` is a trio-websocket client of the raw feed
that decodes every message and waits for the next one with a timeout (never a sleep).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.conftest import ServerProcess, server_pool
from web.platform.auth import Authenticator

SECRET = "visitors-test-secret-0123456789abcdef"
AUTH = Authenticator(SECRET)
WAIT = 10.0
DAY = 86400


def token(sub: str = "admin", role: str = "admin", ttl: int = 90 * DAY) -> str:
    return AUTH.issue(sub, role=role, ttl_seconds=ttl)  # outlives the clock moves


def bearer(sub: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub)}"}


def iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class VisitorServer(ServerProcess):
    def __init__(self, data_dir: Path, *flags: str) -> None:
        super().__init__(
            "tests/product_server.py",
            "--data-dir",
            str(data_dir),
            "--jwt-secret",
            SECRET,
            "--test-clock",
            "true",
            *flags,
            ready_marker="Switchboard listening on",
        )
        self.data_dir = data_dir
        self.flags = flags

    async def get(self, path: str, *, auth: bool = True, **params: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=WAIT) as client:
            return await client.get(
                self.url + path, params=params, headers=bearer() if auth else {}
            )

    async def ok(self, path: str, **params: Any) -> Any:
        answer = await self.get(path, **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["success"] is True
        return body["data"]

    async def post(self, path: str, body: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=WAIT) as client:
            return await client.post(self.url + path, json=body)

    async def event(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.post("/api/events", body)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    async def advance(self, seconds: float) -> None:
        answer = await self.post("/api/test/clock", {"advance_seconds": seconds})
        assert answer.status_code == 200, answer.text

    async def set_clock(self, at: float) -> None:
        """Move the server's clock so that its now is ``at`` (``at`` must be ahead of it)."""
        await self.advance(at - time.time())

    def feed_url(self, path: str = "/ws/visitors", query: str | None = None) -> str:
        return f"{self.ws_url}{path}" + ("" if query is None else f"?{query}")


class Feed:
    """One raw feed client: JSON messages in order, each awaited with a timeout."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def next(self) -> dict[str, Any]:
        with trio.fail_after(WAIT):
            message = await self.ws.get_message()
        assert isinstance(message, str), message
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next message, which must be of type ``kind``; returns its ``data``."""
        message = await self.next()
        assert message["type"] == kind, message
        assert set(message) == {"type", "data"}, message
        data: dict[str, Any] = message["data"]
        return data

    async def send(self, message: Any) -> None:
        await self.ws.send_message(
            message if isinstance(message, str | bytes) else json.dumps(message)
        )

    async def detailed(self, **filter: str) -> dict[str, Any]:
        """Ask for the detailed stats: everything sent before it arrives first (a marker)."""
        await self.send({"type": "request_detailed_stats", "filter": filter})
        return await self.expect("detailed_stats")

    async def closed(self) -> trio_websocket.CloseReason:
        """Wait until the server closes the connection; returns why."""
        with trio.fail_after(WAIT):
            while True:
                try:
                    await self.ws.get_message()
                except trio_websocket.ConnectionClosed as closed:
                    return closed.reason


@contextlib.asynccontextmanager
async def open_feed(url: str, headers: list[tuple[str, str]] | None = None) -> Any:
    async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
        yield Feed(ws)


def _servers(folder: Path) -> contextlib.AbstractContextManager[Callable[..., VisitorServer]]:
    numbers = itertools.count()

    def build(*flags: str, data_dir: Path | None = None) -> VisitorServer:
        return VisitorServer(data_dir or folder / f"data{next(numbers)}", *flags)

    return server_pool(build)


@pytest.fixture
def visitor_server(tmp_path: Path) -> Iterator[Callable[..., VisitorServer]]:
    """``visitor_server(*flags, data_dir=None)`` -> a started server, stopped after the test."""
    with _servers(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_visitor_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., VisitorServer]]:
    with _servers(tmp_path_factory.mktemp("visitors")) as start:
        yield start
