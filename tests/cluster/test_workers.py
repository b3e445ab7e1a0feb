"""``switchboard serve --workers 2``: two processes on one port, joined through Redis; a
broadcast made on one reaches the clients of both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cluster.helpers import Client, RedisServer
from tests.support import postgres
from tests.support.processes import ProductServer, ServerProcess
from tests.support.tokens import WORKERS_SECRET, Tokens

token = Tokens(WORKERS_SECRET)
CLIENTS = 16


def test_two_workers_serve_one_port_and_share_broadcasts(
    redis: RedisServer, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer(
            "--workers", "2", "--redis-url", redis.url,
            secret=WORKERS_SECRET, data_dir=tmp_path, database_url=postgres.database_for(tmp_path),
        )
    )  # fmt: skip
    dashboard = token("watcher", "user", guilds=["g1"])
    bot = token("bot-1", "bot", guilds=["g1"])

    async def scenario() -> None:
        clients = [
            await Client(server.url, {"token": dashboard}).connect(["websocket"])
            for _ in range(CLIENTS)
        ]
        tags = {c.sio.eio.sid[:6] for c in clients}
        assert len(tags) == 2, "the kernel spread the connections over both workers"
        for c in clients:
            assert await c.call("subscribe:guild", "g1") == {"success": True, "guildId": "g1"}
        event = {
            "kind": "message", "userId": "u-workers", "username": "Una",
            "channelId": "c1", "channelName": "general",
        }  # fmt: skip
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{server.url}/api/guilds/g1/events",
                json=event,
                headers={"Authorization": f"Bearer {bot}"},
            )
        assert answer.status_code == 200, answer.text
        for c in clients:
            (payload,) = await c.next("message:new")
            assert payload["userId"] == "u-workers"
        for c in clients:
            await c.close()

    asyncio.run(scenario())
