"""Socket.IO packets as ``socket.io-msgpack-parser`` 3.x writes them: one MessagePack map each.

A client created with ``parser: require("socket.io-msgpack-parser")`` sends and expects every
Socket.IO packet as ONE binary Engine.IO message: the map ``{type, data, nsp, id?}``, types 0
(CONNECT) to 4 (CONNECT_ERROR) only, binary values inline as MessagePack ``bin`` (no
attachments, so no BINARY_* types). Keys are written in the order Node's socket.io builds its
packets (``type``, ``data``, ``id``, ``nsp``; an ack's ``id`` first), so the bytes are the ones
a Node server sends.
The same limits as JSON apply: nesting depth, the number of binary values (as attachments),
the packet's size (the Engine.IO message limit), and the rules of a valid payload.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocol.errors import ProtocolError
from protocol.socketio import RESERVED_EVENTS, Limits, Packet, PacketType

_decoder = msgspec.msgpack.Decoder()
_encoder = msgspec.msgpack.Encoder()

_WIRE_TYPE = {
    PacketType.CONNECT: 0,
    PacketType.DISCONNECT: 1,
    PacketType.EVENT: 2,
    PacketType.BINARY_EVENT: 2,
    PacketType.ACK: 3,
    PacketType.BINARY_ACK: 3,
    PacketType.CONNECT_ERROR: 4,
}
_ACKS = frozenset({PacketType.ACK, PacketType.BINARY_ACK})
_PACKET_TYPE = {0: PacketType.CONNECT, 1: PacketType.DISCONNECT, 2: PacketType.EVENT}
_PACKET_TYPE |= {3: PacketType.ACK, 4: PacketType.CONNECT_ERROR}


def encode(packet: Packet) -> bytes:
    """The MessagePack form of ``packet`` (its data as decoded values, binary as bytes)."""
    return encode_parts(packet.type, packet.namespace, packet.data, packet.id)


def encode_parts(ptype: PacketType, namespace: str, data: object, ack_id: int | None) -> bytes:
    """:func:`encode` from the packet's parts (what an outgoing frame keeps of it)."""
    wire: dict[str, Any] = {}
    if ptype in _ACKS:  # Node builds an ack as {id, type, data}
        wire["id"] = ack_id
    wire["type"] = _WIRE_TYPE[ptype]
    if data is not None:
        wire["data"] = data
    if ack_id is not None and ptype not in _ACKS:
        wire["id"] = ack_id
    wire["nsp"] = namespace
    return _encoder.encode(wire)


def decode(message: bytes, limits: Limits) -> Packet:
    """One binary message from a MessagePack client; ProtocolError for anything else."""
    try:
        wire = _decoder.decode(message)
    except (msgspec.DecodeError, RecursionError):
        raise ProtocolError("invalid MessagePack packet") from None
    if type(wire) is not dict:
        raise ProtocolError("a MessagePack packet must be a map")
    kind = wire.get("type")
    if type(kind) is not int or kind not in _PACKET_TYPE:
        raise ProtocolError("invalid packet type")
    ptype = _PACKET_TYPE[kind]
    nsp = wire.get("nsp")
    if type(nsp) is not str or not nsp.startswith("/"):
        raise ProtocolError("invalid namespace")
    if len(nsp) > limits.max_namespace_length:
        raise ProtocolError("namespace too long")
    ack_id = wire.get("id")
    if ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= limits.max_ack_id):
        raise ProtocolError("invalid packet id")
    data = wire.get("data")
    _check_payload(ptype, data, ack_id)
    _check_limits(data, limits)
    return Packet(ptype, nsp, data, ack_id)


def _check_payload(ptype: PacketType, data: object, ack_id: int | None) -> None:
    """socket.io-msgpack-parser's isDataValid, with the JSON parser's event-name rules."""
    if ptype is PacketType.CONNECT:
        ok = data is None or type(data) is dict
    elif ptype is PacketType.DISCONNECT:
        ok = data is None and ack_id is None
    elif ptype is PacketType.CONNECT_ERROR:
        ok = type(data) is dict or type(data) is str
    else:
        ok = type(data) is list
    if not ok:
        raise ProtocolError("invalid payload")
    if ptype is PacketType.EVENT:
        assert isinstance(data, list)
        if not data or type(data[0]) is not str or data[0] in RESERVED_EVENTS:
            raise ProtocolError("invalid event name")
    if ptype is PacketType.ACK and ack_id is None:
        raise ProtocolError("ack without id")


def _check_limits(data: object, limits: Limits) -> None:
    """Nesting depth and binary values, counted without recursion."""
    binaries = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            if any(type(key) is not str for key in node):
                raise ProtocolError("MessagePack map keys must be strings")
            values: Any = node.values()
        elif type(node) is list:
            values = node
        else:
            if type(node) is bytes:
                binaries += 1
            continue
        if depth > limits.max_depth:
            raise ProtocolError("MessagePack nested too deeply")
        for value in values:
            if type(value) is dict or type(value) is list:
                stack.append((value, depth + 1))
            elif type(value) is bytes:
                binaries += 1
            elif type(value) is msgspec.msgpack.Ext:
                raise ProtocolError("MessagePack extension types are not accepted")
    if binaries > limits.max_attachments:
        raise ProtocolError("too many binary values")
