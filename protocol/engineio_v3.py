"""Engine.IO v3 (Socket.IO v2 clients): its polling payloads and its binary WebSocket messages.

Packets are the same as v4's (a type digit and data); what differs is how they travel:

* a text polling payload prefixes each packet with its length in characters (JavaScript's
  UTF-16 code units) and a colon: ``6:4hello2:40``; a binary MESSAGE in it is ``b4`` + base64;
* a client that can receive binary (no ``b64=1`` in its query) gets, whenever a payload holds
  binary data, the binary payload format: per packet ``0`` (text) or ``1`` (binary), the length
  as one byte per decimal digit, ``0xFF``, then the packet (text as UTF-8; binary as the type
  byte ``4`` followed by the data);
* on a WebSocket a binary MESSAGE is the type byte ``4`` followed by the data.

The heartbeat is the other way round (the client pings, the server answers); that is the
server's business, not this codec's.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from protocol.engineio import BinaryMessage, Packet, PacketType, decode_packet
from protocol.errors import ProtocolError

PROTOCOL_VERSION = 3
MESSAGE_BYTE = b"\x04"
_TEXT_MARK, _BINARY_MARK, _END_OF_LENGTH = 0, 1, 255
MAX_LENGTH_DIGITS = 16  # a longer length field is garbage, not a packet


def utf16_length(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units (a character past U+FFFF counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_take(text: str, start: int, units: int) -> int:
    """The index in ``text`` after ``units`` UTF-16 code units from ``start``."""
    i = start
    while units > 0 and i < len(text):
        units -= 2 if ord(text[i]) > 0xFFFF else 1
        i += 1
    if units != 0:
        raise ProtocolError("payload shorter than its length field")
    return i


def decode_text_packet(text: str) -> Packet:
    """A text packet; a binary one travels as ``b`` + its type + base64 (``b4AQID``)."""
    if text[:1] != "b":
        return decode_packet(text)
    if text[1:2] != "4":
        raise ProtocolError("a base64 packet other than MESSAGE")
    try:
        return Packet(PacketType.MESSAGE, binascii.a2b_base64(text[2:], strict_mode=True))
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid base64 in binary packet") from None


def decode_websocket_binary(message: bytes) -> Packet:
    """A binary WebSocket message of v3: the packet type byte, then the data."""
    if not message:
        raise ProtocolError("empty binary packet")
    if message[:1] != MESSAGE_BYTE:
        raise ProtocolError("a binary packet other than MESSAGE")
    return Packet(PacketType.MESSAGE, bytes(message[1:]))


def encode_websocket_binary(data: bytes) -> bytes:
    return MESSAGE_BYTE + data


def decode_payload(body: bytes, *, max_packets: int = 1000) -> list[Packet]:
    """A polling POST body of either format (a binary payload starts with byte 0 or 1)."""
    if body[:1] in (b"\x00", b"\x01"):
        return _decode_binary_payload(body, max_packets)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ProtocolError("payload is not valid UTF-8") from None
    return _decode_text_payload(text, max_packets)


def _decode_text_payload(text: str, max_packets: int) -> list[Packet]:
    packets: list[Packet] = []
    i = 0
    while i < len(text):
        colon = text.find(":", i)
        digits = text[i:colon] if colon >= 0 else ""
        if not digits.isdigit() or len(digits) > MAX_LENGTH_DIGITS:
            raise ProtocolError("invalid payload length")
        end = _utf16_take(text, colon + 1, int(digits))
        if end > colon + 1:
            packets.append(decode_text_packet(text[colon + 1 : end]))
            if len(packets) > max_packets:
                raise ProtocolError("too many packets in payload")
        i = end
    return packets


def _decode_binary_payload(body: bytes, max_packets: int) -> list[Packet]:
    packets: list[Packet] = []
    i = 0
    while i < len(body):
        mark = body[i]
        end_of_length = body.find(b"\xff", i + 1, i + 2 + MAX_LENGTH_DIGITS)
        digits = body[i + 1 : end_of_length]
        if mark not in (_TEXT_MARK, _BINARY_MARK) or end_of_length < 0 or not digits:
            raise ProtocolError("invalid binary payload")
        if any(d > 9 for d in digits):
            raise ProtocolError("invalid binary payload length")
        length = int("".join(str(d) for d in digits))
        start = end_of_length + 1
        chunk = body[start : start + length]
        if len(chunk) != length:
            raise ProtocolError("binary payload shorter than its length field")
        if mark == _BINARY_MARK:
            packets.append(decode_websocket_binary(chunk))
        else:
            try:
                packets.append(decode_text_packet(chunk.decode()))
            except UnicodeDecodeError:
                raise ProtocolError("payload is not valid UTF-8") from None
        if len(packets) > max_packets:
            raise ProtocolError("too many packets in payload")
        i = start + length
    return packets


def encode_payload(items: Sequence[bytes], *, supports_binary: bool) -> tuple[bytes, str]:
    """A polling GET body and its content type. ``items`` are encoded text packets, and
    :class:`~protocol.engineio.BinaryMessage` for binary MESSAGEs."""
    has_binary = any(isinstance(item, BinaryMessage) for item in items)
    if supports_binary and has_binary:
        return b"".join(_binary_item(item) for item in items), "application/octet-stream"
    parts: list[str] = []
    for item in items:
        if isinstance(item, BinaryMessage):
            text = "b4" + binascii.b2a_base64(item, newline=False).decode("ascii")
        else:
            text = item.decode()
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts).encode(), "text/plain; charset=UTF-8"


def _binary_item(item: bytes) -> bytes:
    if isinstance(item, BinaryMessage):
        data, mark = MESSAGE_BYTE + item, _BINARY_MARK
    else:
        data, mark = item, _TEXT_MARK
    length = bytes(int(d) for d in str(len(data)))
    return bytes([mark]) + length + bytes([_END_OF_LENGTH]) + data
