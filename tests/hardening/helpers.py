"""Attack tools for the hardening suite: raw bytes over real sockets, nothing clever.

* :class:`SioWS` - exact Engine.IO/Socket.IO text over a trio-websocket connection (server PINGs
  answered while reading).
* :class:`RawConn` - a hand-driven TCP connection: HTTP heads, WebSocket handshakes (first request
  -> native path; after a keep-alive request -> the ASGI route), hand-built client frames.
* :func:`client_frame` - any client frame, well-formed or not.
* :func:`echo_rtt`, :func:`health`, :func:`metrics`, :func:`rss_kib` - what the suite measures.

Every wait is bounded (``trio.fail_after``); nothing sleeps in place of an event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import struct
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.waiting import POLL_INTERVAL_SECONDS
from web.platform.auth import Authenticator

SECRET = "interop-secret"  # tests/interop_server.py
PATH = "/socket.io/"
WAIT = 5.0
AT_ONCE = 1.0  # "promptly": far below any heartbeat the servers here run with

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # PyJWT: the interop secret is short on purpose
    TOKEN = Authenticator(SECRET).issue("hardening")
    ADMIN = Authenticator(SECRET).issue("admin", role="admin")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ws_url(server: Any, query: str = "", *, token: str | None = TOKEN) -> str:
    q = "EIO=4&transport=websocket" + (f"&token={token}" if token else "") + query
    return f"{server.ws_url}{PATH}?{q}"


# --- a Socket.IO client over trio-websocket ---
class SioWS:
    def __init__(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.pings = 0

    async def send(self, message: str | bytes) -> None:
        await self.conn.send_message(message)

    async def recv(self, timeout: float = WAIT) -> str | bytes:
        with trio.fail_after(timeout):
            while True:
                message = await self.conn.get_message()
                if message == "2":
                    self.pings += 1
                    await self.send("3")
                    continue
                return message

    async def open(self) -> dict[str, Any]:
        opened = await self.recv()
        assert isinstance(opened, str) and opened.startswith("0{"), opened
        info: dict[str, Any] = json.loads(opened[1:])
        return info

    async def connect(self, namespace: str = "/") -> str:
        prefix = "" if namespace == "/" else namespace + ","
        await self.send("40" + prefix)
        connected = await self.recv()
        assert isinstance(connected, str) and connected.startswith(f'40{prefix}{{"sid":'), connected
        return connected

    async def echo(self, ack_id: int, value: Any, timeout: float = WAIT) -> None:
        await self.send(f"42{ack_id}" + dumps(["echo", value]))
        answer = await self.recv(timeout)
        assert answer == f"43{ack_id}" + dumps([value]), answer

    async def call(self, ack_id: int, event: str, *args: Any) -> Any:
        await self.send(f"42{ack_id}" + dumps([event, *args]))
        while True:
            answer = await self.recv()
            assert isinstance(answer, str)
            if answer.startswith(f"43{ack_id}["):
                return json.loads(answer[len(f"43{ack_id}") :])

    async def expect_closed(self, within: float = AT_ONCE) -> int | None:
        """Wait for the server to close; returns the close code. Fails on any other frame."""
        with trio.fail_after(within):
            try:
                while True:
                    message = await self.conn.get_message()
                    if message != "2":
                        raise AssertionError(f"got {message!r} instead of a close")
            except ConnectionClosed as closed:
                return closed.reason.code


@asynccontextmanager
async def sio_ws(
    server: Any, *, connect: bool = True, query: str = "", token: str | None = TOKEN
) -> AsyncIterator[SioWS]:
    async with open_websocket_url(
        ws_url(server, query, token=token), max_message_size=1 << 24
    ) as c:
        client = SioWS(c)
        await client.open()
        if connect:
            await client.connect()
        yield client


@asynccontextmanager
async def answering_pings(client: SioWS) -> AsyncIterator[None]:
    """While inside, a task reads ``client`` (answering PINGs, dropping anything else): a
    bystander that must outlive a short heartbeat while the test looks elsewhere."""
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            while True:
                await client.recv(timeout=1e6)

        nursery.start_soon(read)
        yield
        nursery.cancel_scope.cancel()


async def echo_rtt(client: SioWS, ack_id: int) -> float:
    started = trio.current_time()
    await client.echo(ack_id, "rtt")
    return trio.current_time() - started


# --- raw TCP ---
def client_frame(
    opcode: int,
    payload: bytes,
    *,
    masked: bool = True,
    rsv: int = 0,
    fin: bool = True,
    length: int | None = None,
) -> bytes:
    """A client frame; ``length`` overrides the declared payload length (lying headers)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mask_bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mask_bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_head(server: Any, query: str, *, extra: str = "", keep_alive: bool = False) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    connection = "keep-alive, Upgrade" if keep_alive else "Upgrade"
    return (
        f"GET {PATH}?{query} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Upgrade: websocket\r\nConnection: {connection}\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


class RawConn:
    """A hand-driven TCP connection to the server."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(f"connection closed with {self.buf!r} buffered")
            self.buf += data

    async def response(self, timeout: float = WAIT) -> tuple[int, dict[str, str], bytes]:
        """One HTTP response (status, lower-case headers, body by content-length/chunked)."""
        with trio.fail_after(timeout):
            while b"\r\n\r\n" not in self.buf:
                await self._fill(len(self.buf) + 1)
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status == 101:
                return status, headers, b""
            if "content-length" in headers:
                n = int(headers["content-length"])
                await self._fill(n)
                body, self.buf = self.buf[:n], self.buf[n:]
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    while b"\r\n" not in self.buf:
                        await self._fill(len(self.buf) + 1)
                    size_line, self.buf = self.buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    await self._fill(size + 2)
                    body += self.buf[:size]
                    self.buf = self.buf[size + 2 :]
                    if size == 0:
                        break
            else:
                body = b""
            return status, headers, body

    async def frame(self, timeout: float = WAIT) -> tuple[int, bytes]:
        """Next server frame (opcode, payload)."""
        with trio.fail_after(timeout):
            await self._fill(2)
            b0, b1 = self.buf[0], self.buf[1]
            assert not b1 & 0x80, "server frames must not be masked"
            n, pos = b1 & 0x7F, 2
            if n == 126:
                await self._fill(4)
                n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                await self._fill(10)
                n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
            await self._fill(pos + n)
            payload, self.buf = self.buf[pos : pos + n], self.buf[pos + n :]
            return b0 & 0x0F, payload

    async def text(self, timeout: float = WAIT) -> str:
        """Next text message (server PINGs answered on the way)."""
        while True:
            opcode, payload = await self.frame(timeout)
            if opcode == 0x1 and payload == b"2":
                await self.send(client_frame(0x1, b"3"))
                continue
            assert opcode == 0x1, (opcode, payload)
            return payload.decode()

    async def send_text(self, text: str) -> None:
        await self.send(client_frame(0x1, text.encode()))

    async def close_code(self, within: float = AT_ONCE) -> int | None:
        """Read to the server's Close frame (its code; answered) or EOF (None). Fails on a text
        frame other than a PING."""
        with trio.fail_after(within):
            while True:
                try:
                    opcode, payload = await self.frame(within)
                except (EOFError, trio.BrokenResourceError):
                    return None
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.send(client_frame(0x8, payload[:2]))
                    return code
                if opcode == 0x1 and payload == b"2":
                    continue
                if opcode == 0xA:
                    continue
                raise AssertionError(f"frame {opcode:#x} {payload[:80]!r} instead of a close")

    async def wait_eof(self, within: float = AT_ONCE) -> bytes:
        """Everything the server still sends, until it hangs up."""
        got = self.buf
        self.buf = b""
        with trio.fail_after(within):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return got
                if not data:
                    return got
                got += data


@asynccontextmanager
async def raw_conn(server: Any) -> AsyncIterator[RawConn]:
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        yield RawConn(stream)


@asynccontextmanager
async def raw_ws(
    server: Any, path: str = "native", *, connect: bool = True, token: str | None = TOKEN
) -> AsyncIterator[RawConn]:
    """A raw WebSocket: ``native`` (the connection's first request: the front door's native
    path) or ``asgi`` (after a keep-alive GET /health: Hypercorn and the ASGI route)."""
    async with raw_conn(server) as conn:
        if path == "asgi":
            await conn.send(
                f"GET /health HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n\r\n".encode()
            )
            status, _, _ = await conn.response()
            assert status == 200
        query = "EIO=4&transport=websocket" + (f"&token={token}" if token else "")
        await conn.send(upgrade_head(server, query, keep_alive=path == "asgi"))
        status, _, _ = await conn.response()
        assert status == 101, status
        assert (await conn.text()).startswith("0{")
        if connect:
            await conn.send_text("40")
            assert (await conn.text()).startswith('40{"sid":')
        yield conn


# --- long-polling ---
class Polling:
    def __init__(self, http: httpx.AsyncClient, server: Any, token: str | None = TOKEN) -> None:
        self.http = http
        self.url = server.url + PATH
        self.sid: str | None = None
        self.token = token

    def params(self, **extra: str) -> dict[str, str]:
        p = {"EIO": "4", "transport": "polling"}
        if self.token:
            p["token"] = self.token
        if self.sid:
            p["sid"] = self.sid
        p.update(extra)
        return p

    async def handshake(self) -> dict[str, Any]:
        r = await self.http.get(self.url, params=self.params())
        assert r.status_code == 200, (r.status_code, r.text)
        info: dict[str, Any] = json.loads(r.text[1:])
        self.sid = info["sid"]
        return info

    async def get(self, timeout: float = WAIT) -> httpx.Response:
        with trio.fail_after(timeout):
            return await self.http.get(self.url, params=self.params())

    async def post(self, body: str | bytes, timeout: float = WAIT) -> httpx.Response:
        with trio.fail_after(timeout):
            return await self.http.post(self.url, params=self.params(), content=body)

    async def connect(self) -> None:
        r = await self.post("40")
        assert (r.status_code, r.text) == (200, "ok")
        r = await self.get()
        assert r.text.startswith('40{"sid":'), r.text

    def query(self) -> str:
        return urlencode(self.params())


# --- what the server reports ---
async def health(server: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        r = await http.get(server.url + "/health")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data


async def wait_connections(server: Any, expected: int, timeout: float = WAIT) -> None:
    """Until /health counts ``expected`` Engine.IO sessions (bounded poll of a condition)."""
    seen = None
    with trio.move_on_after(timeout):
        while True:
            seen = (await health(server))["connections"]
            if seen == expected:
                return
            await trio.sleep(POLL_INTERVAL_SECONDS)
    raise AssertionError(f"/health counts {seen} sessions, expected {expected}")


_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


async def metrics(server: Any, token: str = ADMIN) -> dict[str, float]:
    """GET /metrics (admin JWT) as {'name{labels}': value}."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        r = await http.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in _SAMPLE.finditer(r.text)}


def rss_kib(server: Any) -> int:
    """The server process's resident set size (VmRSS), KiB."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def interop(factory: Any, *settings: str, max_payload: int = 10_000) -> Any:
    """Start tests/interop_server.py with ``--set NAME=VALUE`` overrides."""
    args: list[str] = ["--max-payload", str(max_payload)]
    for item in settings:
        args += ["--set", item]
    return factory("tests/interop_server.py", *args)
