"""Property tests: encoders round-trip through decoders; decoders only raise ProtocolError."""

import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import engineio, socketio, websocket
from protocol.errors import ProtocolError
from protocol.json_codec import decode_json, encode_json

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12,
)
# Values that may carry binary data, as a server would emit them.
bin_values = st.recursive(
    json_scalars | st.binary(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12,
)
event_names = st.text(min_size=0).filter(lambda s: s not in socketio.RESERVED_EVENTS)
namespaces = st.just("/") | st.text(
    alphabet=st.characters(
        min_codepoint=0x20, blacklist_characters=",\x7f", blacklist_categories=("Cs",)
    ),
    max_size=20,
).map(lambda s: "/" + s)
ack_ids = st.none() | st.integers(min_value=0, max_value=2**53 - 1)


def _decode_sio(text: bytes, attachments: list[bytes]) -> socketio.Packet:
    # Generated values may hold more than the default 10 buffers.
    dec = socketio.PacketDecoder(socketio.Limits(max_attachments=1000, max_depth=100))
    packet = dec.feed_text(text.decode())
    for a in attachments:
        assert packet is None
        packet = dec.feed_binary(a)
    assert packet is not None
    return packet


# ---------------------------------------------------------------- JSON


@SETTINGS
@given(json_values)
def test_json_round_trip(value: Any) -> None:
    assert decode_json(encode_json(value), max_depth=100) == value


@SETTINGS
@given(st.text() | st.binary())
def test_json_decode_only_protocol_error(data: str | bytes) -> None:
    try:
        decode_json(data)
    except ProtocolError:
        pass


# ---------------------------------------------------------------- Engine.IO


@SETTINGS
@given(st.sampled_from(list(engineio.PacketType)), st.text())
def test_eio_packet_round_trip(ptype: engineio.PacketType, data: str) -> None:
    encoded = engineio.encode_packet(ptype, data)
    assert engineio.decode_packet(encoded.decode()) == engineio.Packet(ptype, data)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(engineio.PacketType)),
            st.text().filter(lambda s: engineio.RECORD_SEPARATOR not in s),
        )
        | st.binary(max_size=50),
        min_size=1,
        max_size=10,
    )
)
def test_eio_payload_round_trip(items: list[Any]) -> None:
    encoded: list[bytes] = []
    expected: list[engineio.Packet] = []
    for item in items:
        if isinstance(item, bytes):
            encoded.append(engineio.BinaryMessage(item))
            expected.append(engineio.Packet(engineio.PacketType.MESSAGE, item))
        else:
            encoded.append(engineio.encode_packet(*item))
            expected.append(engineio.Packet(*item))
    assert engineio.decode_payload(engineio.encode_payload(encoded)) == expected


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_eio_decoders_only_protocol_error(data: bytes) -> None:
    for fn in (engineio.decode_payload, engineio.decode_packet):
        try:
            fn(data)
        except ProtocolError:
            pass
    try:
        engineio.decode_packet(data.decode(errors="replace"))
    except ProtocolError:
        pass


@SETTINGS
@given(
    st.text(max_size=5),
    st.dictionaries(st.sampled_from(["EIO", "transport", "sid", "x"]), st.text(max_size=10)),
    st.booleans(),
)
def test_check_request_only_request_error(method: str, query: dict[str, str], up: bool) -> None:
    try:
        engineio.check_request(method, query, websocket_upgrade=up)
    except engineio.RequestError as err:
        assert err.status in (400, 403)


# ---------------------------------------------------------------- Socket.IO


@SETTINGS
@given(namespaces, event_names, st.lists(bin_values, max_size=5), ack_ids)
def test_sio_event_round_trip(nsp: str, name: str, args: list[Any], ack: int | None) -> None:
    text, atts = socketio.encode_event(nsp, [name, *args], ack)
    packet = _decode_sio(text, atts)
    assert packet.namespace == nsp and packet.id == ack
    assert packet.data == [name, *args]
    assert packet.type is (socketio.PacketType.BINARY_EVENT if atts else socketio.PacketType.EVENT)
    via_packet = socketio.encode_packet(
        socketio.Packet(socketio.PacketType.EVENT, nsp, [name, *args], ack)
    )
    assert via_packet == (text, atts)


@SETTINGS
@given(namespaces, st.lists(bin_values, max_size=5), st.integers(0, 2**53 - 1))
def test_sio_ack_round_trip(nsp: str, args: list[Any], ack: int) -> None:
    text, atts = socketio.encode_ack(nsp, ack, args)
    packet = _decode_sio(text, atts)
    assert (packet.namespace, packet.id, packet.data) == (nsp, ack, args)
    assert packet.type is (socketio.PacketType.BINARY_ACK if atts else socketio.PacketType.ACK)


@SETTINGS
@given(
    namespaces,
    st.one_of(
        st.tuples(
            st.just(socketio.PacketType.CONNECT),
            st.none() | st.dictionaries(st.text(), json_values, max_size=4),
        ),
        st.tuples(st.just(socketio.PacketType.DISCONNECT), st.none()),
        st.tuples(
            st.just(socketio.PacketType.CONNECT_ERROR),
            st.text() | st.dictionaries(st.text(), json_values, max_size=4),
        ),
    ),
)
def test_sio_other_packets_round_trip(nsp: str, kind: tuple[socketio.PacketType, Any]) -> None:
    packet = socketio.Packet(kind[0], nsp, kind[1])
    text, atts = socketio.encode_packet(packet)
    assert atts == []
    assert _decode_sio(text, []) == packet


@SETTINGS
@given(st.text(max_size=200), st.lists(st.binary(max_size=10), max_size=4))
def test_sio_decoder_only_protocol_error(text: str, binaries: list[bytes]) -> None:
    dec = socketio.PacketDecoder()
    for step in [text, *binaries]:
        try:
            if isinstance(step, str):
                dec.feed_text(step)
            else:
                dec.feed_binary(step)
        except ProtocolError:
            pass


sio_prefixes = st.sampled_from(["0", "1", "2", "3", "4", "51-", "52-", "61-", "2/x,", "31"])


@SETTINGS
@given(sio_prefixes, json_values.map(lambda v: encode_json(v).decode()), st.text(max_size=5))
def test_sio_decoder_structured_fuzz(prefix: str, body: str, tail: str) -> None:
    dec = socketio.PacketDecoder()
    try:
        dec.feed_text(prefix + body + tail)
        while dec.awaiting_attachments:
            dec.feed_binary(b"x")
    except ProtocolError:
        pass


# ---------------------------------------------------------------- WebSocket


def _client_frame(opcode: int, payload: bytes, fin: bool, key: bytes) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0xFE, n)
    else:
        head = struct.pack("!BBQ", b0, 0xFF, n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


ws_messages = st.lists(
    st.one_of(
        st.text(max_size=300).map(websocket.TextMessage),
        st.binary(max_size=300).map(websocket.BinaryMessage),
        st.binary(max_size=125).map(websocket.Ping),
        st.binary(max_size=125).map(websocket.Pong),
    ),
    max_size=8,
)


@SETTINGS
@given(ws_messages, st.data())
def test_ws_round_trip_with_fragments_and_chunks(events: list[Any], data: st.DataObject) -> None:
    wire = b""
    for ev in events:
        key = os.urandom(4)
        if isinstance(ev, websocket.Ping | websocket.Pong):
            op = 9 if isinstance(ev, websocket.Ping) else 10
            wire += _client_frame(op, ev.payload, True, key)
            continue
        raw = ev.data.encode() if isinstance(ev, websocket.TextMessage) else ev.data
        opcode = 1 if isinstance(ev, websocket.TextMessage) else 2
        cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=3)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for i, piece in enumerate(pieces):
            wire += _client_frame(opcode if i == 0 else 0, piece, i == len(pieces) - 1, key)
    parser = websocket.FrameParser(max_message_bytes=10_000)
    got: list[Any] = []
    pos = 0
    while pos < len(wire):
        step = data.draw(st.integers(1, 64))
        got += parser.feed(wire[pos : pos + step])
        pos += step
    assert got == events


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_ws_parser_only_protocol_error(chunks: list[bytes]) -> None:
    parser = websocket.FrameParser(max_message_bytes=100)
    for chunk in chunks:
        try:
            parser.feed(chunk)
        except websocket.WebSocketError as err:
            assert err.close_code in (1002, 1007, 1009)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 15), st.booleans(), st.binary(max_size=140)), max_size=6))
def test_ws_parser_random_masked_frames(frames: list[tuple[int, bool, bytes]]) -> None:
    wire = b"".join(_client_frame(op, p, fin, b"\x01\x02\x03\x04") for op, fin, p in frames)
    try:
        websocket.FrameParser(max_message_bytes=200).feed(wire)
    except websocket.WebSocketError as err:
        assert err.close_code in (1002, 1007, 1009)


@SETTINGS
@given(st.binary(max_size=70_000))
def test_ws_server_frames_parse_back(payload: bytes) -> None:
    frame = websocket.frame_binary(payload)
    # Re-mask the server frame so the (client-frame) parser accepts it.
    b1 = frame[1]
    head_len = 2 + (2 if b1 == 126 else 8 if b1 == 127 else 0)
    masked = frame[:1] + bytes((frame[1] | 0x80,)) + frame[2:head_len] + b"\0\0\0\0"
    got = websocket.FrameParser(max_message_bytes=1 << 20).feed(masked + frame[head_len:])
    assert got == [websocket.BinaryMessage(payload)]
