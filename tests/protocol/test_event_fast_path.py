"""The one-pass EVENT decoder (``PacketDecoder.feed_event``) against the general one.

Whatever it accepts, :meth:`PacketDecoder.feed_text` decodes to the same namespace, ack id and
arguments; whatever ``feed_text`` refuses, it refuses too (returns None, so the general path
refuses it with its own error). It may also pass on what ``feed_text`` accepts (a namespace with a
query, whitespace before the JSON): those take the general path.
"""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import socketio
from protocol.errors import ProtocolError
from protocol.json_codec import encode_json

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = socketio.Limits(max_depth=8, max_ack_id=10**12, max_namespace_length=12)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=20,
)
event_names = st.sampled_from(["echo", "a,b", "[", "connect", "disconnect", "", "x"]) | st.text(
    max_size=6
)
namespaces = st.sampled_from(["", "/", "/chat", "/a?b=1", "/x\x01", "/" + "n" * 12, "/" + "n" * 11])
ack_ids = st.sampled_from(
    ["", "0", "7", "0012", "10" * 6, "1" * 13, "1" * 16, "1" * 17, "٣", "²", " 1", "1a", "-1"]
)
# The pieces of a packet, each valid or not, put together: "2" + nsp + "," + id + JSON.
type_chars = st.sampled_from(["2", "2", "2", "3", "5", "0", "", "22"])
separators = st.sampled_from([",", ",", "", ";"])


def _general(text: str) -> tuple[str, int | None, list[Any]] | None:
    """feed_text's answer as feed_event's tuple; None where it refuses or it is not an EVENT."""
    try:
        packet = socketio.PacketDecoder(LIMITS).feed_text(text)
    except ProtocolError:
        return None
    if packet is None or packet.type is not socketio.PacketType.EVENT:
        return None
    return packet.namespace, packet.id, packet.data


def _check(text: str) -> None:
    fast = socketio.PacketDecoder(LIMITS).feed_event(text)
    if fast is not None:
        assert fast == _general(text)
        assert type(fast[2]) is list


@SETTINGS
@given(type_chars, namespaces, separators, ack_ids, event_names, st.lists(json_values, max_size=3))
def test_fast_event_decodes_as_the_general_path(
    type_char: str, nsp: str, sep: str, ack: str, name: str, args: list[Any]
) -> None:
    body = encode_json([name, *args]).decode()
    text = type_char + (nsp + sep if nsp else "") + ack + body
    _check(text)
    general = _general(text)
    if general is not None and "?" not in general[0]:  # the common form: it takes it
        assert socketio.PacketDecoder(LIMITS).feed_event(text) == general


@SETTINGS
@given(st.text(max_size=40))
def test_fast_event_on_any_text(text: str) -> None:
    _check(text)
    _check("2" + text)
    _check("21[" + text)


@SETTINGS
@given(st.text(alphabet='2/,0123456789[]{}"ab \\', max_size=30))
def test_fast_event_on_packet_like_text(text: str) -> None:
    _check(text)


@SETTINGS
@given(st.integers(min_value=1, max_value=20))
def test_fast_event_keeps_the_depth_limit(depth: int) -> None:
    text = "21" + "[" * depth + '"e"' + "]" * depth
    _check(text)
    if depth > LIMITS.max_depth:
        assert socketio.PacketDecoder(LIMITS).feed_event(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('2["echo",1]', ("/", None, ["echo", 1])),
        ('212["echo",{"a":1}]', ("/", 12, ["echo", {"a": 1}])),
        ('2/chat,3["m"]', ("/chat", 3, ["m"])),
        ('2/chat,["m"]', ("/chat", None, ["m"])),
        ('2/,5["m"]', ("/", 5, ["m"])),
    ],
)
def test_fast_event_common_forms(text: str, expected: tuple[str, int | None, list[Any]]) -> None:
    assert socketio.PacketDecoder(LIMITS).feed_event(text) == expected
    assert _general(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '2["connect"]',  # reserved name
        "2[1]",  # event name not a string
        "2[]",  # no event name
        '2{"a":1}',  # not a list
        '21["a",]',  # bad JSON
        "2" + "1" * 17 + '["a"]',  # ack id too long
        "2" + str(10**12 + 1) + '["a"]',  # ack id over the limit
        "2/" + "n" * 13 + ',["a"]',  # namespace too long
        '2/a\x01,["a"]',  # control character in the namespace
        '2٣["a"]',  # a digit that is not ASCII
        '2/chat["a"]',  # no comma after the namespace
        '3["a"]',  # an ACK
        '51-["a",{"_placeholder":true,"num":0}]',  # binary
        '2/a?x=1,["a"]',  # a query: the general path decides
    ],
)
def test_fast_event_passes_on(text: str) -> None:
    assert socketio.PacketDecoder(LIMITS).feed_event(text) is None


def test_fast_event_waits_for_pending_attachments() -> None:
    decoder = socketio.PacketDecoder(LIMITS)
    assert decoder.feed_text('51-["a",{"_placeholder":true,"num":0}]') is None
    assert decoder.feed_event('2["a"]') is None  # the general path refuses it: attachments due
    with pytest.raises(ProtocolError):
        decoder.feed_text('2["a"]')
