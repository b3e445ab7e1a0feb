from typing import Any

import pytest

from protocol.errors import ProtocolError
from protocol.socketio import (
    Limits,
    Packet,
    PacketDecoder,
    PacketType,
    encode_ack,
    encode_event,
    encode_packet,
)

P = PacketType


def decode(text: str, *attachments: bytes, limits: Limits | None = None) -> Packet:
    dec = PacketDecoder(limits or Limits())
    packet = dec.feed_text(text)
    if not attachments:
        assert packet is not None
        return packet
    assert packet is None and dec.awaiting_attachments
    for i, a in enumerate(attachments):
        packet = dec.feed_binary(a)
        assert (packet is None) == (i < len(attachments) - 1)
    assert packet is not None and not dec.awaiting_attachments
    return packet


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Packet(P.CONNECT)),
        ('0{"token":"123"}', Packet(P.CONNECT, "/", {"token": "123"})),
        ("0/custom,", Packet(P.CONNECT, "/custom")),
        ("0/custom", Packet(P.CONNECT, "/custom")),
        ('0/custom,{"token":"abc"}', Packet(P.CONNECT, "/custom", {"token": "abc"})),
        ("1", Packet(P.DISCONNECT)),
        ("1/custom,", Packet(P.DISCONNECT, "/custom")),
        (
            '2["message",1,"2",{"3":[true]}]',
            Packet(P.EVENT, "/", ["message", 1, "2", {"3": [True]}]),
        ),
        ('2456["a"]', Packet(P.EVENT, "/", ["a"], 456)),
        ('2/chat,7["a",null]', Packet(P.EVENT, "/chat", ["a", None], 7)),
        ('2/chat,["a"]', Packet(P.EVENT, "/chat", ["a"])),
        ("3456[]", Packet(P.ACK, "/", [], 456)),
        ('3/x,0["ok"]', Packet(P.ACK, "/x", ["ok"], 0)),
        ('4{"message":"no"}', Packet(P.CONNECT_ERROR, "/", {"message": "no"})),
        ('4/random,"Unable"', Packet(P.CONNECT_ERROR, "/random", "Unable")),
        (f'2{2**53 - 1}["a"]', Packet(P.EVENT, "/", ["a"], 2**53 - 1)),
        ('2["é \\u2028"]', Packet(P.EVENT, "/", ["é \u2028"])),
    ],
)
def test_decode_text(text: str, expected: Packet) -> None:
    assert decode(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "7",
        "abc",
        "9[]",
        ' 2["a"]',
        "2{}",
        "2[]",
        "2",
        '2"a"',
        "2[1]",
        "2[null]",
        '2[["a"]]',
        '2["connect"]',
        '2["disconnect",1]',
        '2["newListener"]',
        '2abc["a"]',
        '42["a"]',
        '2["a"] x',
        "3",
        '3["a"]',
        "3{}",
        '3/x,["a"]',
        "0[]",
        '0"x"',
        "01",
        "0null",
        "0/x,1",
        "1{}",
        "1[]",
        '1"x"',
        "11",
        "4",
        "4[]",
        "41",
        "4null",
        "2NaN",
        '2["a",NaN]',
        '2["a",Infinity]',
        f'2{2**53}["a"]',
        '212345678901234567["a"]',
        "5",
        '5-["a"]',
        '50-["a"]',
        '511-["a"]',
        '51["a"]',
        '5a-["a"]',
        '5-1-["a"]',
        "51-{}",
        "51-",
        "51-/x,",
        '61-["a"]',
        "51-1{}",
        "0/" + "a" * 128 + ",",
        "0/a\x00b,",
        "0/a\nb",
        '2/a\x7f,["a"]',
        '2["a",' + "[" * 32 + "]" * 32 + "]",
    ],
)
def test_decode_invalid(bad: str) -> None:
    with pytest.raises(ProtocolError):
        PacketDecoder().feed_text(bad)


def test_namespace_length_limit_is_inclusive() -> None:
    nsp = "/" + "a" * 127
    assert decode(f"0{nsp},").namespace == nsp


def test_depth_limit_counts_args_array() -> None:
    ok = '2["a",' + "[" * 30 + "]" * 30 + "]"
    assert decode(ok).data[0] == "a"


def test_limits_are_configurable() -> None:
    limits = Limits(max_attachments=2, max_depth=2, max_ack_id=99, max_namespace_length=3)
    assert decode("2/ab,99[[1]]".replace("[[1]]", '["a",[1]]'), limits=limits).id == 99
    for bad in ('2100["a"]', '2["a",[[1]]]', "0/abcd,", '53-["a"]'):
        with pytest.raises(ProtocolError):
            PacketDecoder(limits).feed_text(bad)


def test_binary_event() -> None:
    text = '52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    packet = decode(text, b"\x01\x02\x03", b"\x04\x05\x06")
    assert packet == Packet(P.BINARY_EVENT, "/", ["message", b"\x01\x02\x03", b"\x04\x05\x06"])


def test_binary_ack_nested_and_out_of_order() -> None:
    text = '62-/x,5[{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]'
    packet = decode(text, b"zero", b"one")
    assert packet == Packet(P.BINARY_ACK, "/x", [{"a": [b"one"]}, b"zero"], 5)


def test_binary_placeholder_like_dict_in_plain_event_is_left_alone() -> None:
    data = ["a", {"_placeholder": True, "num": 0}]
    assert decode('2["a",{"_placeholder":true,"num":0}]').data == data


def test_non_placeholder_dict_in_binary_event_is_kept() -> None:
    text = '51-["a",{"_placeholder":false,"num":0},{"_placeholder":true,"num":0}]'
    assert decode(text, b"x").data == ["a", {"_placeholder": False, "num": 0}, b"x"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ('51-["a",{"_placeholder":true,"num":1}]', 1),
        ('51-["a",{"_placeholder":true,"num":-1}]', 1),
        ('51-["a",{"_placeholder":true,"num":0.0}]', 1),
        ('51-["a",{"_placeholder":true,"num":"0"}]', 1),
        ('51-["a",{"_placeholder":true}]', 1),
        ('51-["a",{"_placeholder":true,"num":0,"x":1}]', 1),
        ('52-["a",{"_placeholder":true,"num":0}]', 2),
        ('51-["a"]', 1),
    ],
)
def test_binary_placeholder_mismatch(text: str, count: int) -> None:
    dec = PacketDecoder()
    assert dec.feed_text(text) is None
    for _ in range(count - 1):
        assert dec.feed_binary(b"x") is None
    with pytest.raises(ProtocolError):
        dec.feed_binary(b"x")


def test_decoder_state_errors() -> None:
    dec = PacketDecoder()
    with pytest.raises(ProtocolError):
        dec.feed_binary(b"x")
    assert dec.feed_text('51-["a",{"_placeholder":true,"num":0}]') is None
    with pytest.raises(ProtocolError):
        dec.feed_text('2["a"]')
    dec.reset()
    assert dec.feed_text('2["a"]') == Packet(P.EVENT, "/", ["a"])
    # The decoder is reusable after a completed binary packet.
    assert dec.feed_text('51-["a",{"_placeholder":true,"num":0}]') is None
    assert dec.feed_binary(b"1") == Packet(P.BINARY_EVENT, "/", ["a", b"1"])
    assert dec.feed_text('2["b"]') == Packet(P.EVENT, "/", ["b"])


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (Packet(P.CONNECT, "/", {"sid": "abc"}), b'0{"sid":"abc"}'),
        (Packet(P.CONNECT, "/x", {"sid": "abc"}), b'0/x,{"sid":"abc"}'),
        (Packet(P.CONNECT, "/x"), b"0/x,"),
        (Packet(P.DISCONNECT), b"1"),
        (Packet(P.DISCONNECT, "/x"), b"1/x,"),
        (Packet(P.EVENT, "/", ["auth", {}]), b'2["auth",{}]'),
        (Packet(P.EVENT, "/custom", ["auth", {}]), b'2/custom,["auth",{}]'),
        (Packet(P.EVENT, "/", ["a"], 12), b'212["a"]'),
        (Packet(P.ACK, "/", [1], 456), b"3456[1]"),
        (Packet(P.ACK, "/x", [], 0), b"3/x,0[]"),
        (
            Packet(P.CONNECT_ERROR, "/random", {"message": "Invalid namespace"}),
            b'4/random,{"message":"Invalid namespace"}',
        ),
        (Packet(P.CONNECT_ERROR, "/", "nope"), b'4"nope"'),
        (Packet(P.BINARY_EVENT, "/", ["a", 1]), b'2["a",1]'),
    ],
)
def test_encode_packet(packet: Packet, expected: bytes) -> None:
    assert encode_packet(packet) == (expected, [])


def test_encode_binary_exactly_like_socket_io_parser() -> None:
    data = ["message-back", b"\x01", {"k": [bytearray(b"\x02"), memoryview(b"\x03")]}]
    text, atts = encode_packet(Packet(P.EVENT, "/chat", data, 7))
    assert text == (
        b'53-/chat,7["message-back",{"_placeholder":true,"num":0},'
        b'{"k":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]}]'
    )
    assert atts == [b"\x01", b"\x02", b"\x03"]
    assert all(type(a) is bytes for a in atts)
    assert encode_packet(Packet(P.ACK, "/", (b"x",), 3)) == (
        b'61-3[{"_placeholder":true,"num":0}]',
        [b"x"],
    )


def test_encode_does_not_mutate_input() -> None:
    args: list[Any] = ["a", {"b": b"x"}]
    encode_event("/", args)
    assert args == ["a", {"b": b"x"}]


def test_encode_event_and_ack_fast_paths() -> None:
    assert encode_event("/", ["a", 1]) == (b'2["a",1]', [])
    assert encode_event("/", ("a", 1)) == (b'2["a",1]', [])
    assert encode_event("/x", ["a"], 5) == (b'2/x,5["a"]', [])
    assert encode_event("/", ["a", b"\x00"]) == (
        b'51-["a",{"_placeholder":true,"num":0}]',
        [b"\x00"],
    )
    assert encode_ack("/", 456, ["x"]) == (b'3456["x"]', [])
    assert encode_ack("/y", 1, [b"b"]) == (b'61-/y,1[{"_placeholder":true,"num":0}]', [b"b"])


def test_encode_matches_protocol_examples() -> None:
    text, atts = encode_event("/", ["message-back", b"\x01\x02\x03", b"\x04\x05\x06"])
    assert b"4" + text == (
        b'452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    )
    assert atts == [b"\x01\x02\x03", b"\x04\x05\x06"]
