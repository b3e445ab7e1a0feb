"""The Socket.IO v5 layer: namespaces multiplexed on one Engine.IO connection.

:class:`SocketIOConnection` decodes the connection's Socket.IO packets and routes each one: CONNECT
runs the namespace's middleware and creates a :class:`Session`; EVENT looks the event up in the
namespace's table, validates the payload and calls the handler; ACK resolves a server-to-client
emit. Any packet that breaks the protocol raises :class:`ProtocolError`, and the transport closes
the connection at once (as Node does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from actors.clock import Clock
from actors.runtime import SupervisorPolicy
from actors.sockets.broker import Broker, LocalBroker
from actors.sockets.outbox import OutFrame
from actors.sockets.rooms import Rooms
from actors.sockets.session import Session
from actors.timers import DeadlineQueue
from protocol import engineio, socketio
from protocol.errors import ProtocolError
from protocol.socketio import PacketType
from web.sockets.engineio_server import EngineSocket
from web.sockets.namespace import Ack, ConnectRefused, Namespace

log = logging.getLogger("switchboard.socketio")


@dataclass
class SocketIOStats:
    connects: dict[str, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    events_in: int = 0
    unknown_events: int = 0
    invalid_payloads: int = 0
    handler_errors: int = 0
    # received packets by Socket.IO type (index = type number); named at scrape time
    packets_in: list[int] = field(default_factory=lambda: [0] * len(PacketType))
    expired_sessions: int = 0


class SocketIOServer:
    def __init__(
        self,
        namespaces: Iterable[Namespace],
        *,
        limits: socketio.Limits | None = None,
        room_idle_seconds: float = 30.0,
        room_mailbox_size: int = 256,
        clock: Clock | None = None,
        cluster: Callable[[LocalBroker], Broker] | None = None,
    ) -> None:
        self.namespaces: dict[str, Namespace] = {}
        for ns in namespaces:
            if ns.name in self.namespaces:
                raise ValueError(f"namespace {ns.name} registered twice")
            self.namespaces[ns.name] = ns
        self.limits = limits or socketio.Limits()
        self.local = LocalBroker()
        # the broker the namespaces publish through: this process, or the whole cluster
        self.broker: Broker = cluster(self.local) if cluster is not None else self.local
        self.stats = SocketIOStats()
        self.room_idle_seconds = room_idle_seconds
        self.room_mailbox_size = room_mailbox_size
        self.clock = clock or Clock()
        # a session is ended when its token expires, at that moment
        self.expiries = DeadlineQueue(self.clock, self._token_expired)
        self.nursery: Any = None

    async def start(self, nursery: Any) -> None:
        """Mount every namespace on its rooms and start the namespaces' own actors."""
        self.nursery = nursery
        nursery.start_soon(self.expiries.run)
        for ns in self.namespaces.values():
            rooms = Rooms(
                ns.name,
                nursery,
                room_idle_seconds=self.room_idle_seconds,
                room_mailbox_size=self.room_mailbox_size,
                policy=SupervisorPolicy(),
            )
            self.local.add(rooms, ns.server_side)
            ns.mount(rooms, self.broker)
        for ns in self.namespaces.values():
            for start in ns.startup:
                await start(nursery)

    def _token_expired(self, session: Session) -> None:
        if session.connected and isinstance(session.conn, EngineSocket):
            handler = session.conn.handler
            if isinstance(handler, SocketIOConnection):
                self.stats.expired_sessions += 1
                self.nursery.start_soon(handler.disconnect, session)

    def attach(self, conn: EngineSocket) -> SocketIOConnection:
        return SocketIOConnection(self, conn)

    def connected_count(self) -> dict[str, int]:
        return {name: len(ns.rooms.sessions) for name, ns in self.namespaces.items()}


class SocketIOConnection:
    """The Socket.IO side of one Engine.IO connection."""

    __slots__ = ("conn", "connected_once", "decoder", "legacy", "server", "sessions")

    def __init__(self, server: SocketIOServer, conn: EngineSocket) -> None:
        self.server = server
        self.conn = conn
        self.decoder = socketio.PacketDecoder(server.limits)
        self.sessions: dict[str, Session] = {}
        self.connected_once = False
        # a Socket.IO v2 client (Engine.IO v3) speaks the v4 protocol: the default namespace is
        # connected for it at once, with the auth of its handshake query
        self.legacy = conn.protocol == 3
        if self.legacy:
            server.nursery.start_soon(self._connect, socketio.Packet(PacketType.CONNECT, "/"))

    def ever_connected(self) -> bool:
        return self.connected_once

    async def on_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            packet = self.decoder.feed_text(data)
        else:
            packet = self.decoder.feed_binary(data)
        if packet is not None:
            await self.dispatch(packet)

    async def dispatch(self, packet: socketio.Packet) -> None:
        ptype = packet.type
        self.server.stats.packets_in[ptype] += 1
        session = self.sessions.get(packet.namespace)
        if ptype is PacketType.CONNECT:
            if session is not None:
                if self.legacy:  # a v2 client may repeat the default namespace's CONNECT
                    return
                raise ProtocolError(f"namespace {packet.namespace} is already connected")
            await self._connect(packet)
            return
        if session is None or ptype is PacketType.CONNECT_ERROR:
            raise ProtocolError(f"{ptype.name} for namespace {packet.namespace} not connected")
        if ptype is PacketType.EVENT or ptype is PacketType.BINARY_EVENT:
            await self._event(session, packet)
        elif ptype is PacketType.ACK or ptype is PacketType.BINARY_ACK:
            if packet.id is not None:
                session.resolve_ack(packet.id, packet.data)
        elif ptype is PacketType.DISCONNECT:
            await self._end(session, "client namespace disconnect")

    async def _connect(self, packet: socketio.Packet) -> None:
        name, auth = self._target(packet)
        stats = self.server.stats
        ns = self.server.namespaces.get(name)
        if ns is None:
            stats.connect_errors["invalid namespace"] = (
                stats.connect_errors.get("invalid namespace", 0) + 1
            )
            self._connect_error(name, "Invalid namespace")
            return
        session = Session(self._session_id(name), name, self.conn, auth, self.conn.handshake)
        try:
            for middleware in ns.middlewares:
                await middleware(session)
        except ConnectRefused as refused:
            stats.connect_errors[refused.message] = stats.connect_errors.get(refused.message, 0) + 1
            self._connect_error(name, refused.message, refused.data)
            return
        if self.conn.closed:
            return
        session.disconnector = self.server_disconnect
        self.sessions[name] = session
        self.connected_once = True
        ns.rooms.sessions[session.sid] = session
        stats.connects[name] = stats.connects.get(name, 0) + 1
        reply = None if self.legacy else {"sid": session.sid}  # v4 protocol: a bare CONNECT
        text, _ = socketio.encode_packet(socketio.Packet(PacketType.CONNECT, name, reply))
        self.conn.push(OutFrame(b"4" + text))
        if session.identity is not None and session.identity.expires_at is not None:
            self.server.expiries.add(session.identity.expires_at, session)
        for on_connect in ns.on_connect:
            await self._guarded(on_connect(session), session, "connect handler")

    def _target(self, packet: socketio.Packet) -> tuple[str, dict[str, Any]]:
        """The namespace a CONNECT asks for, and its auth payload. A v2 client puts its auth in
        the namespace's query string (``/admin?token=...``)."""
        if not self.legacy:
            return packet.namespace, packet.data if isinstance(packet.data, dict) else {}
        name, _, query = packet.namespace.partition("?")
        return name, dict(parse_qsl(query))

    def _session_id(self, namespace: str) -> str:
        """A fresh id (v5: the Engine.IO id is sensitive); a v2 client computes its socket id
        from the Engine.IO id (``nsp#id``), so its sessions use that."""
        if not self.legacy:
            return engineio.new_sid()
        return self.conn.sid if namespace == "/" else f"{namespace}#{self.conn.sid}"

    def _connect_error(self, namespace: str, message: str, data: Any = None) -> None:
        body: Any = {"message": message}
        if self.legacy:  # v4 protocol's ERROR packet carries the reason itself
            body = data if data is not None else message
        elif data is not None:
            body["data"] = data
        text, _ = socketio.encode_packet(socketio.Packet(PacketType.CONNECT_ERROR, namespace, body))
        self.conn.push(OutFrame(b"4" + text))

    async def _event(self, session: Session, packet: socketio.Packet) -> None:
        ns = self.server.namespaces[session.namespace]
        stats = self.server.stats
        stats.events_in += 1
        args: list[Any] = packet.data
        event = args[0]
        spec = ns.events.get(event)
        if spec is None:  # no listener: ignored, as in Node
            stats.unknown_events += 1
            return
        ack = Ack(session, packet.id) if packet.id is not None else None
        payload: Any
        if spec.schema is None:
            payload = args[1:]
        else:
            try:
                payload = msgspec.convert(args[1] if len(args) > 1 else None, spec.schema)
            except msgspec.ValidationError as err:
                stats.invalid_payloads += 1
                await ns.on_invalid(session, event, str(err), ack)
                return
        try:  # inline, not through _guarded: this is the per-event path
            await spec.handler(session, payload, ack)
        except ProtocolError:
            raise
        except Exception:
            self._handler_failed(session, event, ack)

    async def _guarded(self, call: Any, session: Session, what: str) -> None:
        """Run a lifecycle hook; its bug is logged, never fatal to the connection."""
        try:
            await call
        except ProtocolError:
            raise
        except Exception:
            self._handler_failed(session, what, None)

    def _handler_failed(self, session: Session, what: str, ack: Ack | None) -> None:
        """A handler's bug: logged and answered, never a stack trace to the client."""
        self.server.stats.handler_errors += 1
        log.exception("handler for %r on %s failed", what, session.namespace)
        if ack is not None:
            ack({"success": False, "message": "Internal server error"})

    async def _end(self, session: Session, reason: str) -> None:
        if self.sessions.get(session.namespace) is not session:
            return
        del self.sessions[session.namespace]
        self.server.expiries.discard(session)
        ns = self.server.namespaces[session.namespace]
        ns.rooms.sessions.pop(session.sid, None)
        session.disconnected()
        await ns.rooms.leave_all(session)
        for on_disconnect in ns.on_disconnect:
            await self._guarded(on_disconnect(session), session, "disconnect handler")

    async def disconnect(self, session: Session) -> None:
        """Server-side disconnect of one namespace: tell the client, then forget the session."""
        text, _ = socketio.encode_packet(socketio.Packet(PacketType.DISCONNECT, session.namespace))
        self.conn.push(OutFrame(b"4" + text))
        await self._end(session, "server namespace disconnect")

    async def server_disconnect(self, session: Session, close: bool) -> None:
        """Node's ``socket.disconnect(close)``: leave the namespace, or end the connection."""
        if close:
            self.conn.close("forced close")
        else:
            await self.disconnect(session)

    async def on_close(self, reason: str) -> None:
        for session in list(self.sessions.values()):
            await self._end(session, reason)
