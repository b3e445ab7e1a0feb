"""Socket.IO v5 packets (socket.io-parser 4.x semantics), decoded strictly and encoded exactly.

Wire form: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``. Binary values travel as
separate Engine.IO binary messages after the text packet, referenced by placeholders
``{"_placeholder":true,"num":N}``.

Where Node is lax we are strict, because every laxness is a way to smuggle odd values into
handlers: digits are ASCII only (Node's ``Number(c) == c`` also accepts spaces), the event name
must be a string (Node also takes numbers), EVENT/ACK need a payload and ACK needs an id (Node
would hand ``undefined`` to the handler), placeholders must be exactly ``_placeholder``/``num``
and every attachment must be referenced.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.errors import ProtocolError
from protocol.json_codec import decode_json, encode_json

__all__ = [
    "RESERVED_EVENTS",
    "Limits",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "encode_ack",
    "encode_event",
    "encode_packet",
]


class PacketType(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


@dataclass(frozen=True, slots=True)
class Packet:
    type: PacketType
    namespace: str = "/"
    # CONNECT: dict | None (auth); EVENT/ACK: list (event name first for EVENT);
    # CONNECT_ERROR: dict | str; DISCONNECT: None. Decoded BINARY_* carry bytes in place of
    # their placeholders.
    data: Any = None
    id: int | None = None  # ack id


@dataclass(frozen=True, slots=True)
class Limits:
    max_attachments: int = 10
    max_depth: int = 32
    max_ack_id: int = 2**53 - 1
    max_namespace_length: int = 128
    max_namespace_query_length: int = 4096  # a v2 client's CONNECT carries its query (a JWT)


_DEFAULT_LIMITS = Limits()

_P = PacketType
# Hot-path constants: class attribute access on an Enum and hashing a member (Enum.__hash__ is
# Python code) both cost more than the rest of decoding a short packet, so decoding works on
# plain ints and only attaches the member at the end.
_TYPE_BY_CHAR: dict[str, tuple[PacketType, int]] = {str(int(t)): (t, int(t)) for t in PacketType}
_DIGITS = re.compile(r"[0-9]+")
_BAD_NSP_CHAR = re.compile(r"[\x00-\x1f\x7f]")
_BINARY_TYPES = (bytes, bytearray, memoryview)

_new = object.__new__
_set_type, _set_namespace, _set_data, _set_id = (
    Packet.__dict__[f].__set__ for f in ("type", "namespace", "data", "id")
)


def _packet(ptype: PacketType, namespace: str, data: Any, ack_id: int | None) -> Packet:
    """Build a Packet through its slot descriptors: 3x faster than the frozen __init__."""
    p = _new(Packet)
    _set_type(p, ptype)
    _set_namespace(p, namespace)
    _set_data(p, data)
    _set_id(p, ack_id)
    return p


class PacketDecoder:
    """Per-connection, stateful only across a binary packet and its attachments."""

    __slots__ = ("_attachments", "_expected", "_limits", "_pending")

    def __init__(self, limits: Limits = _DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._pending: Packet | None = None
        self._expected = 0
        self._attachments: list[bytes] = []

    @property
    def awaiting_attachments(self) -> bool:
        return self._pending is not None

    def feed_text(self, text: str) -> Packet | None:
        """Decode one Engine.IO MESSAGE payload; None means a binary header awaiting attachments."""
        if self._pending is not None:
            raise ProtocolError("text packet while waiting for binary attachments")
        if not text:
            raise ProtocolError("empty packet")
        kind = _TYPE_BY_CHAR.get(text[0])
        if kind is None:
            raise ProtocolError("unknown packet type")
        ptype, code = kind
        n = len(text)
        limits = self._limits
        i = 1
        attachments = 0
        if code >= 5:  # BINARY_EVENT, BINARY_ACK
            m = _DIGITS.match(text, 1)
            if m is None or m.end() > 7 or m.end() >= n or text[m.end()] != "-":
                raise ProtocolError("illegal attachments")
            attachments = int(m.group())
            if attachments < 1:
                raise ProtocolError("illegal attachments")
            if attachments > limits.max_attachments:
                raise ProtocolError("too many attachments")
            i = m.end() + 1

        namespace = "/"
        if i < n and text[i] == "/":
            comma = text.find(",", i)
            if comma < 0:
                namespace = text[i:]
                i = n
            else:
                namespace = text[i:comma]
                i = comma + 1
            name, _, query = namespace.partition("?")
            if len(name) > limits.max_namespace_length:
                raise ProtocolError("namespace too long")
            if len(query) > limits.max_namespace_query_length:
                raise ProtocolError("namespace query too long")
            if _BAD_NSP_CHAR.search(namespace) is not None:
                raise ProtocolError("invalid namespace")

        ack_id: int | None = None
        if i < n and "0" <= text[i] <= "9":
            if code < 2 or code == 4:
                raise ProtocolError("unexpected ack id")
            m = _DIGITS.match(text, i)
            assert m is not None
            end = m.end()
            if end - i > 16:
                raise ProtocolError("ack id too large")
            ack_id = int(text[i:end])
            if ack_id > limits.max_ack_id:
                raise ProtocolError("ack id too large")
            i = end

        # Payload rules: socket.io-parser's isPayloadValid, minus numeric event names.
        if i < n:
            data = decode_json(text[i:], max_depth=limits.max_depth)
            tdata = type(data)
            if code == 2 or code == 5:  # EVENT
                if tdata is not list or not data:
                    raise ProtocolError("invalid payload")
                name = data[0]
                if type(name) is not str or name in RESERVED_EVENTS:
                    raise ProtocolError("invalid event name")
            elif code == 3 or code == 6:  # ACK
                if tdata is not list:
                    raise ProtocolError("invalid payload")
            elif code == 0:  # CONNECT
                if tdata is not dict:
                    raise ProtocolError("invalid payload")
            elif code == 4:  # CONNECT_ERROR
                if tdata is not dict and tdata is not str:
                    raise ProtocolError("invalid payload")
            else:  # DISCONNECT carries nothing
                raise ProtocolError("invalid payload")
        else:
            data = None
            if code > 1:  # only CONNECT and DISCONNECT may omit the payload
                raise ProtocolError("missing payload")
        if ack_id is None and (code == 3 or code == 6):
            raise ProtocolError("ack without id")

        packet = _packet(ptype, namespace, data, ack_id)
        if attachments:
            self._pending = packet
            self._expected = attachments
            self._attachments = []
            return None
        return packet

    def feed_event(self, text: str) -> tuple[str, int | None, list[Any]] | None:
        """The common packet, an EVENT (``2[/<namespace>,][<ack id>][...]``), in one pass.

        Returns ``(namespace, ack id, [event, *args])``, exactly what :meth:`feed_text` would put
        in its Packet, or None for anything else: another type, an unusual form (a namespace
        with a query, JSON not starting with ``[``) or any error. None decides nothing: the
        caller hands the same text to :meth:`feed_text`, which accepts or refuses it. Nothing is
        changed either way, so every limit and rule stays where it is, in :meth:`feed_text`.
        """
        if text[:1] != "2" or self._pending is not None:
            return None
        limits = self._limits
        namespace = "/"
        start = 1
        if text[1:2] == "/":
            comma = text.find(",", 1)
            if comma < 0:
                return None
            namespace = text[1:comma]
            if (
                len(namespace) > limits.max_namespace_length
                or "?" in namespace
                or _BAD_NSP_CHAR.search(namespace) is not None
            ):
                return None
            start = comma + 1
        bracket = text.find("[", start)
        if bracket < 0:
            return None
        ack_id: int | None = None
        if bracket > start:
            digits = text[start:bracket]
            if len(digits) > 16 or not digits.isascii() or not digits.isdigit():
                return None
            ack_id = int(digits)
            if ack_id > limits.max_ack_id:
                return None
        try:
            data = decode_json(text[bracket:], max_depth=limits.max_depth)
        except ProtocolError:
            return None
        if type(data) is not list or not data:
            return None
        name = data[0]
        if type(name) is not str or name in RESERVED_EVENTS:
            return None
        return namespace, ack_id, data

    def feed_binary(self, data: bytes) -> Packet | None:
        """Take one attachment; returns the completed packet after the last one."""
        pending = self._pending
        if pending is None:
            raise ProtocolError("unexpected binary attachment")
        buffers = self._attachments
        buffers.append(data)
        if len(buffers) < self._expected:
            return None
        self._pending = None
        self._attachments = []
        _reconstruct(pending.data, buffers)
        return pending

    def reset(self) -> None:
        """Drop a half-received binary packet (e.g. when the connection goes away)."""
        self._pending = None
        self._attachments = []


def _placeholder_num(d: dict[str, Any], count: int) -> int | None:
    """The index of a placeholder dict, None for an ordinary dict; ProtocolError if malformed."""
    if d.get("_placeholder") is not True:
        return None
    num = d.get("num")
    if len(d) != 2 or type(num) is not int or not 0 <= num < count:
        raise ProtocolError("illegal attachments")
    return num


def _reconstruct(data: list[Any], buffers: list[bytes]) -> None:
    """Swap placeholders for their buffers in place (we own the freshly decoded JSON).

    Iterative, and every buffer must be referenced: unreferenced ones mean the placeholders
    do not match what was sent.
    """
    count = len(buffers)
    used = [False] * count
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if type(node) is list:
            items: Any = enumerate(node)
        else:
            items = node.items()
        for key, value in items:
            t = type(value)
            if t is dict:
                num = _placeholder_num(value, count)
                if num is None:
                    stack.append(value)
                else:
                    node[key] = buffers[num]
                    used[num] = True
            elif t is list:
                stack.append(value)
    if not all(used):
        raise ProtocolError("unreferenced attachment")


# ---------------------------------------------------------------------------------------------
# Encoding


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _has_binary(obj: Any) -> bool:
    """True if bytes-like values occur inside lists, tuples or dicts (as Node's hasBinary).

    Scalars are skipped with one set lookup on their type before any call: most event
    arguments are flat strings and numbers, and this scan runs for every outgoing event.
    """
    t = type(obj)
    if t is list or t is tuple:
        values: Any = obj
    elif t is dict:
        values = obj.values()
    else:
        return isinstance(obj, _BINARY_TYPES)
    for v in values:
        if type(v) not in _SCALARS and _has_binary(v):
            return True
    return False


def _deconstruct(obj: Any, buffers: list[bytes]) -> Any:
    """Copy ``obj`` with binary values replaced by numbered placeholders (depth-first order)."""
    if isinstance(obj, _BINARY_TYPES):
        placeholder = {"_placeholder": True, "num": len(buffers)}
        buffers.append(obj if type(obj) is bytes else bytes(obj))
        return placeholder
    t = type(obj)
    if t is list or t is tuple:
        return [_deconstruct(v, buffers) for v in obj]
    if t is dict:
        return {k: _deconstruct(v, buffers) for k, v in obj.items()}
    return obj


def _head(type_char: bytes, namespace: str, ack_id: int | None) -> bytes:
    head = type_char
    if namespace and namespace != "/":
        head += namespace.encode() + b","
    if ack_id is not None:
        head += str(ack_id).encode()
    return head


def _encode_args(
    plain: bytes, binary: bytes, namespace: str, ack_id: int | None, args: Any
) -> tuple[bytes, list[bytes]]:
    if _has_binary(args):
        buffers: list[bytes] = []
        body = _deconstruct(args, buffers)
        head = binary + str(len(buffers)).encode() + b"-"
        return _head(head, namespace, ack_id) + encode_json(body), buffers
    return _head(plain, namespace, ack_id) + encode_json(args), []


def encode_event(
    namespace: str, args: Sequence[Any], ack_id: int | None = None
) -> tuple[bytes, list[bytes]]:
    """EVENT (or BINARY_EVENT) with ``args`` = [event name, *arguments]; the hot path."""
    if type(args) is not list and type(args) is not tuple:
        args = list(args)
    if namespace == "/" and ack_id is None and not _has_binary(args):
        return b"2" + encode_json(args), []
    return _encode_args(b"2", b"5", namespace, ack_id, args)


def encode_ack(namespace: str, ack_id: int, args: Sequence[Any]) -> tuple[bytes, list[bytes]]:
    """ACK (or BINARY_ACK) answering ``ack_id``; the hot path (every echo-style answer)."""
    if type(args) is not list and type(args) is not tuple:
        args = list(args)
    if namespace == "/" and not _has_binary(args):
        return b"3%d" % ack_id + encode_json(args), []
    return _encode_args(b"3", b"6", namespace, ack_id, args)


_TYPE_BYTES: dict[PacketType, bytes] = {t: str(int(t)).encode() for t in PacketType}


def encode_packet(packet: Packet) -> tuple[bytes, list[bytes]]:
    """Encode any packet as socket.io-parser does: (text without the Engine.IO "4", attachments).

    EVENT/ACK (and BINARY_*) become BINARY_* exactly when their data holds binary values.
    Other kinds never get attachments: their data is written as JSON as is.
    """
    ptype = packet.type
    if ptype is _P.EVENT or ptype is _P.BINARY_EVENT:
        return _encode_args(b"2", b"5", packet.namespace, packet.id, packet.data)
    if ptype is _P.ACK or ptype is _P.BINARY_ACK:
        return _encode_args(b"3", b"6", packet.namespace, packet.id, packet.data)
    head = _head(_TYPE_BYTES[ptype], packet.namespace, packet.id)
    if packet.data is None:
        return head, []
    return head + encode_json(packet.data), []
