import base64
import json

import pytest

from protocol.engineio import (
    ERROR_MESSAGES,
    BinaryMessage,
    EngineRequest,
    ErrorCode,
    Packet,
    PacketType,
    RequestError,
    check_protocol_version,
    check_request,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    new_sid,
    open_packet,
)
from protocol.errors import ProtocolError


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("4hello", Packet(PacketType.MESSAGE, "hello")),
        ("2probe", Packet(PacketType.PING, "probe")),
        ("2", Packet(PacketType.PING)),
        ("3", Packet(PacketType.PONG, "")),
        ("5", Packet(PacketType.UPGRADE)),
        ("1", Packet(PacketType.CLOSE)),
        ("6", Packet(PacketType.NOOP)),
        ('42["a"]', Packet(PacketType.MESSAGE, '2["a"]')),
        ("4", Packet(PacketType.MESSAGE, "")),
        (b"\x01\x02", Packet(PacketType.MESSAGE, b"\x01\x02")),
        (b"", Packet(PacketType.MESSAGE, b"")),
        ("bAQID", Packet(PacketType.MESSAGE, b"\x01\x02\x03")),
    ],
)
def test_decode_packet(message: str | bytes, expected: Packet) -> None:
    assert decode_packet(message) == expected


@pytest.mark.parametrize("bad", ["", "7", "x", "abc", " 4", "b!!!", "bAQI"])
def test_decode_packet_invalid(bad: str) -> None:
    with pytest.raises(ProtocolError):
        decode_packet(bad)


def test_encode_packet() -> None:
    assert encode_packet(PacketType.PONG, "probe") == b"3probe"
    assert encode_packet(PacketType.PING) == b"2"
    assert encode_packet(PacketType.NOOP) == b"6"
    assert encode_packet(PacketType.MESSAGE, "é") == "4é".encode()


def test_decode_payload() -> None:
    body = b'2\x1e42["a"]\x1ebAQID\x1e3probe'
    assert decode_payload(body) == [
        Packet(PacketType.PING),
        Packet(PacketType.MESSAGE, '2["a"]'),
        Packet(PacketType.MESSAGE, b"\x01\x02\x03"),
        Packet(PacketType.PONG, "probe"),
    ]
    assert decode_payload(b"1") == [Packet(PacketType.CLOSE)]
    assert decode_payload("4é".encode()) == [Packet(PacketType.MESSAGE, "é")]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x1e",
        b"4a\x1e",
        b"\x1e4a",
        b"4a\x1e\x1e4b",
        b"9",
        b"4\xff",
        b"b@@@",
        b"babc",
        b"b\xc3\xa9",
    ],
)
def test_decode_payload_invalid(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_payload(bad)


def test_decode_payload_max_packets() -> None:
    assert len(decode_payload(b"\x1e".join([b"2"] * 3), max_packets=3)) == 3
    with pytest.raises(ProtocolError):
        decode_payload(b"\x1e".join([b"2"] * 4), max_packets=3)


def test_encode_payload() -> None:
    assert encode_payload([b'42["a"]']) == b'42["a"]'
    assert encode_payload([b"2", BinaryMessage(b"\x01\x02\x03"), b"6"]) == b"2\x1ebAQID\x1e6"
    assert encode_payload([BinaryMessage(b"")]) == b"b"
    assert encode_payload([]) == b""


def test_open_packet_exact() -> None:
    assert open_packet(
        "abc",
        upgrades=["websocket"],
        ping_interval_ms=300,
        ping_timeout_ms=200,
        max_payload=1_000_000,
    ) == (
        b'0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,'
        b'"maxPayload":1000000}'
    )
    assert b'"upgrades":[]' in open_packet(
        "x", upgrades=(), ping_interval_ms=1, ping_timeout_ms=1, max_payload=1
    )


def test_error_messages_and_body() -> None:
    assert [ERROR_MESSAGES[c] for c in ErrorCode] == [
        "Transport unknown",
        "Session ID unknown",
        "Bad handshake method",
        "Bad request",
        "Forbidden",
        "Unsupported protocol version",
    ]
    err = RequestError(ErrorCode.UNKNOWN_TRANSPORT)
    assert err.status == 400
    assert err.body() == b'{"code":0,"message":"Transport unknown"}'
    forbidden = RequestError(ErrorCode.FORBIDDEN, "go away")
    assert forbidden.status == 403
    assert json.loads(forbidden.body()) == {"code": 4, "message": "go away"}


def _code(method: str, query: dict[str, str], upgrade: bool = False) -> ErrorCode:
    with pytest.raises(RequestError) as info:
        check_request(method, query, websocket_upgrade=upgrade)
    return info.value.code


def test_check_request_ok() -> None:
    q = {"EIO": "4", "transport": "polling"}
    assert check_request("GET", q, websocket_upgrade=False) == EngineRequest("polling", None)
    qw = {"EIO": "4", "transport": "websocket"}
    assert check_request("GET", qw, websocket_upgrade=True) == EngineRequest("websocket", None)
    qs = {"EIO": "4", "transport": "polling", "sid": "s1"}
    assert check_request("POST", qs, websocket_upgrade=False) == EngineRequest("polling", "s1")


def test_check_request_errors_in_node_order() -> None:
    U = ErrorCode
    assert _code("GET", {"EIO": "4"}) is U.UNKNOWN_TRANSPORT
    assert _code("GET", {"EIO": "4", "transport": "abc"}) is U.UNKNOWN_TRANSPORT
    assert _code("POST", {"EIO": "x", "transport": "abc"}) is U.UNKNOWN_TRANSPORT
    assert _code("GET", {"transport": "polling"}) is U.UNSUPPORTED_PROTOCOL_VERSION
    assert _code("GET", {"EIO": "abc", "transport": "polling"}) is U.UNSUPPORTED_PROTOCOL_VERSION
    assert _code("GET", {"EIO": "3", "transport": "polling"}) is U.UNSUPPORTED_PROTOCOL_VERSION
    assert _code("POST", {"EIO": "4", "transport": "polling"}) is U.BAD_HANDSHAKE_METHOD
    assert _code("PUT", {"EIO": "4", "transport": "polling", "sid": ""}) is U.BAD_HANDSHAKE_METHOD
    # Node: method before version, websocket-without-upgrade before version.
    assert _code("POST", {"EIO": "3", "transport": "polling"}) is U.BAD_HANDSHAKE_METHOD
    assert _code("GET", {"EIO": "4", "transport": "websocket"}) is U.BAD_REQUEST
    assert _code("GET", {"EIO": "3", "transport": "websocket"}) is U.BAD_REQUEST
    q3 = {"EIO": "3", "transport": "websocket"}
    assert _code("GET", q3, upgrade=True) is U.UNSUPPORTED_PROTOCOL_VERSION
    # With a sid nothing but the transport is checked here.
    req = check_request("GET", {"transport": "websocket", "sid": "s"}, websocket_upgrade=False)
    assert req == EngineRequest("websocket", "s")


def test_check_request_restricted_transports_and_deferred_version() -> None:
    with pytest.raises(RequestError) as info:
        check_request(
            "GET",
            {"EIO": "4", "transport": "websocket"},
            websocket_upgrade=True,
            transports=("polling",),
        )
    assert info.value.code is ErrorCode.UNKNOWN_TRANSPORT
    q = {"EIO": "3", "transport": "polling"}
    assert check_request("GET", q, websocket_upgrade=False, check_version=False).sid is None
    with pytest.raises(RequestError):
        check_protocol_version(q)


def test_new_sid() -> None:
    sids = {new_sid() for _ in range(100)}
    assert len(sids) == 100
    for sid in sids:
        assert len(sid) == 20
        assert base64.urlsafe_b64decode(sid)
        assert sid.replace("-", "").replace("_", "").isalnum()
