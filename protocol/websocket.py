"""RFC 6455 frames, server side: parse masked client frames, build unmasked server frames.

wsproto performs the HTTP upgrade elsewhere; after it, this module owns the byte stream because
it is several times faster than a general state machine on the hot path (unmasking is one big-int
XOR in C, not a Python loop) and because it lets us refuse an oversized frame from its header,
before buffering a single byte of its body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocol.errors import ProtocolError

__all__ = [
    "BinaryMessage",
    "Close",
    "Event",
    "FrameParser",
    "Ping",
    "Pong",
    "TextMessage",
    "WebSocketError",
    "frame_binary",
    "frame_close",
    "frame_ping",
    "frame_pong",
    "frame_text",
]


@dataclass(frozen=True, slots=True)
class TextMessage:
    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    code: int | None
    reason: str


Event = TextMessage | BinaryMessage | Ping | Pong | Close

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009


class WebSocketError(ProtocolError):
    """A framing violation; ``close_code`` is what to send in our Close frame before hanging up.

    ``events`` holds what the same feed() parsed before the bad frame, so a server can still
    deliver messages that preceded the violation (as Node's ``ws`` does) before closing.
    """

    close_code: int
    events: list[Event]

    def __init__(self, reason: str, close_code: int = PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.events = []


_OP_CONT = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA


def _valid_close_code(code: int) -> bool:
    """The codes a peer may send (as the ``ws`` library checks): not 1004-1006, not 1015."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999


def _unmask(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    n = len(payload)
    key = (bytes(mask) * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameParser:
    """Incremental parser of client frames into whole messages and control frames.

    Input may be split anywhere. After a Close frame further input is ignored; after an error
    every later feed() raises again (the connection must be closed).
    """

    __slots__ = ("_buf", "_closed", "_error", "_frag_op", "_frag_size", "_frags", "_max", "_need")

    def __init__(self, *, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._buf = bytearray()
        self._need = 2  # bytes that must be buffered before parsing can progress
        self._frag_op = 0  # opcode of the fragmented message in progress, 0 if none
        self._frags: list[bytes] = []
        self._frag_size = 0
        self._closed = False
        self._error: WebSocketError | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._error is not None:
            raise WebSocketError(str(self._error), self._error.close_code)
        if self._closed:
            return []
        buf = self._buf
        if not buf and not self._frag_op:
            # the common read: exactly one whole, small, final, masked text frame
            n = len(data)
            if 6 < n < 132 and data[0] == 0x81 and data[1] == n + 122 and n - 6 <= self._max:
                try:
                    return [_message(_OP_TEXT, _unmask(data[6:], data[2:6]))]
                except WebSocketError:
                    pass  # invalid UTF-8: the general path below records the error
        view: bytes | bytearray
        if buf:
            buf += data
            if len(buf) < self._need:
                return []
            view = buf
        else:
            if len(data) < 2:
                if data:
                    buf += data
                return []
            view = data
        events: list[Event] = []
        try:
            pos = self._parse(view, events)
        except WebSocketError as exc:
            exc.events = events
            self._error = exc
            self._buf = bytearray()
            self._frags = []
            raise
        if self._closed:
            self._buf = bytearray()
        elif view is buf:
            if pos:
                del buf[:pos]
        elif pos < len(view):
            self._buf = bytearray(view[pos:])
        return events

    def _parse(self, view: bytes | bytearray, events: list[Event]) -> int:
        """Parse whole frames from ``view``; returns how many bytes were consumed."""
        pos = 0
        end = len(view)
        while True:
            avail = end - pos
            if avail < 2:
                self._need = 2
                return pos
            b0 = view[pos]
            b1 = view[pos + 1]
            if b0 & 0x70:
                raise WebSocketError("reserved bits set")
            if not b1 & 0x80:
                raise WebSocketError("client frame not masked")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            length = b1 & 0x7F
            if opcode >= _OP_CLOSE:
                if opcode > _OP_PONG:
                    raise WebSocketError("unknown opcode")
                if not fin:
                    raise WebSocketError("fragmented control frame")
                if length > 125:
                    raise WebSocketError("control frame too long")
                header = 6
            else:
                if opcode > _OP_BINARY:
                    raise WebSocketError("unknown opcode")
                if opcode == _OP_CONT:
                    if not self._frag_op:
                        raise WebSocketError("continuation without a message")
                elif self._frag_op:
                    raise WebSocketError("new message inside a fragmented one")
                if length == 126:
                    if avail < 4:
                        self._need = 4
                        return pos
                    length = (view[pos + 2] << 8) | view[pos + 3]
                    header = 8
                elif length == 127:
                    if avail < 10:
                        self._need = 10
                        return pos
                    length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        raise WebSocketError("invalid frame length")
                    header = 14
                else:
                    header = 6
                already = self._frag_size if opcode == _OP_CONT else 0
                if already + length > self._max:
                    raise WebSocketError("message too big", MESSAGE_TOO_BIG)
            total = header + length
            if avail < total:
                self._need = total
                return pos
            start = pos + header
            pos += total
            if length:
                payload = _unmask(view[start:pos], view[start - 4 : start])
            else:
                payload = b""

            if opcode == _OP_TEXT or opcode == _OP_BINARY:
                if fin:
                    events.append(_message(opcode, payload))
                else:
                    self._frag_op = opcode
                    self._frags = [payload]
                    self._frag_size = length
            elif opcode == _OP_CONT:
                self._frags.append(payload)
                self._frag_size += length
                if fin:
                    whole = b"".join(self._frags)
                    op = self._frag_op
                    self._frags = []
                    self._frag_op = 0
                    self._frag_size = 0
                    events.append(_message(op, whole))
            elif opcode == _OP_PING:
                events.append(Ping(payload))
            elif opcode == _OP_PONG:
                events.append(Pong(payload))
            else:
                events.append(_close(payload))
                self._closed = True
                return pos


_new = object.__new__
_set_text = TextMessage.__dict__["data"].__set__
_set_binary = BinaryMessage.__dict__["data"].__set__


def _message(opcode: int, payload: bytes) -> TextMessage | BinaryMessage:
    """Build the event through slot descriptors: the frozen __init__ costs more than parsing."""
    if opcode == _OP_TEXT:
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise WebSocketError("invalid UTF-8 in text message", INVALID_DATA) from None
        msg: TextMessage | BinaryMessage = _new(TextMessage)
        _set_text(msg, text)
        return msg
    msg = _new(BinaryMessage)
    _set_binary(msg, payload)
    return msg


def _close(payload: bytes) -> Close:
    if not payload:
        return Close(None, "")
    if len(payload) == 1:
        raise WebSocketError("close payload of length 1")
    code = (payload[0] << 8) | payload[1]
    if not _valid_close_code(code):
        raise WebSocketError("invalid close code")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        # RFC 6455 8.1: invalid UTF-8 in any text, the close reason included, fails with 1007
        raise WebSocketError("invalid UTF-8 in close reason", INVALID_DATA) from None
    return Close(code, reason)


# ---------------------------------------------------------------------------------------------
# Server frames (never masked, never fragmented)

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def _frame(b0: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return _pack_short(b0, 126, n) + payload
    return _pack_long(b0, 127, n) + payload


def frame_text(payload: bytes) -> bytes:
    """A final text frame; ``payload`` must already be UTF-8."""
    return _frame(0x81, payload)


def frame_binary(payload: bytes) -> bytes:
    return _frame(0x82, payload)


def frame_close(code: int | None = 1000, reason: str = "") -> bytes:
    """A Close frame; ``None`` sends no status. Reasons are cut to fit the 125-byte limit."""
    if code is None:
        return b"\x88\x00"
    raw = reason.encode()
    if len(raw) > 123:
        raw = raw[:123].decode(errors="ignore").encode()
    return _frame(0x88, code.to_bytes(2, "big") + raw)


def frame_pong(payload: bytes) -> bytes:
    return _frame(0x8A, payload)


def frame_ping(payload: bytes = b"") -> bytes:
    return _frame(0x89, payload)
