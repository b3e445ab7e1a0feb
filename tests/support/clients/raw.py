"""Raw Engine.IO / Socket.IO clients: exact strings and bytes over real sockets, nothing clever.

* :class:`WebSocketClient` - one Engine.IO packet per trio-websocket frame (text as ``str``,
  binary as ``bytes``); server PINGs answered while reading. :class:`SioWS` adds the Socket.IO
  steps (OPEN, CONNECT, echo and other acked calls, waiting for the close).
* :class:`Polling` - one Engine.IO session over HTTP long-polling, driven with exact bodies.
* :class:`RawConn` - a hand-driven TCP connection: HTTP heads, WebSocket handshakes (first
  request -> the native path; after a keep-alive request -> the ASGI route), hand-built client
  frames (:func:`client_frame`, any frame, well-formed or not).
* :class:`RawGet` - a GET on its own connection, returned once the server has read it
  (``tests/support/tcp_table.py``).

Nothing here implements the protocol "for" the tests, and every wait is bounded
(``trio.fail_after``); nothing sleeps in place of an event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.support.tcp_table import server_end
from tests.support.tokens import interop_token
from tests.support.waiting import wait_until

PATH = "/socket.io/"
WAIT = 5.0
AT_ONCE = 1.0  # "promptly": far below any heartbeat the servers here run with
RS = "\x1e"  # Engine.IO v4 polling payload separator

#: the interop server's token for the raw clients
TOKEN = interop_token("hardening")


def dumps(value: Any) -> str:
    """Compact JSON, as Socket.IO servers write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def base_url(server: Any) -> str:
    """``http://host:port`` of a server object (``.url``) or of a URL given as a string."""
    return server if isinstance(server, str) else str(server.url)


def ws_url(server: Any, query: str = "", *, token: str | None = TOKEN) -> str:
    q = "EIO=4&transport=websocket" + (f"&token={token}" if token else "") + query
    return f"{server.ws_url}{PATH}?{q}"


def parse_open_packet(packet: str | bytes) -> dict[str, Any]:
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


# --- WebSocket -----------------------------------------------------------------------------------
class WebSocketClient:
    """A raw WebSocket: one Engine.IO packet per frame; ``wait`` bounds a read by default."""

    wait = WAIT

    def __init__(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.frames: list[str | bytes] = []  # every frame received, PINGs included
        self.pings = 0  # server PINGs answered

    async def send(self, message: str | bytes) -> None:
        await self.conn.send_message(message)

    async def recv_raw(self, timeout: float | None = None) -> str | bytes:
        with trio.fail_after(self.wait if timeout is None else timeout):
            message = await self.conn.get_message()
        self.frames.append(message)
        return message

    async def recv(self, timeout: float | None = None) -> str | bytes:
        """Next frame that is not a server PING; PINGs are answered with ``3``."""
        timeout = self.wait if timeout is None else timeout
        with trio.fail_after(timeout):
            while True:
                message = await self.recv_raw(timeout=timeout)
                if message == "2":
                    self.pings += 1
                    await self.send("3")
                    continue
                return message


class SioWS(WebSocketClient):
    """Exact Engine.IO/Socket.IO text over one WebSocket."""

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

    async def echo(self, ack_id: int, value: Any, timeout: float | None = None) -> None:
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
                    if message != "2":  # any other frame before the close is unexpected
                        raise AssertionError(f"got {message!r} instead of a close")
            except ConnectionClosed as closed:
                return closed.reason.code


@asynccontextmanager
async def sio_ws(
    server: Any, *, connect: bool = True, query: str = "", token: str | None = TOKEN
) -> AsyncIterator[SioWS]:
    """A :class:`SioWS` to ``server`` (OPEN read; CONNECTed to ``/`` unless ``connect=False``)."""
    async with open_websocket_url(
        ws_url(server, query, token=token), max_message_size=1 << 24
    ) as c:
        client = SioWS(c)
        await client.open()
        if connect:
            await client.connect()
        yield client


# --- long-polling --------------------------------------------------------------------------------
class Polling:
    """One Engine.IO session over HTTP long-polling at ``server`` + ``path`` (``token`` sent as
    ``?token=`` when given); ``wait`` bounds a request by default."""

    wait = WAIT

    def __init__(
        self, http: httpx.AsyncClient, server: Any, path: str = PATH, *, token: str | None = None
    ) -> None:
        self.http = http
        self.url = base_url(server) + path
        self.sid: str | None = None
        self.token = token
        # when the handshake was sent: the server arms its timers after this, so it is a sound
        # start for "not earlier than" checks (the answer's arrival may lag behind the arming)
        self.handshake_sent_at: float | None = None

    def params(self, **extra: str) -> dict[str, str]:
        p = {"EIO": "4", "transport": "polling"}
        if self.token:
            p["token"] = self.token
        if self.sid is not None:
            p["sid"] = self.sid
        p.update(extra)
        return p

    def query(self) -> str:
        return urlencode(self.params())

    async def handshake(self) -> dict[str, Any]:
        self.handshake_sent_at = trio.current_time()
        r = await self.http.get(self.url, params=self.params())
        assert r.status_code == 200, (r.status_code, r.text)
        info = parse_open_packet(r.text)
        self.sid = info["sid"]
        return info

    async def get(self, timeout: float | None = None) -> httpx.Response:
        with trio.fail_after(self.wait if timeout is None else timeout):
            return await self.http.get(self.url, params=self.params())

    async def post(self, body: str | bytes, timeout: float | None = None) -> httpx.Response:
        with trio.fail_after(self.wait if timeout is None else timeout):
            return await self.http.post(self.url, params=self.params(), content=body)

    async def post_ok(self, body: str | bytes) -> None:
        r = await self.post(body)
        assert (r.status_code, r.text) == (200, "ok")

    async def connect(self) -> None:
        """CONNECT to ``/`` and read the answer."""
        r = await self.post("40")
        assert (r.status_code, r.text) == (200, "ok")
        r = await self.get()
        assert r.text.startswith('40{"sid":'), r.text

    async def send_get(self) -> RawGet:
        """Send a GET on a connection of its own and return once the server has read it (the
        request is then pending on the server, or answered); ``await get.response()`` later."""
        return await RawGet.send(self.url, self.params(), self.wait)

    async def get_packets(self, timeout: float | None = None) -> list[str]:
        """One GET; returns its packets with server PINGs removed (each answered with a PONG)."""
        r = await self.get(timeout)
        assert r.status_code == 200, (r.status_code, r.text)
        packets = r.text.split(RS)
        if "2" in packets:
            await self.post_ok("3")
        return [p for p in packets if p != "2"]

    async def collect(self, count: int, timeout: float | None = None) -> list[str]:
        """GET until ``count`` non-PING packets have arrived."""
        out: list[str] = []
        with trio.fail_after(self.wait if timeout is None else timeout):
            while len(out) < count:
                out += await self.get_packets()
        assert len(out) == count, out
        return out


# --- raw TCP -------------------------------------------------------------------------------------
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
                body = await self._chunked_body()
            else:
                body = b""
            return status, headers, body

    async def _chunked_body(self) -> bytes:
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
                return body

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


# --- "the server read it" ------------------------------------------------------------------------
async def wait_server_has_read(server_port: int, client_port: int, timeout: float = WAIT) -> None:
    """Until the server's end of our connection holds no unread bytes: on loopback our bytes
    are in its receive queue by the time ``send`` returns, so "empty" means the server took
    the request in (``tests/support/tcp_table.py``)."""

    def read() -> bool:
        end = server_end(server_port, client_port)
        return end is not None and end.unread_bytes == 0

    await wait_until(read, timeout, message=f"the server did not read our request in {timeout}s")


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

    def __init__(self, conn: RawConn, wait: float = WAIT) -> None:
        self.conn = conn
        self.wait = wait

    @classmethod
    async def send(cls, url: str, params: dict[str, str], wait: float = WAIT) -> RawGet:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        conn = RawConn(await trio.open_tcp_stream(host, port))
        await conn.send(
            f"GET {parts.path}?{urlencode(params)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: */*\r\n\r\n".encode()
        )
        await wait_server_has_read(port, conn.stream.socket.getsockname()[1], wait)
        return cls(conn, wait)

    async def response(self, timeout: float | None = None) -> RawResponse:
        async with self.conn.stream:
            status, _, body = await self.conn.response(self.wait if timeout is None else timeout)
        return RawResponse(status, body.decode("utf-8"))
