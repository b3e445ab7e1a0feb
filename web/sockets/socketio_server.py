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
from actors.identity import Identity
from actors.runtime import SupervisorPolicy
from actors.sockets.broker import Broker, LocalBroker
from actors.sockets.outbox import OutFrame
from actors.sockets.recovery import KeptSession, RecoveryLog, Restored, new_pid
from actors.sockets.rooms import Rooms
from actors.sockets.session import Session, event_frame
from actors.sockets.watch import SocketWatcher
from actors.timers import DeadlineQueue
from protocol import engineio, msgpack_parser, socketio
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


RECOVERABLE_REASONS = frozenset(
    {"transport close", "transport error", "ping timeout", "server shutdown", "forced close"}
)


@dataclass(frozen=True)
class Recovery:
    """Connection state recovery: the log, and how a returning client is identified."""

    log: RecoveryLog
    identify: Callable[[Session], Identity | None]  # the owner a pid must belong to
    skip_middlewares: bool = True  # as Node: a recovered client skips the connect middleware


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
        recovery: Recovery | None = None,
        parser: str = "auto",
    ) -> None:
        self.namespaces: dict[str, Namespace] = {}
        for ns in namespaces:
            if ns.name in self.namespaces:
                raise ValueError(f"namespace {ns.name} registered twice")
            self.namespaces[ns.name] = ns
        self.limits = limits or socketio.Limits()
        self.recovery = recovery
        self.parser = parser  # "auto" (per connection), "json" or "msgpack"
        # pid -> the connection and session using it now (connection state recovery)
        self.live_pids: dict[str, tuple[SocketIOConnection, Session]] = {}
        self.local = LocalBroker(recovery.log if recovery is not None else None)
        # the broker the namespaces publish through: this process, or the whole cluster
        self.broker: Broker = cluster(self.local) if cluster is not None else self.local
        self.stats = SocketIOStats()
        self.room_idle_seconds = room_idle_seconds
        self.room_mailbox_size = room_mailbox_size
        self.clock = clock or Clock()
        # a session is ended when its token expires, at that moment
        self.expiries = DeadlineQueue(self.clock, self._token_expired)
        self.nursery: Any = None
        self.watcher: SocketWatcher | None = None

    def watch(self, watcher: SocketWatcher) -> None:
        """Tell ``watcher`` of every connect, disconnect, join, leave and event, on every
        namespace (once started; see :mod:`actors.sockets.watch`)."""
        self.watcher = watcher
        for ns in self.namespaces.values():
            ns.rooms.watcher = watcher

    async def start(self, nursery: Any) -> None:
        """Mount every namespace on its rooms and start the namespaces' own actors."""
        self.nursery = nursery
        nursery.start_soon(self.expiries.run)
        if self.recovery is not None:
            await self.recovery.log.load()
            nursery.start_soon(self.recovery.log.run)
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

    __slots__ = (
        "conn",
        "connected_once",
        "decoder",
        "legacy",
        "msgpack",
        "parser_known",
        "server",
        "sessions",
    )

    def __init__(self, server: SocketIOServer, conn: EngineSocket) -> None:
        self.server = server
        self.conn = conn
        self.decoder = socketio.PacketDecoder(server.limits)
        self.sessions: dict[str, Session] = {}
        self.connected_once = False
        # a Socket.IO v2 client (Engine.IO v3) speaks the v4 protocol: the default namespace is
        # connected for it at once, with the auth of its handshake query
        self.legacy = conn.protocol == 3
        # the parser: JSON (socket.io-parser) unless the client's first packet is binary
        # (socket.io-msgpack-parser); "msgpack" pins it for every client
        self.msgpack = False
        self.parser_known = self.legacy  # v2 clients speak JSON
        if server.parser == "msgpack" and not self.legacy:
            self._use_msgpack()
        if self.legacy:
            server.nursery.start_soon(self._connect, socketio.Packet(PacketType.CONNECT, "/"))

    def ever_connected(self) -> bool:
        return self.connected_once

    def _send(self, packet: socketio.Packet) -> None:
        """A packet of the Socket.IO layer itself (CONNECT, CONNECT_ERROR, DISCONNECT)."""
        text, _ = socketio.encode_packet(packet)
        sio = (packet.type, packet.namespace, packet.data, packet.id)
        self.conn.push(OutFrame(b"4" + text, sio=sio))

    async def on_message(self, data: str | bytes) -> None:
        if self.msgpack:
            if isinstance(data, str):
                raise ProtocolError("a text message from a MessagePack client")
            await self.dispatch(msgpack_parser.decode(data, self.server.limits))
            return
        if isinstance(data, str):
            event = self.decoder.feed_event(data)  # the common EVENT, without a Packet
            if event is not None:
                session = self.sessions.get(event[0])
                if session is not None:
                    self.parser_known = True
                    self.server.stats.packets_in[2] += 1  # PacketType.EVENT
                    await self._event(session, event[2], event[1])
                    return
            packet = self.decoder.feed_text(data)
        elif not self.parser_known and self.server.parser != "json":
            self._use_msgpack()  # its first Socket.IO packet tells the client's parser
            await self.on_message(data)
            return
        else:
            packet = self.decoder.feed_binary(data)
        self.parser_known = True
        if packet is not None:
            await self.dispatch(packet)

    def _use_msgpack(self) -> None:
        self.msgpack = self.parser_known = True
        self.conn.msgpack = True  # from now on its frames go out in MessagePack

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
            await self._event(session, packet.data, packet.id)
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
        restored = await self._recover(session, auth)
        recovery = self.server.recovery
        try:
            if restored is None or recovery is None or not recovery.skip_middlewares:
                for middleware in ns.middlewares:
                    await middleware(session)
        except ConnectRefused as refused:
            stats.connect_errors[refused.message] = stats.connect_errors.get(refused.message, 0) + 1
            self._connect_error(name, refused.message, refused.data)
            if restored is not None and recovery is not None:  # it stays for its owner
                recovery.log.keep(restored.session)
            return
        if self.conn.closed:
            return
        await self._accept(ns, session, restored)

    async def _accept(self, ns: Namespace, session: Session, restored: Restored | None) -> None:
        stats = self.server.stats
        session.disconnector = self.server_disconnect
        self.sessions[ns.name] = session
        if session.pid is not None:
            self.server.live_pids[session.pid] = (self, session)
        self.connected_once = True
        ns.rooms.sessions[session.sid] = session
        stats.connects[ns.name] = stats.connects.get(ns.name, 0) + 1
        reply: dict[str, str] | None = {"sid": session.sid}
        if self.legacy:
            reply = None  # v4 protocol: a bare CONNECT
        elif session.pid is not None:
            reply = {"sid": session.sid, "pid": session.pid}
        self._send(socketio.Packet(PacketType.CONNECT, ns.name, reply))
        if restored is not None:
            await self._resume(ns, session, restored)
        if session.identity is not None and session.identity.expires_at is not None:
            self.server.expiries.add(session.identity.expires_at, session)
        if self.server.watcher is not None:
            self.server.watcher.connected(session)
        for on_connect in ns.on_connect:
            await self._guarded(on_connect(session), session, "connect handler")

    async def _recover(self, session: Session, auth: dict[str, Any]) -> Restored | None:
        """Connection state recovery: a returning client's session (same id, rooms, missed
        packets), or None; a new session gets a pid."""
        recovery = self.server.recovery
        if recovery is None or self.legacy:
            return None
        session.since = recovery.log.seq
        restored = None
        if "pid" in auth:
            await self._retire(auth["pid"])
            identity = recovery.identify(session)
            user = identity.user_id if identity is not None else None
            restored = recovery.log.restore(
                auth["pid"], auth.get("offset"), session.namespace, user
            )
            if restored is not None:
                session.identity = identity
                session.sid = restored.session.sid
                session.pid = restored.session.pid
                session.recovered = True
                return restored
        session.pid = new_pid()
        return None

    async def _retire(self, pid: object) -> None:
        """A client reconnecting may be quicker than its old transport's end (a connection cut
        on the client's side): that old session ends now, and is kept, so it can be restored."""
        live = self.server.live_pids.get(pid) if isinstance(pid, str) else None
        if live is not None and live[0] is not self:
            connection, old = live
            await connection._end(old, "transport close")
            connection.conn.close("transport close")

    async def _resume(self, ns: Namespace, session: Session, restored: Restored) -> None:
        """The rooms it was in, then what it missed, in order, once."""
        for room in sorted(restored.session.rooms - {session.sid}):
            await ns.rooms.join(session, room)
        for packet in restored.missed:
            event, *args = packet.data
            self.conn.push(event_frame(ns.name, str(event), args))

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
        self._send(socketio.Packet(PacketType.CONNECT_ERROR, namespace, body))

    async def _event(self, session: Session, args: list[Any], ack_id: int | None) -> None:
        """One event, ``args`` = [event name, *arguments], for the namespace's handler."""
        server = self.server
        ns = server.namespaces[session.namespace]
        stats = server.stats
        stats.events_in += 1
        event = args[0]
        if server.watcher is not None:
            server.watcher.received(session, args)
        spec = ns.events.get(event)
        if spec is None:  # no listener: ignored, as in Node
            stats.unknown_events += 1
            return
        ack = Ack(session, ack_id) if ack_id is not None else None
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
        if session.pid is not None and self.server.live_pids.get(session.pid, (None,))[0] is self:
            del self.server.live_pids[session.pid]
        recovery = self.server.recovery
        if recovery is not None and session.pid is not None and reason in RECOVERABLE_REASONS:
            user = session.identity.user_id if session.identity is not None else None
            rooms = frozenset(session.rooms)
            kept = KeptSession(
                session.pid, session.sid, session.namespace, user, rooms, session.since,
                self.server.clock.now(),
            )  # fmt: skip
            recovery.log.keep(kept)
        self.server.expiries.discard(session)
        ns = self.server.namespaces[session.namespace]
        ns.rooms.sessions.pop(session.sid, None)
        session.disconnected()
        await ns.rooms.leave_all(session)
        if self.server.watcher is not None:
            self.server.watcher.disconnected(session, reason)
        for on_disconnect in ns.on_disconnect:
            await self._guarded(on_disconnect(session), session, "disconnect handler")

    async def disconnect(self, session: Session) -> None:
        """Server-side disconnect of one namespace: tell the client, then forget the session."""
        self._send(socketio.Packet(PacketType.DISCONNECT, session.namespace))
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
