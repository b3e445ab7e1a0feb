"""The same-port front door: one listener, each connection's first request head routed.

An Engine.IO WebSocket upgrade goes to the native path (:mod:`web.sockets.native_ws`); anything
else goes to Hypercorn serving the Quart-Trio app, with the bytes already read replayed to it.

Hypercorn has no public hook for handing it an accepted connection, so this module drives its
trio internals directly. What it relies on, all of it here and nowhere else (the version range is
pinned in pyproject.toml, and ``tests/web/test_hypercorn_tripwire.py`` fails loudly on a Hypercorn
that changed any of it):

* ``hypercorn.trio.tcp_server.TCPServer(app, config, context, state, stream)``: ``run()`` serves
  one connection; ``protocol_send(event)`` receives ``hypercorn.events.Updated(idle=...)``;
  ``idle_task.stop()`` cancels its idle timer; the private ``_initiate_server_close()`` closes the
  connection the way its own idle timeout would;
* ``hypercorn.trio.lifespan.Lifespan(app, config, state)`` with ``handle_lifespan``,
  ``wait_for_startup`` and ``wait_for_shutdown``;
* ``hypercorn.trio.worker_context.WorkerContext(max_requests)`` and
  ``hypercorn.utils.wrap_app(app, wsgi_max_body_size, mode)``;
* ``config.keep_alive_timeout``, ``websocket_max_message_size`` and ``h11_max_incomplete_size``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket as stdlib_socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
from hypercorn.config import Config
from hypercorn.events import Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from actors.store.check import StartupFailed
from protocol import engineio
from web.platform.app import SwitchboardApp
from web.platform.settings import Settings
from web.sockets.forward import owner_of, splice_upgrade

log = logging.getLogger("switchboard.front_door")

ACCEPT_BACKOFF_SECONDS = 0.1  # after a failed accept (no file descriptors left)

_REQUEST_LINE = re.compile(rb"^GET (/[^ ?]*)(\?[^ ]*)? HTTP/1\.1\r\n")
_UNKNOWN_SID = engineio.RequestError(engineio.ErrorCode.UNKNOWN_SID).body()
UNKNOWN_SID_RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_UNKNOWN_SID), _UNKNOWN_SID)
)
_UPGRADE_WEBSOCKET = re.compile(rb"\r\nupgrade:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)


class KeepAliveTCPServer(TCPServer):
    """Hypercorn's TCPServer with the keep-alive timer on a plain deadline.

    In Hypercorn 0.18 under current trio, restarting the idle timer after a response
    (``idle_task.restart`` in ``protocol_send``) never returns, so an idle keep-alive connection,
    or one that sends half of a second request head (slowloris after one cheap request), was
    never closed. Here ``Updated(idle=True)`` just sets :attr:`keep_alive`'s deadline, which a
    watchdog task (see :meth:`FrontDoor._route`) turns into a close.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.keep_alive = trio.CancelScope()

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, Updated):
            if event.idle:
                self.keep_alive.deadline = trio.current_time() + self.config.keep_alive_timeout
            else:
                self.keep_alive.deadline = math.inf
                await self.idle_task.stop()  # the timer of the first request (works)
            return
        await super().protocol_send(event)

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:

            async def close_when_idle() -> None:
                with self.keep_alive:
                    await trio.sleep_forever()
                with trio.CancelScope(shield=True):
                    await self._initiate_server_close()

            nursery.start_soon(close_when_idle)
            await self.run()
            nursery.cancel_scope.cancel()


class ReplayStream(trio.abc.HalfCloseableStream):
    """A SocketStream whose first receive returns the bytes the front door already read."""

    def __init__(self, stream: trio.SocketStream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix
        self.socket = stream.socket  # Hypercorn reads the peer and local names from it

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    def abort(self) -> None:
        """Close the socket now: a send blocked on it fails, and Hypercorn tears down."""
        self._stream.socket.close()


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = settings.log_level.upper()
    # Hypercorn 0.18 refuses an over-size fragmented message with 1009 but then never reads the
    # client's close, leaving the session open; it gets a looser cap and the ASGI route enforces
    # max_http_buffer_size_bytes itself (web.sockets.asgi_ws).
    config.websocket_max_message_size = 2 * settings.max_http_buffer_size_bytes + 65536
    config.h11_max_incomplete_size = settings.max_http_head_bytes
    return config


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """The request target and the (lower-case) headers of a request head."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return (parts[1] if len(parts) > 1 else "/"), headers


def is_native_route(head: bytes, path: str) -> bool:
    match = _REQUEST_LINE.match(head)
    if match is None or match.group(1) != path.encode():
        return False
    return _UPGRADE_WEBSOCKET.search(head) is not None


def listen(
    host: str, port: int, backlog: int = 4096, *, reuse_port: bool = False
) -> stdlib_socket.socket:
    """A listening socket; ``reuse_port`` lets the workers of one machine share the port (the
    kernel spreads new connections over them)."""
    sock = bound(host, port, reuse_port=reuse_port)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def bound(host: str, port: int, *, reuse_port: bool = False) -> stdlib_socket.socket:
    family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
    sock = stdlib_socket.socket(family, stdlib_socket.SOCK_STREAM)
    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class FrontDoor:
    def __init__(self, app: SwitchboardApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.config = hypercorn_config(settings)
        self.asgi = wrap_app(app, self.config.wsgi_max_body_size, None)
        self.lifespan_state: dict[str, Any] = {}
        self.context = WorkerContext(None)
        self.listeners: list[stdlib_socket.socket] = []
        self.open_streams: dict[tuple[str, int], ReplayStream] = {}
        app.runtime.use_connection_aborter(self.abort)

    async def serve(
        self,
        listeners: list[stdlib_socket.socket],
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve every connection of ``listeners`` (the port, and in a worker its peer port)."""
        async with trio.open_nursery() as nursery:
            lifespan = Lifespan(self.asgi, self.config, self.lifespan_state)
            await nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            failure = self.app.runtime.start_failure
            if failure is not None:  # Hypercorn would carry on without the runtime: refuse
                raise StartupFailed(failure)
            task_status.started()
            self.listeners = list(listeners)
            try:
                for listener in listeners:
                    nursery.start_soon(self._accept, listener, nursery)
                await trio.sleep_forever()  # after stop_accepting: serve what is open
            finally:
                with trio.CancelScope(shield=True):
                    await lifespan.wait_for_shutdown()

    async def _accept(self, listener: stdlib_socket.socket, nursery: trio.Nursery) -> None:
        wait_readable = trio.lowlevel.wait_readable
        while listener in self.listeners:
            try:
                await wait_readable(listener)
            except (trio.ClosedResourceError, OSError):
                return
            while True:  # accept everything that is waiting, then wait again
                try:
                    sock, address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as err:  # e.g. out of file descriptors: shed load, keep serving
                    log.warning("accept failed: %s", err)
                    await trio.sleep(ACCEPT_BACKOFF_SECONDS)  # the listener stays readable
                    break
                sock.setblocking(False)
                sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
                if self.settings.socket_send_buffer_bytes:
                    sock.setsockopt(
                        stdlib_socket.SOL_SOCKET,
                        stdlib_socket.SO_SNDBUF,
                        self.settings.socket_send_buffer_bytes,
                    )
                nursery.start_soon(self._route, sock, _address(address))

    def stop_accepting(self) -> None:
        """Close the listening sockets: new connections are refused, open ones go on."""
        listeners, self.listeners = self.listeners, []
        for listener in listeners:
            trio.lowlevel.notify_closing(listener)
            listener.close()

    async def _route(self, sock: stdlib_socket.socket, remote_addr: str) -> None:
        buffer = b""
        limit = self.settings.max_http_head_bytes
        with trio.move_on_after(self.settings.http_head_timeout_seconds):
            while b"\r\n\r\n" not in buffer and len(buffer) < limit:
                await trio.lowlevel.wait_readable(sock)
                try:
                    data = sock.recv(limit)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                buffer += data
        end = buffer.find(b"\r\n\r\n")
        if (
            end >= 0
            and self.settings.native_websocket
            and is_native_route(buffer[: end + 4], self.settings.engineio_path)
        ):
            head, rest = buffer[: end + 4], buffer[end + 4 :]
            if await self._forward_upgrade(sock, head, rest, remote_addr):
                return
            await self.app.runtime.native.serve(sock, head, rest, remote_addr)
            return
        if end < 0:  # nothing, a head too slow (slowloris) or too large: answer and hang up
            if buffer:
                status = (
                    "431 Request Header Fields Too Large"
                    if len(buffer) >= limit
                    else ("408 Request Timeout")
                )
                with contextlib.suppress(OSError):
                    sock.send(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n".encode())
            trio.lowlevel.notify_closing(sock)
            sock.close()
            return
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        replay = ReplayStream(stream, buffer)
        peer = _peer(sock)
        self.open_streams[peer] = replay
        try:
            await KeepAliveTCPServer(
                self.asgi, self.config, self.context, dict(self.lifespan_state), replay
            ).serve()
        finally:
            if self.open_streams.get(peer) is replay:
                del self.open_streams[peer]

    async def _forward_upgrade(
        self, sock: stdlib_socket.socket, head: bytes, rest: bytes, remote_addr: str
    ) -> bool:
        """An upgrade for another node's session goes to that node (web.sockets.forward)."""
        runtime = self.app.runtime
        if runtime.cluster is None:
            return False
        target, headers = parse_head(head)
        sid = next(iter(parse_qs(urlsplit(target).query).get("sid", [])), None)
        if sid is None or sid in runtime.engine.sockets:
            return False
        owner = await owner_of(runtime.cluster, sid, headers)
        if owner is None:
            return False  # ours, already forwarded once, or gone: the native path answers
        client = runtime.proxies.client_address(remote_addr, headers.get("x-forwarded-for"))
        if await splice_upgrade(sock, head, rest, owner, runtime.cluster, client, headers):
            return True
        runtime.engine.refuse("unknown_sid")  # the owner cannot be reached: the session is gone
        with contextlib.suppress(OSError):
            sock.send(UNKNOWN_SID_RESPONSE)
        sock.close()
        return True

    def abort(self, client: Any) -> bool:
        """Hang up the Hypercorn-served connection from ``client`` (the ASGI scope's
        ``client``), even while a send to it is blocked; False when there is none."""
        replay = self.open_streams.get(_peer_key(client))
        if replay is None:
            return False
        replay.abort()
        return True


def _peer(sock: stdlib_socket.socket) -> tuple[str, int]:
    try:
        return _peer_key(sock.getpeername())
    except OSError:
        return ("", 0)


def _peer_key(address: Any) -> tuple[str, int]:
    if isinstance(address, list | tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return ("", 0)


def _address(address: Any) -> str:
    if isinstance(address, tuple):
        return str(address[0])
    return str(address)
