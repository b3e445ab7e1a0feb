"""Raw Engine.IO / Socket.IO client helpers for the conformance tests.

Nothing here implements the protocol "for" the tests: the helpers only move exact strings and
bytes over HTTP long-polling and WebSocket frames, answer server PINGs where asked to, and enforce
timeouts so that every wait is bounded (``trio.fail_after``), never a bare sleep.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.hardening.helpers import RawConn
from tests.tcp_table import server_end
from tests.waiting import POLL_INTERVAL_SECONDS

# Conformance server configuration (PROTOCOL.md, "Conformance server").
PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT = 1.0

EIO_PATH = "/engine.io/"
SIO_PATH = "/socket.io/"

# "At once": far below pingInterval + pingTimeout (500 ms), so a close caused by the offending
# packet cannot be confused with a close caused by the heartbeat.
AT_ONCE = 0.1
# Slack allowed for timers: a timer may fire a little early (clock granularity) or late (load).
EARLY = 0.03
LATE = 0.1
# Upper bound for waiting for something that should come promptly.
WAIT = 2.0

RS = "\x1e"  # Engine.IO v4 polling payload separator

_cmd = shlex.split(os.environ.get("CONFORMANCE_SERVER_CMD", ""))
#: True when the suite runs against the Node.js reference (CONFORMANCE_SERVER_CMD="node ...").
IS_NODE_REFERENCE = bool(_cmd) and os.path.basename(_cmd[0]).startswith("node")


def node_deviation(reason: str) -> pytest.MarkDecorator:
    """PROTOCOL.md is the contract; where the Node reference disagrees, the test follows
    PROTOCOL.md and is expected to fail only when run against Node."""
    return pytest.mark.xfail(
        IS_NODE_REFERENCE,
        reason=f"Node reference deviates from PROTOCOL.md: {reason}",
        strict=False,
    )


def ws_url(base: str, path: str, query: str) -> str:
    assert base.startswith("http://")
    return "ws://" + base[len("http://") :] + path + "?" + query


def parse_open_packet(packet: str) -> dict[str, Any]:
    """``0{...}`` -> dict, keeping key order (checked by callers) and rejecting duplicate keys."""
    assert isinstance(packet, str), f"OPEN packet must be text, got {packet!r}"
    assert packet.startswith("0"), f"expected an OPEN packet, got {packet!r}"

    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {packet!r}"
        return dict(pairs)

    data = json.loads(packet[1:], object_pairs_hook=no_dupes)
    assert isinstance(data, dict)
    return data


def check_handshake(info: dict[str, Any], upgrades: list[str]) -> None:
    assert set(info) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}, info
    assert isinstance(info["sid"], str) and info["sid"], info
    assert info["upgrades"] == upgrades, info
    # exact values; ``type is int`` rejects 300.0 / "300" / True
    assert type(info["pingInterval"]) is int and info["pingInterval"] == 300, info
    assert type(info["pingTimeout"]) is int and info["pingTimeout"] == 200, info
    assert type(info["maxPayload"]) is int and info["maxPayload"] == MAX_PAYLOAD, info


# --------------------------------------------------------------------------------------------
# HTTP long-polling


class Polling:
    """One Engine.IO session over HTTP long-polling, driven with exact request bodies."""

    def __init__(self, http: httpx.AsyncClient, base: str, path: str) -> None:
        self.http = http
        self.url = base + path
        self.sid: str | None = None
        # when the handshake was sent: the server arms its timers after this, so it is a sound
        # start for "not earlier than" checks (the answer's arrival may lag behind the arming)
        self.handshake_sent_at: float | None = None

    def params(self, **extra: str) -> dict[str, str]:
        p = {"EIO": "4", "transport": "polling"}
        if self.sid is not None:
            p["sid"] = self.sid
        p.update(extra)
        return p

    async def handshake(self) -> dict[str, Any]:
        self.handshake_sent_at = trio.current_time()
        r = await self.http.get(self.url, params={"EIO": "4", "transport": "polling"})
        assert r.status_code == 200, (r.status_code, r.text)
        info = parse_open_packet(r.text)
        self.sid = info["sid"]
        return info

    async def get(self, timeout: float = WAIT) -> httpx.Response:
        with trio.fail_after(timeout):
            return await self.http.get(self.url, params=self.params())

    async def post(self, body: str | bytes, timeout: float = WAIT) -> httpx.Response:
        with trio.fail_after(timeout):
            return await self.http.post(self.url, params=self.params(), content=body)

    async def post_ok(self, body: str | bytes) -> None:
        r = await self.post(body)
        assert (r.status_code, r.text) == (200, "ok")

    async def send_get(self) -> RawGet:
        """Send a GET on a connection of its own and return once the server has read it (the
        request is then pending on the server, or answered); ``await get.response()`` later."""
        return await RawGet.send(self.url, self.params())

    async def get_packets(self, timeout: float = WAIT) -> list[str]:
        """One GET; returns its packets with server PINGs removed (each answered with a PONG)."""
        r = await self.get(timeout)
        assert r.status_code == 200, (r.status_code, r.text)
        packets = r.text.split(RS)
        if "2" in packets:
            await self.post_ok("3")
        return [p for p in packets if p != "2"]

    async def collect(self, count: int, timeout: float = WAIT) -> list[str]:
        """GET until ``count`` non-PING packets have arrived."""
        out: list[str] = []
        with trio.fail_after(timeout):
            while len(out) < count:
                out += await self.get_packets()
        assert len(out) == count, out
        return out


# --------------------------------------------------------------------------------------------
# WebSocket


class WS:
    """A raw WebSocket: one Engine.IO packet per frame, text as ``str``, binary as ``bytes``."""

    def __init__(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.frames: list[str | bytes] = []  # every frame received, PINGs included

    async def send(self, message: str | bytes) -> None:
        await self.conn.send_message(message)

    async def recv_raw(self, timeout: float = WAIT) -> str | bytes:
        with trio.fail_after(timeout):
            message = await self.conn.get_message()
        self.frames.append(message)
        return message

    async def recv(self, timeout: float = WAIT) -> str | bytes:
        """Next frame that is not a server PING; PINGs are answered with ``3``."""
        with trio.fail_after(timeout):
            while True:
                message = await self.recv_raw(timeout=timeout)
                if message == "2":
                    await self.send("3")
                    continue
                return message

    async def recv_n(self, count: int, timeout: float = WAIT) -> list[str | bytes]:
        with trio.fail_after(timeout):
            return [await self.recv() for _ in range(count)]

    async def expect_closed(self, within: float) -> list[str | bytes]:
        """Wait until the server closes the connection; returns the non-PING frames received
        meanwhile.  Fails if the connection is still open after ``within`` seconds."""
        got: list[str | bytes] = []
        with trio.fail_after(within):
            try:
                while True:
                    message = await self.conn.get_message()
                    self.frames.append(message)
                    if message != "2":
                        got.append(message)
            except ConnectionClosed:
                return got

    async def expect_open_and_quiet(self, duration: float) -> list[str | bytes]:
        """For ``duration`` seconds answer PINGs and collect other frames; fails if closed."""
        got: list[str | bytes] = []
        with trio.move_on_after(duration):
            while True:
                message = await self.conn.get_message()  # ConnectionClosed propagates: a failure
                self.frames.append(message)
                if message == "2":
                    await self.send("3")
                else:
                    got.append(message)
        return got


@asynccontextmanager
async def ws_connect(url: str) -> AsyncIterator[WS]:
    async with open_websocket_url(url, connect_timeout=5, disconnect_timeout=1) as conn:
        yield WS(conn)


@asynccontextmanager
async def eio_ws(base: str, path: str = EIO_PATH, sid: str | None = None) -> AsyncIterator[WS]:
    """WebSocket to the Engine.IO endpoint.  Without ``sid`` the OPEN packet is read and checked
    and kept in ``ws.open_info``; with ``sid`` (an upgrade) nothing is read."""
    query = "EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")
    # ``ws.requested_at``: when the connection was asked for; the server arms its timers after
    # it, so "not earlier than" checks measure from here (OPEN's arrival may lag behind)
    requested_at = trio.current_time()
    async with ws_connect(ws_url(base, path, query)) as ws:
        ws.requested_at = requested_at  # type: ignore[attr-defined]
        if sid is None:
            first = await ws.recv_raw()
            ws.open_info = parse_open_packet(first)  # type: ignore[attr-defined]
        yield ws


def sio_ws(base: str) -> Any:
    return eio_ws(base, SIO_PATH)


async def sio_connect(ws: WS, nsp: str = "/", auth: str = "") -> tuple[str, str]:
    """Send a Socket.IO CONNECT and return (the CONNECT ack, the "auth" event that follows)."""
    prefix = "" if nsp == "/" else nsp + ","
    await ws.send("40" + prefix + auth)
    ack = await ws.recv()
    assert isinstance(ack, str) and ack.startswith("40" + prefix + '{"sid":'), ack
    event = await ws.recv()
    return ack, event


def placeholders(n: int) -> str:
    return ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(n))


# --------------------------------------------------------------------------- "the server read it"


async def wait_server_has_read(server_port: int, client_port: int) -> None:
    """Until the server's end of our connection holds no unread bytes: on loopback our bytes
    are in its receive queue by the time ``send`` returns, so "empty" means the server took
    the request in (``tests/tcp_table.py``)."""
    with trio.fail_after(WAIT):
        while True:
            end = server_end(server_port, client_port)
            if end is not None and end.unread_bytes == 0:
                return
            await trio.sleep(POLL_INTERVAL_SECONDS)


@dataclass
class RawResponse:
    """The parts of an HTTP answer the tests read (named as in httpx)."""

    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class RawGet:
    """One HTTP GET on its own TCP connection, so that a test can tell when the server has read
    it without guessing with a sleep."""

    def __init__(self, conn: RawConn) -> None:
        self.conn = conn

    @classmethod
    async def send(cls, url: str, params: dict[str, str]) -> RawGet:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        conn = RawConn(await trio.open_tcp_stream(host, port))
        await conn.send(
            f"GET {parts.path}?{urlencode(params)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: */*\r\n\r\n".encode()
        )
        await wait_server_has_read(port, conn.stream.socket.getsockname()[1])
        return cls(conn)

    async def response(self, timeout: float = WAIT) -> RawResponse:
        async with self.conn.stream:
            status, _, body = await self.conn.response(timeout)
        return RawResponse(status, body.decode("utf-8"))
