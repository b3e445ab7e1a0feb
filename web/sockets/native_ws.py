"""The native WebSocket path: Engine.IO over WebSocket straight on trio sockets.

Why not the ASGI route: per-frame ASGI costs a task hop, a lock and a cancel scope per message per
client (measured: docs/architecture.md, "The front door"). Here:

* :mod:`protocol.websocket_handshake` reads the common HTTP upgrade and answers it (wsproto
  decides any other request, and writes every refusal); after it, client frames are read with
  ``recv_into`` one shared buffer when :mod:`web.sockets.readiness` says the socket is readable
  (one epoll set registered once per socket, not re-armed per message) and parsed by
  :class:`protocol.websocket.FrameParser`;
* server frames are pre-built bytes (a broadcast's frame is built once, see ``OutFrame.ws``);
* pushing to a client appends to its pending list and marks it dirty; ONE :class:`Flusher` task
  writes every dirty client with a non-blocking ``send`` after the current batch of work, so many
  frames for one client coalesce into one system call and no task is woken per member;
* only a client whose kernel buffer is full gets a drain task that waits for writability; what
  it queues meanwhile is bounded by ``max_outbox_bytes`` (then it is cut off as a slow consumer).
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from actors.sockets.outbox import OutFrame
from actors.sockets.session import Handshake
from protocol import engineio, websocket, websocket_handshake
from protocol.errors import ProtocolError
from web.sockets.engineio_server import EngineServer, EngineSocket
from web.sockets.log_context import connection_id
from web.sockets.readiness import Readiness, TrioReadiness, new_poller

log = logging.getLogger("switchboard.native_ws")

# One receive buffer for every connection: each read is parsed (copied out) before the reading
# task can yield, so sharing is safe and saves a large allocation per read.
_RECV_BUFFER = bytearray(256 * 1024)
_RECV_VIEW = memoryview(_RECV_BUFFER)

CLOSE_NORMAL = websocket.frame_close(1000)


class Flusher:
    """Writes every dirty connection in one pass, after the tasks runnable now have run."""

    def __init__(self) -> None:
        self.dirty: dict[NativeWebSocket, None] = {}
        self._sleeper: Any = None
        self.passes = 0

    def mark(self, conn: NativeWebSocket) -> None:
        self.dirty[conn] = None
        sleeper = self._sleeper
        if sleeper is not None:
            self._sleeper = None
            reschedule(sleeper)

    async def run(self) -> None:
        dirty = self.dirty
        while True:
            if not dirty:
                self._sleeper = current_task()
                try:
                    await wait_task_rescheduled(self._abort)
                finally:
                    self._sleeper = None
            # let every task that is runnable now (readers, rooms) finish its step first, so
            # several frames for one client leave in one send
            await trio.lowlevel.cancel_shielded_checkpoint()
            conns = list(dirty)
            dirty.clear()
            self.passes += 1
            for conn in conns:
                if conn.pending and not conn.busy:
                    conn.flush_now()

    def _abort(self, raise_cancel: Any) -> Abort:
        self._sleeper = None
        return Abort.SUCCEEDED


class NativeWebSocket:
    """The WebSocket transport of one connection on the native path."""

    name = "websocket"
    __slots__ = (
        "busy",
        "closed",
        "drained",
        "flusher",
        "pending",
        "queued_bytes",
        "reader_scope",
        "readiness",
        "sock",
        "spawn",
    )

    def __init__(
        self,
        sock: stdlib_socket.socket,
        flusher: Flusher,
        spawn: Callable[..., None],
        readiness: Readiness | TrioReadiness,
    ) -> None:
        self.sock = sock
        self.flusher = flusher
        self.spawn = spawn
        self.pending: list[bytes] = []
        self.queued_bytes = 0
        self.busy = False  # a drain task owns the socket's writes
        self.closed = False
        self.drained: trio.Event | None = None
        self.reader_scope: trio.CancelScope | None = None
        self.readiness = readiness

    def push(self, frame: OutFrame) -> None:
        self.push_bytes(frame.ws)

    def push_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        self.pending.append(data)
        self.queued_bytes += len(data)
        if not self.busy:
            self.flusher.mark(self)

    def flush_now(self) -> None:
        """Write what is pending without blocking; hand the rest to a drain task."""
        pending = self.pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.queued_bytes = 0
            self._lost()
            return
        if sent == len(data):
            self.queued_bytes = 0
            return
        rest = data[sent:]
        pending.append(rest)
        self.queued_bytes = len(rest)
        self.busy = True
        self.drained = trio.Event()
        self.spawn(self._drain)

    async def _drain(self) -> None:
        pending = self.pending
        try:
            while pending:
                await trio.lowlevel.wait_writable(self.sock)
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                try:
                    sent = self.sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    self._lost()
                    return
                if sent < len(data):
                    pending.insert(0, data[sent:])
                self.queued_bytes = sum(map(len, pending))
        except (OSError, trio.ClosedResourceError):
            self._lost()
        finally:
            self.busy = False
            if self.drained is not None:
                self.drained.set()

    def _lost(self) -> None:
        self.pending.clear()
        self.closed = True
        if self.reader_scope is not None:
            self.reader_scope.cancel()

    def close(self) -> None:
        """Engine.IO decided to end: send what is queued and a close frame, stop the reader."""
        if self.closed:
            return
        self.push_bytes(CLOSE_NORMAL)
        self.closed = True
        if self.reader_scope is not None:
            self.reader_scope.cancel()

    async def finish(self, timeout: float = 1.0) -> None:
        """Give queued frames a moment to leave, then close the socket."""
        with trio.move_on_after(timeout):
            if self.busy and self.drained is not None:
                await self.drained.wait()
            while self.pending:
                data = b"".join(self.pending)
                self.pending.clear()
                try:
                    await trio.lowlevel.wait_writable(self.sock)
                    sent = self.sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    break
                if sent < len(data):
                    self.pending.insert(0, data[sent:])
        self.pending.clear()
        self.closed = True
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()


class NativeWebSocketV3(NativeWebSocket):
    """The same for an Engine.IO v3 client (its binary messages carry a type byte)."""

    __slots__ = ()

    def push(self, frame: OutFrame) -> None:
        self.push_bytes(frame.ws_v3)


def _http_response(status: int, reason: str, body: bytes, content_type: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class NativeEndpoint:
    """Serves WebSocket connections handed over by the front door."""

    def __init__(
        self,
        engine: EngineServer,
        *,
        max_message_bytes: int,
        origin_allowed: Callable[[str | None, str | None], bool],
        client_address: Callable[[str, str | None], str],
        nursery: trio.Nursery,
    ) -> None:
        self.engine = engine
        self.max_message_bytes = max_message_bytes
        self.origin_allowed = origin_allowed
        self.client_address = client_address  # (peer, X-Forwarded-For) -> the client's address
        self.nursery = nursery
        self.flusher = Flusher()
        self.connections = 0
        nursery.start_soon(self.flusher.run)
        self.poller = new_poller()
        if self.poller is not None:
            nursery.start_soon(self.poller.run)

    async def serve(
        self, sock: stdlib_socket.socket, head: bytes, rest: bytes, remote_addr: str
    ) -> None:
        """Run one connection whose request head (an Engine.IO WebSocket upgrade) was read."""
        # the common request is read by websocket_handshake; wsproto decides anything else
        upgrade = websocket_handshake.parse_upgrade(head)
        conn: WSConnection | None = None
        if upgrade is None:
            conn, request = _wsproto_for(head)
            if request is None:
                body = b"Bad Request"
                await _send_all(sock, _http_response(400, "Bad Request", body, "text/plain"))
                return
            target_path, host, raw_headers = request.target, request.host, request.extra_headers
        else:
            target_path, host, raw_headers = upgrade.target, upgrade.host, upgrade.headers
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        headers["host"] = host
        remote_addr = self.client_address(remote_addr, headers.get("x-forwarded-for"))
        query = _query(target_path)
        if not self.origin_allowed(headers.get("origin"), host):
            self.engine.refuse("forbidden")
            err = engineio.RequestError(engineio.ErrorCode.FORBIDDEN)
            await _send_all(sock, _reject(conn or _wsproto_for(head)[0], err))
            return
        target, error = self.engine.websocket_target(query, remote_addr)
        if error is not None or target is None:
            err = error or engineio.RequestError(engineio.ErrorCode.BAD_REQUEST)
            await _send_all(sock, _reject(conn or _wsproto_for(head)[0], err))
            return
        if upgrade is not None:
            await _send_all(sock, websocket_handshake.accept_response(upgrade.key))
        else:
            assert conn is not None
            await _send_all(sock, conn.send(AcceptConnection()))
        readiness = TrioReadiness(sock) if self.poller is None else self.poller.register(sock)
        legacy = target.protocol == 3 or (
            target.sid is not None and self.engine.protocol_of(target.sid) == 3
        )
        kind = NativeWebSocketV3 if legacy else NativeWebSocket
        transport = kind(sock, self.flusher, self.nursery.start_soon, readiness)
        parser = websocket.FrameParser(max_message_bytes=self.max_message_bytes)
        self.connections += 1
        try:
            if target.sid is None:
                hs = Handshake(query, headers, remote_addr, "websocket")
                esock = self.engine.open(transport, hs, upgrades=[], protocol=target.protocol)
                connection_id.set(esock.sid)
                await self._read(esock, transport, parser, rest, upgrading=False)
            else:
                connection_id.set(target.sid)
                esock_or_none = self.engine.begin_upgrade(target.sid)
                if esock_or_none is None:  # already upgraded/upgrading: accept, then close
                    transport.close()
                    return
                await self._read(esock_or_none, transport, parser, rest, upgrading=True)
        finally:
            self.connections -= 1
            if self.poller is not None:
                self.poller.unregister(sock)
            await transport.finish()

    async def _read(
        self,
        esock: EngineSocket,
        transport: NativeWebSocket,
        parser: websocket.FrameParser,
        rest: bytes,
        *,
        upgrading: bool,
    ) -> None:
        sock = transport.sock
        reason = "transport close"
        with trio.CancelScope() as scope:
            transport.reader_scope = scope
            try:
                if upgrading:
                    leftover: list[Any] | None = None
                    with trio.move_on_after(self.engine.config.upgrade_timeout_seconds):
                        leftover = await self._upgrade(esock, transport, parser, rest)
                    if leftover is None:
                        esock.upgrading = False
                        transport.close()
                        return
                    over = bool(leftover) and await self._handle(esock, transport, leftover)
                else:  # frames that came with the request head (a Close among them ends it)
                    over = bool(rest) and await self._handle(esock, transport, parser.feed(rest))
                readiness = transport.readiness
                while not over:
                    await readiness.wait()
                    try:
                        received = sock.recv_into(_RECV_BUFFER)
                    except BlockingIOError:
                        continue
                    except OSError:
                        reason = "transport error"
                        break
                    if not received:
                        break
                    if received == len(_RECV_BUFFER):
                        readiness.more()
                    events = parser.feed(_RECV_VIEW[:received].tobytes())
                    if events and await self._handle(esock, transport, events):
                        break
            except websocket.WebSocketError as err:
                log.info("websocket %s: %s", esock.sid, err)
                transport.pending.clear()
                transport.push_bytes(websocket.frame_close(err.close_code))
                reason = "parse error"
            except ProtocolError as err:
                log.info("closing %s: %s", esock.sid, err)
                reason = "parse error"
        if esock.transport is transport:
            esock.close(reason)
        else:  # a failed upgrade ends only this WebSocket; the polling session goes on
            esock.upgrading = False

    async def _handle(
        self, esock: EngineSocket, transport: NativeWebSocket, events: list[Any]
    ) -> bool:
        """Handle parsed frames; True when the WebSocket is over."""
        for event in events:
            kind = type(event)
            if kind is websocket.TextMessage:
                if esock.closed:
                    return True
                stats = esock.server.stats
                stats.packets_in += 1
                stats.bytes_in += len(event.data)
                await esock.receive_text(event.data)
            elif kind is websocket.BinaryMessage:
                if esock.closed:
                    return True
                stats = esock.server.stats
                stats.packets_in += 1
                stats.bytes_in += len(event.data)
                await esock.receive(esock.decode(event.data))
            elif kind is websocket.Ping:
                transport.push_bytes(websocket.frame_pong(event.payload))
            elif kind is websocket.Close:
                transport.push_bytes(CLOSE_NORMAL)
                return True
        return False

    async def _upgrade(
        self,
        esock: EngineSocket,
        transport: NativeWebSocket,
        parser: websocket.FrameParser,
        rest: bytes,
    ) -> list[Any] | None:
        """Probe and switch a polling session to this WebSocket. Returns the frames that came
        after the UPGRADE packet in the same read (to be handled next), or None: not switched."""
        sock = transport.sock
        data = rest
        while True:
            events = parser.feed(data) if data else []
            for index, event in enumerate(events):
                if type(event) is websocket.Close:
                    return None
                if type(event) is websocket.Ping:
                    transport.push_bytes(websocket.frame_pong(event.payload))
                elif type(event) is websocket.TextMessage:
                    packet = engineio.decode_packet(event.data)
                    if esock.closed:
                        return None
                    if esock.upgrade_step(transport, packet):
                        return events[index + 1 :]
            await transport.readiness.wait()
            try:
                received = sock.recv_into(_RECV_BUFFER)
            except BlockingIOError:
                data = b""
                continue
            except OSError:
                return None
            if not received:
                return None
            if received == len(_RECV_BUFFER):
                transport.readiness.more()
            data = _RECV_VIEW[:received].tobytes()


def _wsproto_for(head: bytes) -> tuple[WSConnection, Request | None]:
    """wsproto's state machine fed with the request head, and its request (None: refused)."""
    conn = WSConnection(ConnectionType.SERVER)
    request: Request | None = None
    try:
        conn.receive_data(head)
        for event in conn.events():
            if isinstance(event, Request):
                request = event
    except RemoteProtocolError:
        request = None
    return conn, request


def _query(target: str) -> dict[str, str]:
    """The query of a request target, as ``urlsplit(target).query`` reads it."""
    query = target.split("#", 1)[0].partition("?")[2]
    return dict(parse_qsl(query, keep_blank_values=True)) if query else {}


def _reject(conn: WSConnection, err: engineio.RequestError) -> bytes:
    body = err.body()
    return conn.send(
        RejectConnection(
            status_code=err.status,
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            has_body=True,
        )
    ) + conn.send(RejectData(data=body))


async def _send_all(sock: stdlib_socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        view = view[sent:]
