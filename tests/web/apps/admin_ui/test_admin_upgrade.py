"""An upgrade from polling to WebSocket reaches the UI as ``socket_updated``, with raw frames so
that the socket is certainly connected over polling before it upgrades."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.conformance.helpers import SIO_PATH, Polling, eio_ws
from tests.support.processes import ServerProcess

from .helpers import admin_server, token


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return admin_server(module_server_factory)


async def test_an_upgrade_shows_as_socket_updated(server: ServerProcess) -> None:
    async with eio_ws(server.url, path=SIO_PATH) as ops:
        await ops.send("40/admin," + json.dumps({"token": token("root", "admin")}))
        assert str(await ops.recv()).startswith("40/admin,")
        async with httpx.AsyncClient() as http:
            p = Polling(http, server.url, SIO_PATH)
            await p.handshake()
            await p.post_ok("40/chat," + json.dumps({"token": token("erin")}))
            connected, *_ = await p.get_packets()
            sid = json.loads(connected.split(",", 1)[1])["sid"]
            async with eio_ws(server.url, path=SIO_PATH, sid=p.sid) as ws:
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                await ws.send("5")
                wanted = '42/admin,["socket_updated",' + json.dumps(
                    {"id": sid, "nsp": "/chat", "transport": "websocket"}, separators=(",", ":")
                )
                while True:
                    frame = str(await ops.recv())
                    if frame.startswith(wanted):
                        break
