"""The Engine.IO v4 server: sessions, heartbeats, long-polling, and the switch to WebSocket.

Transports (long-polling here; the native and the ASGI WebSocket paths in their own modules) only
move packets. Everything an Engine.IO session decides is decided here, the same way whichever
transport carries it: the handshake, the heartbeat (PING every ``ping_interval_ms``, closed at the
moment a PONG is ``ping_timeout_ms`` late), the connect timeout, the outbox bound, the upgrade.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from actors.sockets.outbox import CLOSE, NOOP, PING, OutFrame, count_sent
from actors.sockets.session import Handshake
from actors.timers import TimerQueue
from protocol import engineio, engineio_v3
from protocol.engineio import Packet, PacketType
from protocol.errors import ProtocolError

log = logging.getLogger("switchboard.engineio")

UPGRADE_NOOP_SECONDS = 0.1  # as Node: a poll during an upgrade is answered within 100 ms
TOO_MANY_CONNECTIONS = "Too many connections from this address"


class Transport(Protocol):
    name: str
    queued_bytes: int

    def push(self, frame: OutFrame) -> None: ...

    def close(self) -> None: ...


class MessageHandler(Protocol):
    """The layer above Engine.IO (Socket.IO), one per connection."""

    async def on_message(self, data: str | bytes) -> None: ...

    async def on_close(self, reason: str) -> None: ...

    def ever_connected(self) -> bool:
        """True once any namespace has connected (the connect timeout no longer applies)."""
        ...


@dataclass
class EngineStats:
    handshakes: int = 0
    handshake_failures: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    dropped_volatile: int = 0
    slow_consumers: int = 0
    upgrades: int = 0
    packets_in: int = 0
    bytes_in: int = 0  # Engine.IO packets' payload bytes, as the Admin UI counts them
    packets_out: int = 0  # frames queued for a client (a broadcast counts once per member)
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class EngineConfig:
    ping_interval_ms: int = 25000
    ping_timeout_ms: int = 60000
    connect_timeout_ms: int = 45000
    max_payload_bytes: int = 1_000_000
    max_packets_per_payload: int = 1000
    max_outbox_bytes: int = 4_194_304
    upgrade_timeout_seconds: float = 10.0
    max_connections_per_ip: int = 0  # 0: no limit
    sid_prefix: str = ""  # in a cluster, the node's tag: a sid names the node that owns it
    allow_eio3: bool = False  # also serve Engine.IO v3 (Socket.IO v2 clients)


class EngineSocket:
    """One Engine.IO session (implements :class:`actors.sockets.outbox.Connection`)."""

    __slots__ = (
        "__weakref__",
        "awaiting_pong",
        "close_reason",
        "closed",
        "decode",
        "handler",
        "handshake",
        "heartbeat_token",
        "msgpack",
        "posting",
        "protocol",
        "server",
        "sid",
        "supports_binary",
        "transport",
        "upgrading",
    )

    def __init__(
        self,
        server: EngineServer,
        sid: str,
        transport: Transport,
        hs: Handshake,
        protocol: int = engineio.PROTOCOL_VERSION,
    ) -> None:
        self.server = server
        self.protocol = protocol  # 4, or 3 for a Socket.IO v2 client
        self.msgpack = False  # its Socket.IO packets go out as socket.io-msgpack-parser's
        # v3 polling may carry binary payloads unless the client asked for base64 (b64=1)
        self.supports_binary = hs.query.get("b64") != "1"
        # one WebSocket message -> packet (v3 prefixes a binary message with its type byte)
        self.decode = decode_v3_message if protocol == 3 else engineio.decode_packet
        self.sid = sid
        self.transport = transport
        self.handshake = hs
        self.handler: MessageHandler | None = None
        self.closed = False
        self.close_reason = ""  # why it ended ("slow consumer", "ping timeout", ...)
        self.awaiting_pong = False
        self.heartbeat_token = 0
        self.upgrading = False
        self.posting = False

    # --- outgoing --------------------------------------------------------------------------------
    def push(self, frame: OutFrame) -> None:
        if self.closed:
            return
        if self.msgpack:
            frame = frame.for_msgpack()
        server = self.server
        transport = self.transport
        size = frame.size
        if transport.queued_bytes + size > server.config.max_outbox_bytes:
            if frame.volatile:
                server.stats.dropped_volatile += 1
                return
            server.stats.slow_consumers += 1
            self.close("slow consumer")
            return
        stats = server.stats
        stats.packets_out += 1
        stats.bytes_out += size
        transport.push(frame)

    @property
    def transport_name(self) -> str:
        return self.transport.name

    def close(self, reason: str, *, notify: bool = True) -> None:
        """End the session. ``notify`` sends an Engine.IO CLOSE where the transport can."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        server = self.server
        server.sockets.pop(self.sid, None)
        server.forget_address(self.handshake.remote_addr)
        server.stats.closes[reason] = server.stats.closes.get(reason, 0) + 1
        if notify and self.transport.name == "polling":
            self.transport.push(CLOSE)
        self.transport.close()
        if self.handler is not None:
            server.nursery.start_soon(self.handler.on_close, reason)

    # --- incoming --------------------------------------------------------------------------------
    async def receive(self, packet: Packet) -> None:
        """One packet from the client, in order. Raises ProtocolError for a packet that ends it."""
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            assert self.handler is not None
            await self.handler.on_message(packet.data)
        elif ptype is PacketType.PONG:
            if self.protocol == 3:  # v3 clients ping, the server pongs: never the other way
                raise ProtocolError("invalid heartbeat direction")
            if self.awaiting_pong:  # an unsolicited PONG (a flood) schedules nothing
                self.awaiting_pong = False
                self.heartbeat_token += 1
                self.server.ping_timers.add(self, self.heartbeat_token)
        elif ptype is PacketType.CLOSE:
            if self.transport.name == "polling":
                self.transport.push(NOOP)  # completes a pending GET, as Node does
            self.close("client close", notify=False)
        elif ptype is PacketType.PING:
            self.push(OutFrame(engineio.encode_packet(PacketType.PONG, _text(packet.data))))
            if self.protocol == 3:  # the client's heartbeat: its next ping is due in time
                self.heartbeat_token += 1
                self.server.v3_timers.add(self, self.heartbeat_token)
        elif ptype is PacketType.NOOP:
            pass
        else:  # OPEN, or UPGRADE outside an upgrade
            raise ProtocolError(f"unexpected {ptype.name} packet")

    async def receive_text(self, message: str) -> None:
        """One text WebSocket message. A MESSAGE (``4`` + data, the same in v3 and v4) goes to
        the handler as is, without a packet object: it is nearly every message."""
        if message[:1] == "4":
            assert self.handler is not None
            await self.handler.on_message(message[1:])
        else:
            await self.receive(self.decode(message))

    async def receive_payload(self, body: bytes) -> None:
        """A polling POST body."""
        decode = engineio_v3.decode_payload if self.protocol == 3 else engineio.decode_payload
        packets = decode(body, max_packets=self.server.config.max_packets_per_payload)
        for packet in packets:
            if self.closed:
                return
            self.server.stats.packets_in += 1
            await self.receive(packet)
        self.server.stats.bytes_in += len(body)

    # --- upgrade -----------------------------------------------------------------------------
    def upgrade_step(self, ws: Transport, packet: Packet) -> bool:
        """A packet on a WebSocket that is upgrading this polling session; True once switched."""
        if packet.type is PacketType.PING and packet.data == "probe":
            ws.push(OutFrame(b"3probe"))
            self.transport.push(NOOP)  # let the pending GET return now
            return False
        if packet.type is PacketType.UPGRADE:
            polling = self.transport
            assert isinstance(polling, PollingTransport)
            frames = polling.finish_for_upgrade()
            self.transport = ws
            for frame in frames:  # queued during the upgrade: not lost, same order
                ws.push(frame)
            self.upgrading = False
            self.server.stats.upgrades += 1
            if self.server.on_upgrade is not None:
                self.server.on_upgrade(self)
            return True
        raise ProtocolError(f"unexpected {packet.type.name} packet during upgrade")


def decode_v3_message(message: str | bytes) -> Packet:
    if isinstance(message, str):
        return engineio_v3.decode_text_packet(message)
    return engineio_v3.decode_websocket_binary(message)


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


class PollingTransport:
    """Long-polling: frames wait in a list until a GET takes them all."""

    name = "polling"
    __slots__ = ("closed", "get_active", "pending", "queued_bytes", "waiter")

    def __init__(self) -> None:
        self.pending: list[OutFrame] = []
        self.queued_bytes = 0
        self.waiter: trio.Event | None = None
        self.closed = False
        self.get_active = False

    def push(self, frame: OutFrame) -> None:
        if self.closed:
            return
        self.pending.append(frame)
        self.queued_bytes += frame.size
        if self.waiter is not None:
            self.waiter.set()

    def take_all(self) -> list[OutFrame]:
        frames, self.pending, self.queued_bytes = self.pending, [], 0
        return frames

    def close(self) -> None:
        self.closed = True
        if self.waiter is not None:
            self.waiter.set()

    def finish_for_upgrade(self) -> list[OutFrame]:
        """Hand the queued frames to the WebSocket; a GET still pending gets a NOOP."""
        frames = [frame for frame in self.take_all() if frame is not NOOP]
        if self.get_active:
            self.pending.append(NOOP)
        self.close()
        return frames

    async def wait(self, timeout: float = math.inf) -> list[OutFrame]:
        """Frames for one GET: at once when some are queued, else when the first arrives (or
        nothing after ``timeout``)."""
        with trio.move_on_after(timeout):
            while not self.pending and not self.closed:
                self.waiter = trio.Event()
                try:
                    await self.waiter.wait()
                finally:
                    self.waiter = None
        return self.take_all()


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=UTF-8"


def error_answer(err: engineio.RequestError) -> HttpAnswer:
    return HttpAnswer(err.status, err.body(), "application/json")


class EngineServer:
    """The table of sessions, the heartbeat timers, and the polling endpoint."""

    def __init__(
        self,
        config: EngineConfig,
        attach: Callable[[EngineSocket], MessageHandler],
        nursery: trio.Nursery,
    ) -> None:
        self.config = config
        self.attach = attach
        self.nursery = nursery
        self.sockets: dict[str, EngineSocket] = {}
        self.open_by_address: dict[str, int] = {}  # sessions held open per client address
        self.stats = EngineStats()
        # told when a polling session has switched to WebSocket (the Admin UI shows it)
        self.on_upgrade: Callable[[EngineSocket], None] | None = None
        self.ping_timers = TimerQueue(config.ping_interval_ms / 1000, self._ping_due)
        self.pong_timers = TimerQueue(config.ping_timeout_ms / 1000, self._pong_due)
        self.connect_timers = TimerQueue(config.connect_timeout_ms / 1000, self._connect_due)
        # v3: the client pings; silence for pingInterval + pingTimeout ends the session
        v3_silence = (config.ping_interval_ms + config.ping_timeout_ms) / 1000
        self.v3_timers = TimerQueue(v3_silence, self._v3_silence_due)
        nursery.start_soon(self.v3_timers.run)
        nursery.start_soon(self.ping_timers.run)
        nursery.start_soon(self.pong_timers.run)
        nursery.start_soon(self.connect_timers.run)

    # --- timers ----------------------------------------------------------------------------------
    def _ping_due(self, sock: EngineSocket, token: int) -> None:
        if sock.closed or token != sock.heartbeat_token:
            return
        sock.awaiting_pong = True
        sock.push(PING)
        count_sent(PING)
        self.pong_timers.add(sock, token)

    def _pong_due(self, sock: EngineSocket, token: int) -> None:
        if not sock.closed and token == sock.heartbeat_token and sock.awaiting_pong:
            sock.close("ping timeout")

    def _v3_silence_due(self, sock: EngineSocket, token: int) -> None:
        if not sock.closed and token == sock.heartbeat_token:
            sock.close("ping timeout")

    def _connect_due(self, sock: EngineSocket, token: int) -> None:
        if not sock.closed and sock.handler is not None and not sock.handler.ever_connected():
            sock.close("connect timeout")

    # --- sessions --------------------------------------------------------------------------------
    def open(
        self,
        transport: Transport,
        hs: Handshake,
        *,
        upgrades: list[str],
        protocol: int = engineio.PROTOCOL_VERSION,
    ) -> EngineSocket:
        """Create a session; its OPEN packet is the transport's first frame."""
        sid = self.config.sid_prefix + engineio.new_sid()
        sock = EngineSocket(self, sid, transport, hs, protocol)
        self.sockets[sid] = sock
        by_address = self.open_by_address
        by_address[hs.remote_addr] = by_address.get(hs.remote_addr, 0) + 1
        self.stats.handshakes += 1
        transport.push(
            OutFrame(
                engineio.open_packet(
                    sid,
                    upgrades=upgrades,
                    ping_interval_ms=self.config.ping_interval_ms,
                    ping_timeout_ms=self.config.ping_timeout_ms,
                    max_payload=self.config.max_payload_bytes,
                )
            )
        )
        sock.handler = self.attach(sock)
        if protocol == 3:
            self.v3_timers.add(sock, 0)
        else:
            self.ping_timers.add(sock, 0)
        self.connect_timers.add(sock)
        return sock

    def admit(self, remote_addr: str) -> engineio.RequestError | None:
        """Refuse a new session past ``max_connections_per_ip`` for its address (Node has no
        such cap; without one a single client can hold memory for any number of sessions)."""
        limit = self.config.max_connections_per_ip
        if limit and self.open_by_address.get(remote_addr, 0) >= limit:
            self.refuse("too_many_connections")
            return engineio.RequestError(engineio.ErrorCode.FORBIDDEN, TOO_MANY_CONNECTIONS)
        return None

    def forget_address(self, remote_addr: str) -> None:
        by_address = self.open_by_address
        left = by_address.get(remote_addr, 0) - 1
        if left > 0:
            by_address[remote_addr] = left
        else:
            by_address.pop(remote_addr, None)

    def refuse(self, reason: str) -> None:
        failures = self.stats.handshake_failures
        failures[reason] = failures.get(reason, 0) + 1

    # --- long-polling --------------------------------------------------------------------------
    async def polling(
        self,
        method: str,
        query: Mapping[str, str],
        hs: Callable[[], Handshake],
        body: bytes | None,
    ) -> HttpAnswer:
        """Answer one polling request. ``body`` is the whole request body (read before answering,
        so a keep-alive connection stays usable), or None when it was over the size limit."""
        try:
            request = engineio.check_request(
                method, query, websocket_upgrade=False, allow_eio3=self.config.allow_eio3
            )
        except engineio.RequestError as err:
            self.refuse(err.code.name.lower())
            return error_answer(err)
        if request.sid is None:
            handshake = hs()
            refused = self.admit(handshake.remote_addr)
            if refused is not None:
                return error_answer(refused)
            sock = self.open(
                PollingTransport(), handshake, upgrades=["websocket"], protocol=request.protocol
            )
            return await self._get(sock)
        sock_or_none = self.sockets.get(request.sid)
        if sock_or_none is None or request.transport != "polling":
            code = engineio.ErrorCode.UNKNOWN_SID
            if sock_or_none is not None:
                code = engineio.ErrorCode.BAD_REQUEST
            return error_answer(engineio.RequestError(code))
        sock = sock_or_none
        if not isinstance(sock.transport, PollingTransport):  # upgraded: polling is over
            return error_answer(engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))
        if method == "GET":
            return await self._get(sock)
        if method == "POST":
            return await self._post(sock, body)
        return error_answer(engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))

    async def _get(self, sock: EngineSocket) -> HttpAnswer:
        transport = sock.transport
        assert isinstance(transport, PollingTransport)
        if transport.get_active:  # two GETs at once: the first gets CLOSE, this one a 400
            sock.close("polling overlap")
            return error_answer(engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))
        transport.get_active = True
        done = False
        try:
            # while an upgrade is under way a GET returns within UPGRADE_NOOP_SECONDS, with a
            # NOOP if nothing else: the client must finish its poll before it may send UPGRADE
            frames = await transport.wait(UPGRADE_NOOP_SECONDS if sock.upgrading else math.inf)
            if not frames and sock.upgrading:
                frames = [NOOP]
            done = True
        finally:
            transport.get_active = False
            if not done:  # the client went away mid-poll: the session is over
                sock.close("transport close", notify=False)
        items: list[bytes] = []
        for frame in frames:
            items.extend(frame.polling_items())
        if sock.protocol == 3:
            body, content_type = engineio_v3.encode_payload(
                items, supports_binary=sock.supports_binary
            )
            return HttpAnswer(200, body, content_type)
        return HttpAnswer(200, engineio.encode_payload(items))

    async def _post(self, sock: EngineSocket, body: bytes | None) -> HttpAnswer:
        if sock.posting:
            sock.close("polling overlap")
            return error_answer(engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))
        sock.posting = True
        try:
            if body is None:
                sock.close("payload too large")
                return HttpAnswer(413, b"Payload Too Large")
            try:
                await sock.receive_payload(body)
            except ProtocolError as err:
                log.info("closing %s: %s", sock.sid, err)
                sock.close("parse error")
                return error_answer(engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))
        finally:
            sock.posting = False
        return HttpAnswer(200, b"ok")

    # --- WebSocket (both paths) ------------------------------------------------------------------
    def websocket_target(
        self, query: Mapping[str, str], remote_addr: str
    ) -> tuple[engineio.EngineRequest | None, engineio.RequestError | None]:
        """Check a WebSocket upgrade request before accepting it."""
        try:
            request = engineio.check_request(
                "GET", query, websocket_upgrade=True, allow_eio3=self.config.allow_eio3
            )
        except engineio.RequestError as err:
            self.refuse(err.code.name.lower())
            return None, err
        if request.transport != "websocket":
            return None, engineio.RequestError(engineio.ErrorCode.BAD_REQUEST)
        if request.sid is not None and request.sid not in self.sockets:
            self.refuse("unknown_sid")
            return None, engineio.RequestError(engineio.ErrorCode.UNKNOWN_SID)
        if request.sid is None:
            refused = self.admit(remote_addr)
            if refused is not None:
                return None, refused
        return request, None

    def protocol_of(self, sid: str) -> int:
        sock = self.sockets.get(sid)
        return sock.protocol if sock is not None else engineio.PROTOCOL_VERSION

    def begin_upgrade(self, sid: str) -> EngineSocket | None:
        """The session a WebSocket may upgrade, or None (then the WebSocket is closed at once)."""
        sock = self.sockets.get(sid)
        if sock is None or sock.closed or sock.upgrading:
            return None
        if not isinstance(sock.transport, PollingTransport):
            return None
        sock.upgrading = True
        return sock

    def close_all(self, reason: str) -> None:
        for sock in list(self.sockets.values()):
            sock.close(reason)

    def by_transport(self) -> dict[str, int]:
        """Open connections per transport name (``polling``, ``websocket``)."""
        counts: dict[str, int] = {}
        for sock in self.sockets.values():
            counts[sock.transport.name] = counts.get(sock.transport.name, 0) + 1
        return counts

    def describe(self) -> dict[str, Any]:
        return {"connections": len(self.sockets), "by_transport": self.by_transport()}
