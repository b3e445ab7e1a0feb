"""The Redis adapter's wire format, against bytes Node's own encoder (notepack.io) produced."""

from __future__ import annotations

import base64

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.redis_adapter import (
    Channels,
    Flags,
    Request,
    RequestType,
    broadcast_channel,
    decode_broadcast,
    decode_request,
    encode_broadcast,
    encode_request,
)

# msgpack.encode(["abc123", {type: 2, data: ["news", {n: 1, s: "é"}, Buffer.from([1, 2, 3])],
#   nsp: "/chat"}, {rooms: ["r1"], except: ["sid1"], flags: {volatile: true}}])
NODE_BROADCAST = base64.b64decode(
    "k6ZhYmMxMjODpHR5cGUCpGRhdGGTpG5ld3OCoW4BoXOiw6nEAwECA6Nuc3ClL2NoYXSDpXJvb21zkaJyMaZleGNlcHSRpH"
    "NpZDGlZmxhZ3OBqHZvbGF0aWxlww=="
)
# the emitter: ["emitter", {type: 2, data: ["hi", 1.5, null, true], nsp: "/"}, {rooms: [], ...}]
EMITTER_BROADCAST = base64.b64decode(
    "k6dlbWl0dGVyg6R0eXBlAqRkYXRhlKJoacs/+AAAAAAAAMDDo25zcKEvg6Vyb29tc5ClZmxhZ3OApmV4Y2VwdJA="
)
# a BROADCAST (with ack) request: {uid, requestId, type: 7, packet, opts: {flags: {timeout}}}
NODE_BROADCAST_REQUEST = base64.b64decode(
    "haN1aWSmeHl6Nzg5qXJlcXVlc3RJZKZyZXEwMDGkdHlwZQemcGFja2V0g6R0eXBlAqRkYXRhkaRwaW5no25zcKEvpG9w"
    "dHODpXJvb21zkKZleGNlcHSQpWZsYWdzgad0aW1lb3V0zQPo"
)


def test_channels_are_named_as_the_node_adapter_names_them() -> None:
    c = Channels("socket.io", "/chat")
    assert c.broadcast == "socket.io#/chat#"
    assert c.pattern == "socket.io#/chat#*"
    assert c.room("r1") == "socket.io#/chat#r1#"
    assert c.request == "socket.io-request#/chat#"
    assert c.response == "socket.io-response#/chat#"
    assert c.specific_response("abc123") == "socket.io-response#/chat#abc123#"
    assert c.room_of("socket.io#/chat#r1#") == "r1"
    assert c.room_of("socket.io#/chat#") == ""
    assert c.room_of("socket.io#/other#r1#") is None
    assert broadcast_channel(c, ("r1",)) == c.room("r1")
    assert broadcast_channel(c, ("r1", "r2")) == broadcast_channel(c, ()) == c.broadcast


def test_a_node_broadcast_decodes_with_its_binary_argument() -> None:
    b = decode_broadcast(NODE_BROADCAST)
    assert (b.uid, b.namespace) == ("abc123", "/chat")
    assert b.data == ["news", {"n": 1, "s": "é"}, b"\x01\x02\x03"]
    assert b.rooms == ("r1",)
    assert b.except_rooms == frozenset({"sid1"})
    assert b.volatile


def test_an_emitter_broadcast_decodes() -> None:
    b = decode_broadcast(EMITTER_BROADCAST)
    assert (b.uid, b.namespace, b.data, b.rooms) == ("emitter", "/", ["hi", 1.5, None, True], ())
    assert not b.volatile


def test_our_broadcast_is_what_node_would_decode() -> None:
    raw = encode_broadcast(
        "abc123",
        "/chat",
        ["news", {"n": 1, "s": "é"}, b"\x01\x02\x03"],
        ("r1",),
        frozenset({"sid1"}),
        Flags(volatile=True),
    )
    assert msgspec.msgpack.decode(raw) == msgspec.msgpack.decode(NODE_BROADCAST)


def test_requests_are_json_or_msgpack_by_their_first_byte() -> None:
    request = decode_request(b'{"uid":"n1","requestId":"r1","type":5,"opts":{"rooms":["a"]}}')
    assert request.type == RequestType.REMOTE_FETCH
    assert request.opts is not None and request.opts.rooms == ["a"]
    ack = decode_request(NODE_BROADCAST_REQUEST)
    assert (ack.type, ack.uid, ack.requestId) == (RequestType.BROADCAST, "xyz789", "req001")
    assert ack.opts is not None and ack.opts.flags == Flags(timeout=1000.0)
    assert ack.packet == {"type": 2, "data": ["ping"], "nsp": "/"}


def test_responses_travel_as_node_sends_them() -> None:
    count = Request(type=RequestType.BROADCAST_CLIENT_COUNT, requestId="r1", clientCount=3)
    assert encode_request(count) == b'{"type":8,"requestId":"r1","clientCount":3}'
    answer = Request(type=RequestType.BROADCAST_ACK, requestId="r1", packet=["pong", b"\x00"])
    assert encode_request(answer)[:1] != b"{"  # msgpack, binary kept
    assert decode_request(encode_request(answer)).packet == ["pong", b"\x00"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x93",  # a truncated array
        msgspec.msgpack.encode(["uid", {"type": 0, "nsp": "/"}, {}]),  # a CONNECT, not an event
        msgspec.msgpack.encode(["uid", {"type": 2, "data": []}, {}]),  # no event name
        msgspec.msgpack.encode(["uid", {"type": 2, "data": [7]}, {}]),  # a numeric name
        msgspec.msgpack.encode(["uid", {"type": 2, "data": ["e"]}, {"rooms": [True]}]),
        msgspec.msgpack.encode({"not": "an array"}),
    ],
)
def test_a_foreign_message_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_broadcast(raw)


@given(st.binary(max_size=200))
def test_garbage_only_ever_raises_the_protocol_error(raw: bytes) -> None:
    for decode in (decode_broadcast, decode_request):
        try:
            decode(raw)
        except ProtocolError:
            pass
