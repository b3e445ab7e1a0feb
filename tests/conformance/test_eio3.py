"""docs/protocol.md "Engine.IO v3": Socket.IO v2 clients, against ``--mode engineio`` (echo).

The rules of the official v3 suite and a few it leaves out: length-prefixed polling payloads
(lengths in UTF-16 code units), ``b4`` + base64 binary, the binary payload format for clients
that did not ask for base64, the type byte of binary WebSocket messages, the heartbeat the other
way round (the client pings), and the upgrade.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import trio

from .helpers import (
    AT_ONCE,
    EARLY,
    EIO_PATH,
    LATE,
    PING_INTERVAL,
    PING_TIMEOUT,
    WAIT,
    WS,
    ws_connect,
    ws_url,
)

V3 = {"EIO": "3", "transport": "polling"}


def payload(*packets: str) -> str:
    """A v3 text payload: each packet prefixed with its length in UTF-16 code units."""
    return "".join(f"{len(p.encode('utf-16-le')) // 2}:{p}" for p in packets)


def ws3(base: str, sid: str = "") -> AbstractAsyncContextManager[WS]:
    """A raw v3 WebSocket (with ``sid``: an upgrade)."""
    query = "EIO=3&transport=websocket" + (f"&sid={sid}" if sid else "")
    connection: AbstractAsyncContextManager[WS] = ws_connect(ws_url(base, EIO_PATH, query))
    return connection


class PollingV3:
    def __init__(self, http: httpx.AsyncClient, base: str, *, b64: bool = True) -> None:
        self.http = http
        self.url = base + EIO_PATH
        self.b64 = b64
        self.sid = ""

    def params(self) -> dict[str, str]:
        extra = {"b64": "1"} if self.b64 else {}
        return {**V3, **extra, **({"sid": self.sid} if self.sid else {})}

    async def handshake(self) -> dict[str, Any]:
        r = await self.http.get(self.url, params=self.params())
        assert r.status_code == 200, r.text
        length, _, packet = r.text.partition(":")
        assert int(length) == len(packet) and packet.startswith("0"), r.text
        info: dict[str, Any] = json.loads(packet[1:])
        self.sid = info["sid"]
        return info

    async def post(self, body: str | bytes) -> httpx.Response:
        with trio.fail_after(WAIT):
            return await self.http.post(self.url, params=self.params(), content=body)

    async def get(self) -> httpx.Response:
        with trio.fail_after(WAIT):
            return await self.http.get(self.url, params=self.params())


async def test_polling_handshake_is_length_prefixed(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    info = await PollingV3(http, engineio_server).handshake()
    assert info["upgrades"] == ["websocket"]
    assert (info["pingInterval"], info["pingTimeout"]) == (300, 200)


async def test_websocket_handshake(engineio_server: str) -> None:
    async with ws3(engineio_server) as ws:
        opened = await ws.recv_raw()
        assert isinstance(opened, str) and opened.startswith("0")
        assert json.loads(opened[1:])["upgrades"] == []


async def test_text_payloads_round_trip_with_utf16_lengths(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = PollingV3(http, engineio_server)
    await p.handshake()
    body = payload("4hello", "4wörld ☃", "4a😀b")  # 😀 is two code units in JavaScript
    assert body == "6:4hello8:4wörld ☃5:4a😀b"
    r = await p.post(body)
    assert (r.status_code, r.text) == (200, "ok")
    assert (await p.get()).text == body


async def test_base64_binary_for_clients_that_ask_for_it(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = PollingV3(http, engineio_server, b64=True)
    await p.handshake()
    assert (await p.post("6:4hello10:b4AQIDBA==")).text == "ok"
    answer = await p.get()
    assert answer.text == "6:4hello10:b4AQIDBA=="
    assert answer.headers["content-type"].startswith("text/plain")


async def test_the_binary_payload_format_for_the_others(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = PollingV3(http, engineio_server, b64=False)
    await p.handshake()
    assert (await p.post("6:4hello10:b4AQIDBA==")).text == "ok"
    answer = await p.get()
    assert answer.content == bytes(
        [0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4]
    )
    assert answer.headers["content-type"] == "application/octet-stream"
    # a client may post the binary format too
    assert (await p.post(bytes([1, 3, 255, 4, 9, 8]))).text == "ok"
    assert (await p.get()).content == bytes([1, 3, 255, 4, 9, 8])


async def test_an_invalid_payload_closes_the_session(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    for bad in ("abc", "5:4hi", "x:4hi", "2:9z"):
        q = PollingV3(http, engineio_server)
        await q.handshake()
        assert (await q.post(bad)).status_code == 400, bad
        assert (await q.get()).status_code == 400, bad


async def test_the_client_pings_and_the_server_pongs(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = PollingV3(http, engineio_server)
    await p.handshake()
    for _ in range(3):
        assert (await p.post("1:2")).text == "ok"
        assert (await p.get()).text == "1:3"  # and never a PING of the server's own


async def test_silence_past_interval_plus_timeout_closes(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    """No PING from the client for pingInterval + pingTimeout: the session ends at that moment
    (the pending GET completes with CLOSE)."""
    p = PollingV3(http, engineio_server)
    started = trio.current_time()
    await p.handshake()
    with trio.fail_after(PING_INTERVAL + PING_TIMEOUT + LATE + WAIT):
        answer = await p.get()
    elapsed = trio.current_time() - started
    assert answer.text == "1:1"
    assert PING_INTERVAL + PING_TIMEOUT - EARLY <= elapsed <= PING_INTERVAL + PING_TIMEOUT + LATE
    assert (await p.post("1:2")).status_code == 400


async def test_a_pong_from_the_client_is_a_protocol_error(engineio_server: str) -> None:
    async with ws3(engineio_server) as ws:
        await ws.recv_raw()
        await ws.send("3")
        await ws.expect_closed(within=AT_ONCE + WAIT)


async def test_websocket_binary_messages_carry_the_type_byte(engineio_server: str) -> None:
    async with ws3(engineio_server) as ws:
        await ws.recv_raw()
        await ws.send(bytes([4, 1, 2, 3, 4]))
        assert await ws.recv_raw() == bytes([4, 1, 2, 3, 4])
        await ws.send("2")
        assert await ws.recv_raw() == "3"
        await ws.send("4hello")
        assert await ws.recv_raw() == "4hello"


async def test_upgrade_from_polling(http: httpx.AsyncClient, engineio_server: str) -> None:
    p = PollingV3(http, engineio_server)
    await p.handshake()
    async with ws3(engineio_server, p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv_raw() == "3probe"
        assert (await p.get()).text == "1:6"
        await ws.send("5")
        await ws.send(bytes([4, 7]))
        assert await ws.recv_raw() == bytes([4, 7])
    assert (await p.get()).status_code == 400
