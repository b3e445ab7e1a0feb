"""How the demo reaches the server: a tiny HTTP/1.1 client (h11) and a tiny Socket.IO client
(Engine.IO v4 over trio-websocket), both over loopback, both speaking the public protocols only."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import h11
import msgspec
import trio
import trio_websocket

T = TypeVar("T")

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def loopback(host: str) -> str:
    """The address to reach a server listening on ``host`` (a wildcard means this machine)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


# --- HTTP ----------------------------------------------------------------------------------------
class DemoHTTPError(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


async def http_json(
    host: str,
    port: int,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
) -> tuple[int, object]:
    """One request (``Connection: close``); returns the status and the decoded JSON body."""
    payload = b"" if body is None else _encode(body)
    headers = [("Host", f"{host}:{port}"), ("Connection", "close"), ("User-Agent", "sb-demo")]
    if body is not None:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        out = conn.send(h11.Request(method=method, target=path, headers=headers))
        out += conn.send(h11.Data(data=payload)) if payload else b""
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        status, raw = await _read_response(conn, stream)
    try:
        decoded: object = _decode(raw) if raw else None
    except msgspec.DecodeError:
        return status, raw.decode("utf-8", "replace")
    return status, decoded


async def _read_response(conn: h11.Connection, stream: trio.SocketStream) -> tuple[int, bytes]:
    status = 0
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return status, b"".join(chunks)


class Server:
    """This server as the demo reaches it: REST calls and the Socket.IO endpoint's URL."""

    def __init__(self, host: str, port: int, engineio_path: str) -> None:
        self.host = loopback(host)
        self.port = port
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        self.ws_url = f"ws://{bracketed}:{port}{engineio_path}?EIO=4&transport=websocket"

    async def request(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> tuple[int, object]:
        """The status and the decoded answer, whatever the status."""
        return await http_json(self.host, self.port, method, path, body, token)

    async def call(
        self,
        method: str,
        path: str,
        answer: type[T],
        body: object = None,
        token: str | None = None,
    ) -> T:
        """The answer as ``answer``; :class:`DemoHTTPError` for a 4xx or 5xx."""
        status, decoded = await self.request(method, path, body, token)
        if status >= 400:
            raise DemoHTTPError(status, decoded)
        return msgspec.convert(decoded, answer)


# --- Socket.IO -----------------------------------------------------------------------------------
class SocketIOError(Exception):
    pass


def succeeded(answer: object) -> bool:
    """Whether an ack says ``{success: true, ...}``."""
    return isinstance(answer, dict) and bool(answer.get("success"))


class SocketIOClient:
    """One Socket.IO namespace over one Engine.IO WebSocket: ``emit`` and ``call`` (with ack)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, namespace: str) -> None:
        self.ws = ws
        self.namespace = namespace
        self.prefix = "" if namespace == "/" else f"{namespace},"
        self._ack_ids = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[object]]] = {}
        self.received: list[tuple[str, list[object]]] = []  # the last few events, for debugging
        self.on_event: Callable[[str, list[object]], None] | None = None

    async def emit(self, event: str, *args: object) -> None:
        await self.ws.send_message(f"42{self.prefix}" + _encode([event, *args]).decode())

    async def call(self, event: str, *args: object, timeout: float = 15.0) -> object:
        ack_id = next(self._ack_ids)
        done = trio.Event()
        slot: list[object] = []
        self._waiting[ack_id] = (done, slot)
        try:
            await self.ws.send_message(
                f"42{self.prefix}{ack_id}" + _encode([event, *args]).decode()
            )
            with trio.fail_after(timeout):
                await done.wait()
        finally:
            self._waiting.pop(ack_id, None)
        return slot[0] if slot else None

    async def join(self, token: str, timeout: float) -> None:
        """Wait for Engine.IO's open packet, then join the namespace with ``auth.token``."""
        ws = self.ws
        with trio.fail_after(timeout):
            opened = await ws.get_message()
            if not isinstance(opened, str) or not opened.startswith("0"):
                raise SocketIOError(f"unexpected Engine.IO open packet {opened!r}")
            await ws.send_message(f"40{self.prefix}" + _encode({"token": token}).decode())
            while True:
                reply = await ws.get_message()
                if reply == "2":
                    await ws.send_message("3")
                elif isinstance(reply, str) and reply.startswith(f"44{self.prefix}"):
                    raise SocketIOError(f"{self.namespace} refused the connection: {reply}")
                elif isinstance(reply, str) and reply.startswith(f"40{self.prefix}"):
                    return

    async def read(self) -> None:
        """Answer pings, resolve acks, note events; raises when the server closes."""
        while True:
            message = await self.ws.get_message()
            if not isinstance(message, str) or not message:
                continue
            if message == "2":
                await self.ws.send_message("3")
            elif message[0] == "1":
                raise SocketIOError("the server closed the connection")
            elif message.startswith("4"):
                self._packet(message[1:])

    def _packet(self, text: str) -> None:
        kind, rest = text[:1], text[1:]
        if not rest.startswith(self.prefix):
            return
        rest = rest[len(self.prefix) :]
        if kind == "3":  # ACK: <id>[args]
            digits = len(rest) - len(rest.lstrip("0123456789"))
            waiter = self._waiting.get(int(rest[:digits] or "0"))
            if waiter is not None:
                args = _decode(rest[digits:])
                waiter[1].append(args[0] if args else None)
                waiter[0].set()
        elif kind == "2":  # EVENT: [name, args...]
            start = len(rest) - len(rest.lstrip("0123456789"))
            data = _decode(rest[start:])
            if isinstance(data, list) and data and isinstance(data[0], str):
                self.received = [*self.received[-19:], (data[0], data[1:])]
                if self.on_event is not None:
                    self.on_event(data[0], data[1:])


@asynccontextmanager
async def socketio_client(
    url: str, namespace: str, token: str, *, timeout: float = 15.0
) -> AsyncIterator[SocketIOClient]:
    """Connect (Engine.IO v4 over WebSocket), join ``namespace`` with ``auth.token``, and keep
    reading until the block ends. Raises :class:`SocketIOError` when the namespace refuses."""
    async with trio_websocket.open_websocket_url(url) as ws:
        client = SocketIOClient(ws, namespace)
        await client.join(token, timeout)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.read)
            yield client
            nursery.cancel_scope.cancel()
