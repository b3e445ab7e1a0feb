"""docs/protocol.md "Close"."""

from __future__ import annotations

import httpx
import trio

from .helpers import AT_ONCE, EIO_PATH, Polling, eio_ws, node_deviation

# docs/protocol.md wins over the reference here: Node ignores a CLOSE packet received over a
# WebSocket (the socket stays open, PINGs keep coming), while docs/protocol.md says it closes it.
WS_CLOSE_DEVIATION = "a 1 (CLOSE) packet over a WebSocket is ignored; the socket stays open"


async def test_polling_close_completes_pending_get_with_noop(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = Polling(http, engineio_server, EIO_PATH)
    await p.handshake()
    get = await p.send_get()  # read by the server: pending
    with trio.fail_after(AT_ONCE * 2):
        await p.post_ok("1")
    r = await get.response()
    assert (r.status_code, r.text) == (200, "6")
    r = await p.get()
    assert r.status_code == 400
    assert r.json() == {"code": 1, "message": "Session ID unknown"}


async def test_polling_close_without_pending_get(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = Polling(http, engineio_server, EIO_PATH)
    await p.handshake()
    await p.post_ok("1")
    r = await p.get()
    assert r.status_code == 400
    assert r.json() == {"code": 1, "message": "Session ID unknown"}
    r = await p.post("4x")
    assert r.status_code == 400


@node_deviation(WS_CLOSE_DEVIATION)
async def test_websocket_client_close_closes_socket(engineio_server: str) -> None:
    async with eio_ws(engineio_server) as ws:
        await ws.send("4hi")
        assert await ws.recv() == "4hi"
        await ws.send("1")
        assert await ws.expect_closed(within=AT_ONCE) == []


@node_deviation(WS_CLOSE_DEVIATION)
async def test_websocket_close_ends_session(http: httpx.AsyncClient, engineio_server: str) -> None:
    """After an upgraded session is closed over the WebSocket, its sid is unknown."""
    p = Polling(http, engineio_server, EIO_PATH)
    await p.handshake()
    async with eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await ws.send("5")
        await ws.send("1")
        assert await ws.expect_closed(within=AT_ONCE) == []
    r = await p.get()
    assert r.status_code == 400
