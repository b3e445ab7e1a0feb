"""A session ends when its token expires, at that moment (driven by the test clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import socketio

from tests.support.processes import ProductServer
from tests.support.tokens import TOKEN_EXPIRY_SECRET, Tokens


def test_session_is_ended_when_its_token_expires(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer(secret=TOKEN_EXPIRY_SECRET, data_dir=tmp_path, test_clock=True)
    )
    token = Tokens(TOKEN_EXPIRY_SECRET)("u1", ttl=3600)

    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        ended: asyncio.Queue[Any] = asyncio.Queue()

        @client.on("disconnect")
        async def on_disconnect(reason: Any = None) -> None:
            await ended.put(reason)

        await client.connect(server.url, auth={"token": token}, transports=["websocket"])
        async with httpx.AsyncClient(base_url=server.url) as http:
            # just before expiry: still connected
            await server.advance_async(3590)
            with_ping = await http.get("/health")
            assert with_ping.json()["namespaces"]["/"] == 1
            assert ended.empty()
            # past expiry: the server ends the session at once
            await server.advance_async(20)
            reason = await asyncio.wait_for(ended.get(), 5)
            assert reason == client.reason.SERVER_DISCONNECT
            health = (await http.get("/health")).json()
            assert health["namespaces"]["/"] == 0
        await client.disconnect()

    asyncio.run(scenario())
