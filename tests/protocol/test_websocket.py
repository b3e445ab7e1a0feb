import os
import struct

import pytest

from protocol.errors import ProtocolError
from protocol.websocket import (
    BinaryMessage,
    Close,
    FrameParser,
    Ping,
    Pong,
    TextMessage,
    WebSocketError,
    frame_binary,
    frame_close,
    frame_ping,
    frame_pong,
    frame_text,
)


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """Build a client frame (masked unless told otherwise); ``length`` overrides the header."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    mbit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4) if mask is None else mask
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse(data: bytes, max_message_bytes: int = 1 << 20) -> list[object]:
    return list(FrameParser(max_message_bytes=max_message_bytes).feed(data))


def error_code(data: bytes, max_message_bytes: int = 1 << 20) -> int:
    with pytest.raises(WebSocketError) as info:
        parse(data, max_message_bytes)
    assert isinstance(info.value, ProtocolError)
    return info.value.close_code


def test_simple_messages() -> None:
    data = (
        client_frame(1, "héllo".encode())
        + client_frame(2, b"\x00\xff")
        + client_frame(9, b"p")
        + client_frame(10, b"")
        + client_frame(1, b"")
    )
    assert parse(data) == [
        TextMessage("héllo"),
        BinaryMessage(b"\x00\xff"),
        Ping(b"p"),
        Pong(b""),
        TextMessage(""),
    ]


@pytest.mark.parametrize("size", [125, 126, 127, 65535, 65536, 200_000])
def test_lengths(size: int) -> None:
    payload = os.urandom(size)
    assert parse(client_frame(2, payload)) == [BinaryMessage(payload)]


def test_fragmentation_with_interleaved_control() -> None:
    data = (
        client_frame(1, b"he", fin=False)
        + client_frame(9, b"x")
        + client_frame(0, b"ll", fin=False)
        + client_frame(10, b"y")
        + client_frame(0, b"o")
        + client_frame(2, b"b", fin=False)
        + client_frame(0, b"", fin=False)
        + client_frame(0, b"c")
    )
    assert parse(data) == [Ping(b"x"), Pong(b"y"), TextMessage("hello"), BinaryMessage(b"bc")]


def test_utf8_split_across_fragments() -> None:
    raw = "é".encode()
    data = client_frame(1, raw[:1], fin=False) + client_frame(0, raw[1:])
    assert parse(data) == [TextMessage("é")]


def test_byte_by_byte_feeding() -> None:
    frames = [
        client_frame(1, b"a" * 300),
        client_frame(9, b""),
        client_frame(2, b"z" * 70000),
        client_frame(8, struct.pack("!H", 1000) + b"bye"),
    ]
    data = b"".join(frames)
    parser = FrameParser(max_message_bytes=1 << 20)
    events: list[object] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    assert events == [
        TextMessage("a" * 300),
        Ping(b""),
        BinaryMessage(b"z" * 70000),
        Close(1000, "bye"),
    ]
    assert parser.feed(client_frame(1, b"late")) == []


def test_random_chunking() -> None:
    rnd = __import__("random").Random(1)
    frames = [client_frame(1, os.urandom(rnd.randrange(200)).hex().encode()) for _ in range(50)]
    data = b"".join(frames)
    expected = parse(data)
    parser = FrameParser(max_message_bytes=1 << 20)
    got: list[object] = []
    pos = 0
    while pos < len(data):
        step = rnd.randrange(1, 40)
        got += parser.feed(data[pos : pos + step])
        pos += step
    assert got == expected and len(got) == 50


def test_close_frames() -> None:
    assert parse(client_frame(8, b"")) == [Close(None, "")]
    assert parse(client_frame(8, struct.pack("!H", 4999) + "ok é".encode())) == [
        Close(4999, "ok é")
    ]
    assert parse(client_frame(8, struct.pack("!H", 1000)) + b"garbage") == [Close(1000, "")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    assert error_code(client_frame(8, struct.pack("!H", code))) == 1002


def test_close_payload_errors() -> None:
    assert error_code(client_frame(8, b"\x03")) == 1002
    assert error_code(client_frame(8, struct.pack("!H", 1000) + b"\xff")) == 1007


@pytest.mark.parametrize(
    "data",
    [
        client_frame(1, b"a", masked=False),
        client_frame(1, b"a", rsv=4),
        client_frame(1, b"a", rsv=1),
        client_frame(3, b"a"),
        client_frame(7, b"a"),
        client_frame(11, b"a"),
        client_frame(15, b"a"),
        client_frame(9, b"a", fin=False),
        client_frame(8, b"", fin=False),
        client_frame(9, b"a" * 126),
        client_frame(10, b"a" * 126),
        client_frame(0, b"a"),
        client_frame(1, b"a", fin=False) + client_frame(1, b"b"),
        client_frame(1, b"a", fin=False) + client_frame(2, b"b"),
        b"\x82\xff" + b"\x80" + b"\x00" * 7,  # 64-bit length with the top bit set
    ],
)
def test_protocol_errors(data: bytes) -> None:
    assert error_code(data) == 1002


def test_invalid_utf8() -> None:
    assert error_code(client_frame(1, b"\xff")) == 1007
    assert error_code(client_frame(1, b"\xed\xa0\x80")) == 1007  # encoded surrogate
    assert error_code(client_frame(1, b"\xc3", fin=False) + client_frame(0, b"(")) == 1007


def test_message_too_big_checked_from_header() -> None:
    parser = FrameParser(max_message_bytes=100)
    assert parser.feed(client_frame(2, b"x" * 100)) == [BinaryMessage(b"x" * 100)]
    # Only the header of a 10 GB frame: refused before any body arrives.
    with pytest.raises(WebSocketError) as info:
        FrameParser(max_message_bytes=100).feed(client_frame(2, b"", length=10 * 2**30)[:14])
    assert info.value.close_code == 1009
    with pytest.raises(WebSocketError) as info:
        FrameParser(max_message_bytes=100).feed(client_frame(1, b"", length=101)[:8])
    assert info.value.close_code == 1009
    frags = client_frame(1, b"x" * 60, fin=False) + client_frame(0, b"x" * 41)
    assert error_code(frags, 100) == 1009
    ok = client_frame(1, b"x" * 60, fin=False) + client_frame(0, b"x" * 40)
    assert parse(ok, 100) == [TextMessage("x" * 100)]


def test_error_is_sticky_and_keeps_earlier_events() -> None:
    parser = FrameParser(max_message_bytes=1000)
    with pytest.raises(WebSocketError) as info:
        parser.feed(client_frame(1, b"ok") + client_frame(1, b"a", masked=False))
    assert info.value.events == [TextMessage("ok")]
    with pytest.raises(WebSocketError):
        parser.feed(client_frame(1, b"ok"))


def test_server_frames() -> None:
    assert frame_text(b"hi") == b"\x81\x02hi"
    assert frame_binary(b"\x00") == b"\x82\x01\x00"
    assert frame_ping() == b"\x89\x00"
    assert frame_ping(b"a") == b"\x89\x01a"
    assert frame_pong(b"a") == b"\x8a\x01a"
    assert frame_close() == b"\x88\x02\x03\xe8"
    assert frame_close(1009, "big") == b"\x88\x05\x03\xf1big"
    assert frame_close(None) == b"\x88\x00"
    long_close = frame_close(1000, "é" * 100)
    assert len(long_close) <= 127 and long_close[2:4] == b"\x03\xe8"
    long_close[4:].decode()
    assert frame_binary(b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert frame_binary(b"x" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")
