"""The common-request handshake reader against wsproto: same request, same answer, same refusals.

Whatever :func:`parse_upgrade` takes, wsproto takes too, with the same target, host and headers,
and answers it with the same bytes; whatever wsproto refuses, it passes on (None).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.utilities import RemoteProtocolError

from protocol.websocket_handshake import accept_response, parse_upgrade

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COMMON = [
    (b"Host", b"127.0.0.1:8000"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"Sec-WebSocket-Version", b"13"),
]


def _head(request_line: bytes, headers: list[tuple[bytes, bytes]], sep: bytes = b": ") -> bytes:
    lines = [request_line, *(name + sep + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _wsproto(head: bytes) -> tuple[Request, bytes] | None:
    conn = WSConnection(ConnectionType.SERVER)
    try:
        conn.receive_data(head)
        requests = [e for e in conn.events() if isinstance(e, Request)]
    except RemoteProtocolError:
        return None
    if not requests:
        return None
    return requests[-1], conn.send(AcceptConnection())


def _check(head: bytes) -> None:
    ours = parse_upgrade(head)
    if ours is None:
        return
    theirs = _wsproto(head)
    assert theirs is not None, head
    request, answer = theirs
    assert (ours.target, ours.host, ours.headers) == (
        request.target,
        request.host,
        list(request.extra_headers),
    )
    assert accept_response(ours.key) == answer


names = st.sampled_from(
    [
        b"Host",
        b"host",
        b"Upgrade",
        b"Connection",
        b"Sec-WebSocket-Key",
        b"Sec-WebSocket-Version",
        b"Sec-WebSocket-Extensions",
        b"Sec-WebSocket-Protocol",
        b"Origin",
        b"User-Agent",
        b"Content-Length",
        b"Transfer-Encoding",
        b"X Bad",
        b"",
    ]
)
values = st.sampled_from(
    [
        b"websocket",
        b"WebSocket",
        b"Upgrade",
        b"keep-alive, Upgrade",
        b"upgrade ,x",
        b"13",
        b"8",
        b"",
        b"  padded  ",
        b"a\tb",
        b"caf\xc3\xa9",
        b"\x01",
        b"dGhlIHNhbXBsZSBub25jZQ==",
        b"127.0.0.1:8000",
        b"xn--bcher-kva.example",
        b"0",
        b"permessage-deflate; client_max_window_bits",
    ]
) | st.binary(max_size=12)
request_lines = st.sampled_from(
    [
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
        b"GET / HTTP/1.1",
        b"GET /a#b?c HTTP/1.1",
        b"POST / HTTP/1.1",
        b"GET / HTTP/1.0",
        b"GET  / HTTP/1.1",
        b"GET /\x7f HTTP/1.1",
    ]
)


@SETTINGS
@given(
    request_lines,
    st.lists(st.tuples(names, values), max_size=4),
    st.permutations(COMMON),
    st.sampled_from([b": ", b":", b":\t", b" : "]),
)
def test_handshake_reads_as_wsproto(
    line: bytes, extra: list[tuple[bytes, bytes]], common: list[tuple[bytes, bytes]], sep: bytes
) -> None:
    head = _head(line, [*common, *extra], sep)
    _check(head)
    if not extra and line.startswith(b"GET /socket.io/") and sep in (b": ", b":"):
        assert parse_upgrade(head) is not None  # the common request takes the fast path


@SETTINGS
@given(st.lists(st.tuples(names, values), max_size=8), request_lines)
def test_handshake_on_random_headers(headers: list[tuple[bytes, bytes]], line: bytes) -> None:
    _check(_head(line, headers))


@SETTINGS
@given(st.binary(max_size=200))
def test_handshake_on_any_bytes(noise: bytes) -> None:
    _check(noise)
    _check(_head(b"GET / HTTP/1.1", COMMON)[:-2] + noise + b"\r\n\r\n")


@pytest.mark.parametrize(
    "drop", [b"Host", b"Upgrade", b"Connection", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version"]
)
def test_handshake_passes_on_a_missing_header(drop: bytes) -> None:
    head = _head(b"GET / HTTP/1.1", [h for h in COMMON if h[0] != drop])
    assert parse_upgrade(head) is None


def test_handshake_passes_on_a_repeated_header() -> None:
    assert parse_upgrade(_head(b"GET / HTTP/1.1", [*COMMON, (b"host", b"other")])) is None


def test_handshake_drops_what_wsproto_drops() -> None:
    head = _head(
        b"GET / HTTP/1.1",
        [*COMMON, (b"Sec-WebSocket-Extensions", b"permessage-deflate"), (b"Origin", b"x")],
    )
    upgrade = parse_upgrade(head)
    assert upgrade is not None
    assert (b"origin", b"x") in upgrade.headers
    assert all(name != b"sec-websocket-extensions" for name, _ in upgrade.headers)
    _check(head)
