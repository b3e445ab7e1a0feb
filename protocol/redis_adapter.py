"""The wire format of Socket.IO's Redis adapter (``@socket.io/redis-adapter`` 8.x, classic pub/sub).

Speaking it makes a Switchboard node a peer of Node socket.io servers that use that adapter, and
lets ``@socket.io/redis-emitter`` processes emit into Switchboard's rooms. Bytes in, typed
messages out, and back: no I/O, no clock (the cluster actors in :mod:`actors.cluster` move the
bytes). The format, in short (``docs/cluster.md`` has the whole of it):

* channels, per namespace ``nsp`` and key prefix ``key``: broadcasts on ``key#nsp#`` (or
  ``key#nsp#room#`` when a broadcast targets exactly one room; nodes pattern-subscribe to
  ``key#nsp#*``), requests on ``key-request#nsp#``, responses on ``key-response#nsp#`` and
  ``key-response#nsp#<uid>#``;
* a broadcast is the MessagePack array ``[uid, packet, opts]``: ``packet`` is the socket.io-parser
  packet before encoding (``{type: 2, data: [event, ...args], nsp}``, binary arguments as
  MessagePack ``bin``), ``opts`` is ``{rooms, except, flags}``; an emitter's uid is ``emitter``;
* requests and responses are JSON objects with a numeric ``type``, except BROADCAST (7) and
  BROADCAST_ACK (9), which are MessagePack maps: a receiver tells them apart by a first byte ``{``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgspec

from protocol.errors import ProtocolError

EMITTER_UID = "emitter"
EVENT = 2  # socket.io-parser packet types carried by broadcasts
BINARY_EVENT = 5


class RequestType(enum.IntEnum):
    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


MSGPACK_TYPES = frozenset({RequestType.BROADCAST, RequestType.BROADCAST_ACK})


@dataclass(frozen=True, slots=True)
class Channels:
    """The channel names of one namespace under one key prefix."""

    prefix: str
    namespace: str

    @property
    def broadcast(self) -> str:
        return f"{self.prefix}#{self.namespace}#"

    @property
    def pattern(self) -> str:
        return self.broadcast + "*"

    def room(self, room: str) -> str:
        return f"{self.broadcast}{room}#"

    @property
    def request(self) -> str:
        return f"{self.prefix}-request#{self.namespace}#"

    @property
    def response(self) -> str:
        return f"{self.prefix}-response#{self.namespace}#"

    def specific_response(self, uid: str) -> str:
        return f"{self.response}{uid}#"

    def room_of(self, channel: str) -> str | None:
        """The room a broadcast channel names ("" for the whole namespace), None if foreign."""
        if not channel.startswith(self.broadcast) or not channel.endswith("#"):
            return None
        return channel[len(self.broadcast) : -1]


class Flags(msgspec.Struct, omit_defaults=True):
    volatile: bool | None = None
    compress: bool | None = None
    local: bool | None = None
    timeout: float | None = None  # a broadcast with acks: how long the sender waits


Room = str | int  # Node allows numeric room names


class Opts(msgspec.Struct, omit_defaults=True):
    rooms: list[Room] = msgspec.field(default_factory=list)
    # "except" is a Python keyword: the attribute is except_, the wire name except
    except_: list[Room] = msgspec.field(default_factory=list, name="except")
    flags: Flags | None = None


class Packet(msgspec.Struct, omit_defaults=True):
    type: int
    data: list[Any] | None = None
    nsp: str = "/"
    id: int | None = None


class Request(msgspec.Struct, omit_defaults=True):
    """Any request or response on the request and response channels (fields by type)."""

    type: int | None = None
    uid: str | None = None
    requestId: str | None = None
    rooms: list[Room] | None = None
    opts: Opts | None = None
    sid: str | None = None
    room: Room | None = None
    close: bool | None = None
    data: Any = None
    packet: Any = None
    sockets: list[Any] | None = None
    clientCount: int | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A broadcast as a node delivers it: who sent it, what, and to whom."""

    uid: str
    namespace: str
    data: list[Any]  # [event, *args]
    rooms: tuple[str, ...]
    except_rooms: frozenset[str]
    flags: Flags

    @property
    def volatile(self) -> bool:
        return bool(self.flags.volatile)


def rooms_of(values: list[Room] | None) -> tuple[str, ...]:
    """Room names as strings (Node's numeric rooms are matched by their decimal text)."""
    out: list[str] = []
    for value in values or ():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ProtocolError("a room name must be a string or a number")
        out.append(value if isinstance(value, str) else str(value))
    return tuple(out)


_broadcast_decoder = msgspec.msgpack.Decoder(tuple[str, Packet, Opts])
_msgpack_request_decoder = msgspec.msgpack.Decoder(Request)
_json_request_decoder = msgspec.json.Decoder(Request)
_msgpack = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()


def decode_broadcast(raw: bytes) -> Broadcast:
    """``[uid, packet, opts]`` from a broadcast channel; ProtocolError if it is not one."""
    try:
        uid, packet, opts = _broadcast_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ProtocolError(f"not an adapter broadcast: {err}") from None
    if packet.type not in (EVENT, BINARY_EVENT) or not packet.data:
        raise ProtocolError("a broadcast packet must be an EVENT with an event name")
    if not isinstance(packet.data[0], str):
        raise ProtocolError("a broadcast's event name must be a string")
    return Broadcast(
        uid,
        packet.nsp,
        packet.data,
        rooms_of(opts.rooms),
        frozenset(rooms_of(opts.except_)),
        opts.flags or Flags(),
    )


def encode_broadcast(
    uid: str,
    namespace: str,
    data: list[Any],
    rooms: tuple[str, ...],
    except_rooms: frozenset[str],
    flags: Flags,
) -> bytes:
    packet = Packet(EVENT, data, namespace)
    opts = Opts(list(rooms), sorted(except_rooms), flags)
    return _msgpack.encode((uid, packet, opts))


def broadcast_channel(channels: Channels, rooms: tuple[str, ...]) -> str:
    """Where a broadcast goes: the room's own channel when it targets exactly one room."""
    return channels.room(rooms[0]) if len(rooms) == 1 else channels.broadcast


def decode_request(raw: bytes) -> Request:
    """A request or response: JSON when it starts with ``{``, else MessagePack."""
    try:
        if raw[:1] == b"{":
            request = _json_request_decoder.decode(raw)
        else:
            request = _msgpack_request_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ProtocolError(f"not an adapter request: {err}") from None
    if request.type is None and request.requestId is None:
        raise ProtocolError("an adapter request needs a type or a requestId")
    return request


def encode_request(request: Request) -> bytes:
    """JSON, except the two types Node sends as MessagePack."""
    if request.type in MSGPACK_TYPES:
        return _msgpack.encode(request)
    return _json.encode(request)
