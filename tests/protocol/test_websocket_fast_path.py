"""The parser's shortcut for a read that is one whole small text frame, against its general path.

The same frame fed in two pieces takes the general path (buffered); both must give the same
events, or the same error, and leave the parser in the same state.
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import websocket

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _frame(b0: int, payload: bytes, mask: bytes, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    masked = bytes(a ^ b for a, b in zip(payload, key, strict=True))
    return bytes((b0, 0x80 | n)) + mask + masked


def _outcome(chunks: list[bytes], max_bytes: int) -> tuple[object, ...]:
    parser = websocket.FrameParser(max_message_bytes=max_bytes)
    events: list[object] = []
    try:
        for chunk in chunks:
            events += parser.feed(chunk)
        events.append("then")  # what the parser makes of the next frame tells its state
        events += parser.feed(_frame(0x81, b"42", b"abcd"))
    except websocket.WebSocketError as err:
        return ("error", err.close_code, str(err), events)
    return ("ok", events)


@SETTINGS
@given(
    st.binary(max_size=130) | st.text(max_size=40).map(str.encode),
    st.binary(min_size=4, max_size=4),
    st.sampled_from([0x81, 0x82, 0x01, 0x89, 0xC1]),
    st.integers(min_value=1, max_value=200),
)
def test_single_frame_read_as_general_path(payload: bytes, mask: bytes, b0: int, cap: int) -> None:
    if len(payload) > 125:
        payload = payload[:125]
    frame = _frame(b0, payload, mask)
    assert _outcome([frame], cap) == _outcome([frame[:1], frame[1:]], cap)


@SETTINGS
@given(st.binary(min_size=2, max_size=140))
def test_any_read_as_general_path(data: bytes) -> None:
    assert _outcome([data], 100) == _outcome([data[:1], data[1:]], 100)


def test_unmasked_and_wrong_length_frames_take_the_general_path() -> None:
    payload = b'42["a"]'
    unmasked = bytes((0x81, len(payload))) + os.urandom(4) + payload
    assert _outcome([unmasked], 100)[0] == "error"
    short = _frame(0x81, payload, b"abcd", length=len(payload) + 1)  # one byte missing
    assert _outcome([short], 100) == _outcome([short[:1], short[1:]], 100)
