"""The MessagePack parser: byte for byte what socket.io-msgpack-parser 3.x writes (bytes made by
its own encoder), round trips, and garbage only ever raises the protocol error."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import msgpack_parser
from protocol.errors import ProtocolError
from protocol.socketio import RESERVED_EVENTS, Limits, Packet, PacketType

LIMITS = Limits()

# new Encoder().encode(packet)[0] in Node, for each packet below
NODE_BYTES = [
    (
        Packet(PacketType.EVENT, "/chat", ["news", {"n": 1, "s": "é", "f": 1.5}, b"\x01\x02\x03"]),
        "g6R0eXBlAqRkYXRhk6RuZXdzg6FuAaFzosOpoWbLP/gAAAAAAADEAwECA6Nuc3ClL2NoYXQ=",
    ),
    (Packet(PacketType.ACK, "/", [{"ok": True}], 7), "hKJpZAekdHlwZQOkZGF0YZGBom9rw6Nuc3ChLw=="),
    (Packet(PacketType.CONNECT, "/", {"sid": "abc"}), "g6R0eXBlAKRkYXRhgaNzaWSjYWJjo25zcKEv"),
    (
        Packet(PacketType.CONNECT_ERROR, "/x", {"message": "Invalid namespace"}),
        "g6R0eXBlBKRkYXRhgadtZXNzYWdlsUludmFsaWQgbmFtZXNwYWNlo25zcKIveA==",
    ),
    (Packet(PacketType.EVENT, "/", ["q", 1], 12), "hKR0eXBlAqRkYXRhkqFxAaJpZAyjbnNwoS8="),
    (Packet(PacketType.DISCONNECT, "/chat"), "gqR0eXBlAaNuc3ClL2NoYXQ="),
]


@pytest.mark.parametrize(("packet", "node"), NODE_BYTES)
def test_we_write_the_bytes_node_writes(packet: Packet, node: str) -> None:
    assert msgpack_parser.encode(packet) == base64.b64decode(node)


@pytest.mark.parametrize(("packet", "node"), NODE_BYTES)
def test_we_read_what_node_writes(packet: Packet, node: str) -> None:
    assert msgpack_parser.decode(base64.b64decode(node), LIMITS) == packet


@pytest.mark.parametrize(
    "wire",
    [
        {"type": 5, "nsp": "/", "data": []},  # no BINARY_* types
        {"type": 2, "nsp": "/"},  # an event needs data
        {"type": 2, "nsp": "/", "data": []},  # ... and a name
        {"type": 2, "nsp": "/", "data": [7]},
        {"type": 2, "nsp": "/", "data": ["connect"]},  # reserved
        {"type": 3, "nsp": "/", "data": []},  # an ack needs an id
        {"type": 1, "nsp": "/", "data": "x"},
        {"type": 0, "nsp": "/", "data": [1]},
        {"type": 2, "data": ["e"]},  # no namespace
        {"type": 2, "nsp": "chat", "data": ["e"]},
        {"type": 2, "nsp": "/", "data": ["e"], "id": -1},
        {"type": 2, "nsp": "/", "data": ["e", {1: "int key"}]},
        {"type": 2, "nsp": "/", "data": ["e", *[b"x"] * 11]},  # more binary values than allowed
        ["not", "a", "map"],
    ],
)
def test_invalid_packets_are_protocol_errors(wire: Any) -> None:
    with pytest.raises(ProtocolError):
        msgpack_parser.decode(msgspec.msgpack.encode(wire), LIMITS)


def test_nesting_is_limited_as_for_json() -> None:
    deep: Any = "x"
    for _ in range(LIMITS.max_depth + 1):
        deep = [deep]
    with pytest.raises(ProtocolError):
        msgpack_parser.decode(
            msgspec.msgpack.encode({"type": 2, "nsp": "/", "data": ["e", deep]}), LIMITS
        )


SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
JSONISH = st.recursive(
    SCALARS | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT_NAMES = st.text(min_size=1, max_size=20).filter(lambda s: s not in RESERVED_EVENTS)


@given(EVENT_NAMES, st.lists(JSONISH, max_size=4), st.none() | st.integers(0, 2**31))
def test_events_round_trip(event: str, args: list[Any], ack_id: int | None) -> None:
    packet = Packet(PacketType.EVENT, "/", [event, *args], ack_id)
    try:
        assert msgpack_parser.decode(msgpack_parser.encode(packet), LIMITS) == packet
    except ProtocolError:  # only when the value broke a limit (binary values, depth)
        pass


@given(st.binary(max_size=300))
def test_garbage_only_ever_raises_the_protocol_error(raw: bytes) -> None:
    try:
        msgpack_parser.decode(raw, LIMITS)
    except ProtocolError:
        pass
