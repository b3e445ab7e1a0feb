"""Engine.IO v4 packets, polling payloads and handshake request checks (engine.io 6.x semantics).

Text packets are a type digit followed by data (``4hello``); a binary MESSAGE is raw bytes on a
WebSocket and ``b`` + base64 inside a polling payload. Polling payloads join packets with the
ASCII record separator (0x1E), which can never appear in the base64 or the JSON we send.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from protocol.errors import ProtocolError
from protocol.json_codec import encode_json

__all__ = [
    "ERROR_MESSAGES",
    "PROTOCOL_VERSION",
    "RECORD_SEPARATOR",
    "BinaryMessage",
    "EngineRequest",
    "ErrorCode",
    "Packet",
    "PacketType",
    "RequestError",
    "check_protocol_version",
    "check_request",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "new_sid",
    "open_packet",
]

PROTOCOL_VERSION = 4
RECORD_SEPARATOR = "\x1e"
_SEP = b"\x1e"


class PacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    type: PacketType
    data: str | bytes = ""  # bytes only for a binary MESSAGE


class BinaryMessage(bytes):
    """Marks an outgoing binary MESSAGE payload (raw bytes on WebSocket, b+base64 on polling)."""

    __slots__ = ()


# Lookup tables instead of int()/enum calls: decoding and encoding run once per message.
_TYPE_BY_CHAR: dict[str, PacketType] = {str(int(t)): t for t in PacketType}
_PREFIX: dict[PacketType, bytes] = {t: str(int(t)).encode() for t in PacketType}
_EMPTY_PACKETS: dict[PacketType, Packet] = {t: Packet(t) for t in PacketType}
_MESSAGE = PacketType.MESSAGE

_new = object.__new__
_set_type = Packet.__dict__["type"].__set__
_set_data = Packet.__dict__["data"].__set__


def _packet(ptype: PacketType, data: str | bytes) -> Packet:
    """Build a Packet through its slot descriptors: much faster than the frozen __init__."""
    p = _new(Packet)
    _set_type(p, ptype)
    _set_data(p, data)
    return p


def _decode_base64(text: str) -> bytes:
    """Strict base64: Node's Buffer.from() silently skips junk, but junk means a broken peer."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid base64 in binary packet") from None


def _decode_text(text: str) -> Packet:
    if not text:
        raise ProtocolError("empty packet")
    first = text[0]
    ptype = _TYPE_BY_CHAR.get(first)
    if ptype is None:
        if first == "b":
            return _packet(_MESSAGE, _decode_base64(text[1:]))
        raise ProtocolError("unknown packet type")
    if len(text) == 1:
        return _EMPTY_PACKETS[ptype]
    return _packet(ptype, text[1:])


def decode_packet(message: str | bytes) -> Packet:
    """Decode one WebSocket message: text is a typed packet, bytes a v4 binary MESSAGE.

    Like Node's engine.io-parser, a text message starting with ``b`` is accepted as base64
    binary (clients with ``b64=1`` may send it).
    """
    if isinstance(message, str):
        return _decode_text(message)
    return _packet(_MESSAGE, message if type(message) is bytes else bytes(message))


def encode_packet(ptype: PacketType, data: str = "") -> bytes:
    """Encode a text packet as UTF-8: ``encode_packet(PacketType.PONG, "probe") == b"3probe"``."""
    if data:
        return _PREFIX[ptype] + data.encode()
    return _PREFIX[ptype]


def decode_payload(body: bytes, *, max_packets: int = 1000) -> list[Packet]:
    """Decode a polling POST body (packets joined by 0x1E) into packets, all or nothing.

    Node stops at the first bad packet and reports an error; we reject the whole body, which
    the server treats the same way (400 and session closed).
    """
    if body.count(_SEP) >= max_packets:
        raise ProtocolError("too many packets in payload")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ProtocolError("payload is not valid UTF-8") from None
    if RECORD_SEPARATOR not in text:
        return [_decode_text(text)]
    return [_decode_text(part) for part in text.split(RECORD_SEPARATOR)]


def encode_payload(packets: Sequence[bytes]) -> bytes:
    """Join encoded packets for a polling GET body; BinaryMessage items become ``b`` + base64."""
    if len(packets) == 1 and type(packets[0]) is bytes:
        return packets[0]
    return _SEP.join(
        b"b" + binascii.b2a_base64(p, newline=False) if isinstance(p, BinaryMessage) else p
        for p in packets
    )


def open_packet(
    sid: str,
    *,
    upgrades: Sequence[str],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload: int,
) -> bytes:
    """The OPEN packet: ``0`` + JSON with exactly Node's keys, in Node's order."""
    return b"0" + encode_json(
        {
            "sid": sid,
            "upgrades": list(upgrades),
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
            "maxPayload": max_payload,
        }
    )


class ErrorCode(enum.IntEnum):
    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class RequestError(Exception):
    """An HTTP-level Engine.IO error, answered like Node's abortRequest().

    ``message`` defaults to Node's text for the code; Node lets allowRequest() supply its own
    message for FORBIDDEN, hence the override.
    """

    code: ErrorCode
    message: str
    status: int

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        self.code = code
        self.message = ERROR_MESSAGES[code] if message is None else message
        self.status = 403 if code is ErrorCode.FORBIDDEN else 400
        super().__init__(self.message)

    def body(self) -> bytes:
        """JSON body, e.g. ``b'{"code":0,"message":"Transport unknown"}'``."""
        return encode_json({"code": int(self.code), "message": self.message})


@dataclass(frozen=True, slots=True)
class EngineRequest:
    transport: Literal["polling", "websocket"]
    sid: str | None
    protocol: int = PROTOCOL_VERSION  # of a handshake: 4, or 3 for a Socket.IO v2 client


def check_protocol_version(query: Mapping[str, str], *, allow_eio3: bool = False) -> int:
    """The protocol of a handshake: ``EIO`` exactly ``"4"`` (Node's test), or ``"3"`` when
    ``allow_eio3``; anything else raises UNSUPPORTED_PROTOCOL_VERSION."""
    version = query.get("EIO")
    if version == "4":
        return 4
    if version == "3" and allow_eio3:
        return 3
    raise RequestError(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)


def check_request(
    method: str,
    query: Mapping[str, str],
    *,
    websocket_upgrade: bool,
    transports: Collection[str] = ("polling", "websocket"),
    check_version: bool = True,
    allow_eio3: bool = False,
) -> EngineRequest:
    """The stateless checks of Node's ``Server.verify()`` + ``handshake()``, in Node's order.

    1. ``transport`` missing or not in ``transports`` -> UNKNOWN_TRANSPORT.
    2. A non-empty ``sid`` -> returned as is; Node checks nothing else here (not even ``EIO``),
       so the caller must check the session exists (UNKNOWN_SID) and, for a non-upgrade request,
       that its transport matches (BAD_REQUEST).
    3. No sid: method other than GET -> BAD_HANDSHAKE_METHOD.
    4. ``transport=websocket`` on a plain HTTP request -> BAD_REQUEST.
    5. ``EIO`` other than ``"4"`` (missing, non-numeric, 3 unless ``allow_eio3``, ...) ->
       UNSUPPORTED_PROTOCOL_VERSION.

    Node runs ``allowRequest`` (FORBIDDEN) between steps 4 and 5 (5 lives in handshake()); a
    server with such a hook passes ``check_version=False`` and calls
    :func:`check_protocol_version` after it to keep Node's order exactly.
    """
    transport = _TRANSPORTS.get(query.get("transport", ""))
    if transport is None or transport not in transports:
        raise RequestError(ErrorCode.UNKNOWN_TRANSPORT)
    sid = query.get("sid")
    if sid:
        return EngineRequest(transport, sid)
    if method != "GET":
        raise RequestError(ErrorCode.BAD_HANDSHAKE_METHOD)
    if transport == "websocket" and not websocket_upgrade:
        raise RequestError(ErrorCode.BAD_REQUEST)
    protocol = PROTOCOL_VERSION
    if check_version:
        protocol = check_protocol_version(query, allow_eio3=allow_eio3)
    return EngineRequest(transport, None, protocol)


_TRANSPORTS: dict[str, Literal["polling", "websocket"]] = {
    "polling": "polling",
    "websocket": "websocket",
}


def new_sid() -> str:
    """20 URL-safe characters from 15 random bytes, like Node's base64id (120 bits)."""
    return base64.urlsafe_b64encode(os.urandom(15)).decode("ascii")
