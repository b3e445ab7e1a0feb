"""docs/protocol.md "Handshake" and the "Conformance server" configuration."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError

from tests.support.clients.raw import parse_open_packet

from .helpers import (
    AT_ONCE,
    EIO_PATH,
    SIO_PATH,
    Polling,
    check_handshake,
    eio_ws,
    ws_connect,
    ws_url,
)

# Node's exact error bodies (codes as in engine.io's Server.errors).
UNKNOWN_TRANSPORT = {"code": 0, "message": "Transport unknown"}
UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
BAD_HANDSHAKE_METHOD = {"code": 2, "message": "Bad handshake method"}
BAD_REQUEST = {"code": 3, "message": "Bad request"}
UNSUPPORTED_VERSION = {"code": 5, "message": "Unsupported protocol version"}


@pytest.mark.parametrize("path, mode", [(EIO_PATH, "engineio"), (SIO_PATH, "socketio")])
async def test_polling_handshake_exact_keys_and_values(
    http: httpx.AsyncClient, engineio_server: str, socketio_server: str, path: str, mode: str
) -> None:
    base = engineio_server if mode == "engineio" else socketio_server
    r = await http.get(base + path, params={"EIO": "4", "transport": "polling"})
    assert r.status_code == 200
    assert r.text.startswith('0{"sid":"'), r.text
    info = parse_open_packet(r.text)
    check_handshake(info, ["websocket"])
    # sub-second values are advertised exactly, in Node's key order
    sid = info["sid"]
    assert r.text == (
        '0{"sid":' + json.dumps(sid) + ',"upgrades":["websocket"],"pingInterval":300,'
        '"pingTimeout":200,"maxPayload":1000000}'
    )


async def test_handshake_sids_are_unique(http: httpx.AsyncClient, engineio_server: str) -> None:
    sids = set()
    for _ in range(5):
        p = Polling(http, engineio_server, EIO_PATH)
        sids.add((await p.handshake())["sid"])
    assert len(sids) == 5


@pytest.mark.parametrize("path, mode", [(EIO_PATH, "engineio"), (SIO_PATH, "socketio")])
async def test_websocket_handshake_first_frame(
    engineio_server: str, socketio_server: str, path: str, mode: str
) -> None:
    base = engineio_server if mode == "engineio" else socketio_server
    async with ws_connect(ws_url(base, path, "EIO=4&transport=websocket")) as ws:
        first = await ws.recv_raw()
        assert isinstance(first, str)
        info = parse_open_packet(first)
        check_handshake(info, [])
        assert first == (
            '0{"sid":' + json.dumps(info["sid"]) + ',"upgrades":[],"pingInterval":300,'
            '"pingTimeout":200,"maxPayload":1000000}'
        )


@pytest.mark.parametrize(
    "query, body",
    [
        pytest.param({"transport": "polling"}, UNSUPPORTED_VERSION, id="missing-EIO"),
        pytest.param({"EIO": "abc", "transport": "polling"}, UNSUPPORTED_VERSION, id="EIO-abc"),
        pytest.param({"EIO": "", "transport": "polling"}, UNSUPPORTED_VERSION, id="EIO-empty"),
        pytest.param({"EIO": "2", "transport": "polling"}, UNSUPPORTED_VERSION, id="EIO-2"),
        pytest.param({"EIO": "5", "transport": "polling"}, UNSUPPORTED_VERSION, id="EIO-5"),
        pytest.param({"EIO": "4"}, UNKNOWN_TRANSPORT, id="missing-transport"),
        pytest.param({"EIO": "4", "transport": "foo"}, UNKNOWN_TRANSPORT, id="transport-foo"),
        pytest.param({"EIO": "4", "transport": ""}, UNKNOWN_TRANSPORT, id="transport-empty"),
        pytest.param({}, UNKNOWN_TRANSPORT, id="no-query"),
        pytest.param(
            {"EIO": "4", "transport": "polling", "sid": "nope"}, UNKNOWN_SID, id="unknown-sid"
        ),
        # transport=websocket over plain HTTP (no Upgrade header)
        pytest.param({"EIO": "4", "transport": "websocket"}, BAD_REQUEST, id="ws-without-upgrade"),
    ],
)
async def test_bad_handshake_is_400_with_json_body(
    http: httpx.AsyncClient, engineio_server: str, query: dict[str, str], body: dict[str, object]
) -> None:
    r = await http.get(engineio_server + EIO_PATH, params=query)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == body
    assert r.text == json.dumps(body, separators=(",", ":"))


async def test_missing_transport_is_400_on_socketio_path_too(
    http: httpx.AsyncClient, socketio_server: str
) -> None:
    # python-engineio answers 200 here: wrong
    r = await http.get(socketio_server + SIO_PATH, params={"EIO": "4"})
    assert r.status_code == 400
    assert r.json() == UNKNOWN_TRANSPORT


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_post_or_put_without_sid_is_400(
    http: httpx.AsyncClient, engineio_server: str, method: str
) -> None:
    r = await http.request(
        method,
        engineio_server + EIO_PATH,
        params={"EIO": "4", "transport": "polling"},
        content="4hello",
    )
    assert r.status_code == 400  # not 405
    assert r.json() == BAD_HANDSHAKE_METHOD


@pytest.mark.parametrize(
    "query",
    [
        "EIO=2&transport=websocket",
        "EIO=abc&transport=websocket",
        "transport=websocket",
        "EIO=4",
        "EIO=4&transport=foo",
        "EIO=4&transport=polling",
    ],
)
async def test_websocket_with_bad_query_is_refused_or_closed(
    engineio_server: str, query: str
) -> None:
    """Refused at the HTTP upgrade with 400, or accepted and closed at once without an OPEN."""
    url = ws_url(engineio_server, EIO_PATH, query)
    try:
        async with ws_connect(url) as ws:
            frames = await ws.expect_closed(within=AT_ONCE * 5)
            assert not any(isinstance(f, str) and f.startswith("0") for f in frames), frames
    except ConnectionRejected as exc:
        assert exc.status_code == 400
    except (ConnectionClosed, HandshakeError):
        # Node answers 101 and then writes a plain-text HTTP 400 onto the socket and closes it,
        # which a WebSocket client sees as a broken, closed connection.
        pass


async def test_engineio_and_websocket_share_one_port(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    r = await http.get(engineio_server + EIO_PATH, params={"EIO": "4", "transport": "polling"})
    assert r.status_code == 200
    async with eio_ws(engineio_server) as ws:
        assert ws.open_info["upgrades"] == []  # type: ignore[attr-defined]


async def test_engineio_mode_has_no_socketio_layer(engineio_server: str) -> None:
    """``--mode engineio`` is a bare echo: a Socket.IO CONNECT is just echoed back."""
    async with eio_ws(engineio_server) as ws:
        await ws.send("440")
        assert await ws.recv() == "440"
        await ws.send("4")
        assert await ws.recv() == "4"
        with trio.move_on_after(0.05):
            extra = await ws.recv()
            pytest.fail(f"unexpected extra frame {extra!r}")
