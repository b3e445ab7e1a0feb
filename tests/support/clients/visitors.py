"""The visitor analytics tests' helpers: a real product server and raw feed clients.

:class:`VisitorServer` is a :class:`~tests.support.processes.ProductServer` (``switchboard
serve``) with a data folder, the visitors JWT secret and the test clock, and async REST calls.
:class:`Feed` is a trio-websocket client of the raw feed that decodes every message and waits for
the next one with a timeout (never a sleep).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket

from tests.support.processes import ProductServer
from tests.support.tokens import DAY, VISITORS_SECRET, Tokens

WAIT = 10.0

token = Tokens(VISITORS_SECRET, sub="admin", role="admin", ttl=90 * DAY)  # outlives clock moves
bearer = token.bearer


class VisitorServer(ProductServer):
    def __init__(self, data_dir: Path, *flags: str) -> None:
        super().__init__(*flags, secret=VISITORS_SECRET, data_dir=data_dir, test_clock=True)
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

    async def set_clock(self, at: float) -> None:
        """Move the server's clock so that its now is ``at`` (``at`` must be ahead of it)."""
        await self.advance_async(at - time.time())

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
