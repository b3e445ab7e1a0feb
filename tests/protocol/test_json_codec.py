import pytest

from protocol.errors import ProtocolError
from protocol.json_codec import decode_json, encode_json


def test_encode_compact_keeps_key_order() -> None:
    assert encode_json({"b": 1, "a": [True, None, "x"]}) == b'{"b":1,"a":[true,null,"x"]}'


def test_encode_unicode_raw() -> None:
    assert encode_json("é") == '"é"'.encode()


@pytest.mark.parametrize("data", ['{"a":[1,2.5,"x"]}', b'{"a":[1,2.5,"x"]}'])
def test_decode_str_and_bytes(data: str | bytes) -> None:
    assert decode_json(data) == {"a": [1, 2.5, "x"]}


@pytest.mark.parametrize(
    "bad",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "[1] x",
        "",
        "[1,]",
        "{'a':1}",
        "1e999",
        '"\\ud800"',
        "\ud800",
        b"\xff",
        "[",
        "{}}",
    ],
)
def test_decode_invalid(bad: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_json(bad)


def test_depth_limit_exact() -> None:
    assert decode_json("[" * 32 + "]" * 32) is not None
    with pytest.raises(ProtocolError, match="deep"):
        decode_json("[" * 33 + "]" * 33)
    with pytest.raises(ProtocolError):
        decode_json('{"a":' * 33 + "1" + "}" * 33)
    assert decode_json("[" * 5 + "]" * 5, max_depth=5) == [[[[[]]]]]
    with pytest.raises(ProtocolError):
        decode_json("[" * 5 + "]" * 5, max_depth=4)


def test_huge_depth_is_protocol_error_not_recursion() -> None:
    for n in (1000, 100_000):
        with pytest.raises(ProtocolError):
            decode_json("[" * n + "]" * n)
        with pytest.raises(ProtocolError):
            decode_json(b"[" * n)


def test_brackets_in_strings_and_wide_documents_are_fine() -> None:
    assert decode_json('["' + "[" * 100 + '"]') == ["[" * 100]
    wide = "[" + ",".join(["[[1]]"] * 500) + "]"
    assert len(decode_json(wide)) == 500
