"""The Session: one client on one namespace.

A session is owned by its connection's reader task: that task handles the client's packets in the
order they arrive and is the only writer of the session's state (identity, rooms, pending acks).
Other actors reach a session only by pushing encoded frames to its connection's bounded outbox
(never by awaiting it) or by ending the connection.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.identity import Identity
from actors.sockets.outbox import Connection, OutFrame
from protocol import socketio
from protocol.socketio import PacketType


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client's first request said; middleware reads auth from it."""

    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    remote_addr: str
    transport: str
    issued_at: float = field(default_factory=time.time)

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


_ACK = PacketType.ACK  # a module constant: an Enum's class attribute costs a lookup per use


class AckTimeout(Exception):
    """The client did not answer a server-to-client emit's ack in time."""


class Session:
    __slots__ = (
        "_acks",
        "_next_ack_id",
        "auth",
        "conn",
        "connected",
        "disconnector",
        "handshake",
        "identity",
        "namespace",
        "pid",
        "recovered",
        "rooms",
        "sid",
        "since",
        "state",
    )

    def __init__(
        self,
        sid: str,
        namespace: str,
        conn: Connection,
        auth: dict[str, Any],
        handshake: Handshake | None = None,
    ) -> None:
        self.sid = sid
        self.namespace = namespace
        self.conn = conn
        self.auth = auth
        self.handshake = handshake
        self.identity: Identity | None = None
        self.rooms: set[str] = set()
        self.connected = True
        self.pid: str | None = None  # connection state recovery: the private session id
        self.since = 0  # ... and the last offset given out when it connected
        self.recovered = False  # it came back with its id, rooms and missed packets
        # ends this session from the server side (close=True: its whole connection); set by the
        # Socket.IO layer that owns it, used by operations on sockets (disconnectSockets)
        self.disconnector: Callable[[Session, bool], Awaitable[None]] | None = None
        self.state: Any = None  # the namespace's own per-session record, if it keeps one
        self._acks: dict[int, trio.MemorySendChannel[list[Any]]] = {}
        self._next_ack_id = 0

    # --- sending -------------------------------------------------------------------------------
    def frame(self, event: str, *args: Any, volatile: bool = False) -> OutFrame:
        return event_frame(self.namespace, event, args, volatile=volatile)

    def emit(self, event: str, *args: Any, volatile: bool = False) -> None:
        """Send an event to this client now (non-blocking; the outbox bound applies)."""
        if self.connected:
            self.conn.push(event_frame(self.namespace, event, args, volatile=volatile))

    def send_ack(self, ack_id: int, args: list[Any] | tuple[Any, ...]) -> None:
        if self.connected:
            data = list(args)
            namespace = self.namespace
            text, attachments = socketio.encode_ack(namespace, ack_id, data)
            sio = (_ACK, namespace, data, ack_id)
            buffers = tuple(attachments) if attachments else ()
            self.conn.push(OutFrame(b"4" + text, buffers, sio=sio))

    async def call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """Emit with an ack and wait for the client's answer (its ack arguments)."""
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        send, receive = trio.open_memory_channel[list[Any]](1)
        self._acks[ack_id] = send
        try:
            data = [event, *args]
            text, attachments = socketio.encode_event(self.namespace, data, ack_id)
            sio = (PacketType.EVENT, self.namespace, data, ack_id)
            self.conn.push(OutFrame(b"4" + text, tuple(attachments), sio=sio))
            with trio.move_on_after(timeout):
                return await receive.receive()
            raise AckTimeout(f"no ack for {event!r} within {timeout}s")
        except trio.EndOfChannel:
            raise AckTimeout(f"client disconnected before acking {event!r}") from None
        finally:
            self._acks.pop(ack_id, None)

    # --- receiving -----------------------------------------------------------------------------
    def resolve_ack(self, ack_id: int, args: list[Any]) -> bool:
        """An ACK from the client; False when no emit is waiting for that id."""
        send = self._acks.pop(ack_id, None)
        if send is None:
            return False
        send.send_nowait(args)
        return True

    def disconnected(self) -> None:
        self.connected = False
        for send in self._acks.values():
            send.close()
        self._acks.clear()


def event_frame(
    namespace: str, event: str, args: tuple[Any, ...] | list[Any], *, volatile: bool = False
) -> OutFrame:
    """Encode an event once; the frame can then go to any number of clients."""
    data = [event, *args]
    text, attachments = socketio.encode_event(namespace, data)
    sio = (PacketType.EVENT, namespace, data, None)
    return OutFrame(b"4" + text, tuple(attachments), volatile=volatile, sio=sio)
