"""docs/protocol.md "Socket.IO v5", against ``--mode socketio``."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.support.clients.raw import RS

from .helpers import (
    AT_ONCE,
    CONNECT_TIMEOUT,
    EARLY,
    LATE,
    PING_INTERVAL,
    SIO_PATH,
    WS,
    Polling,
    eio_ws,
    node_deviation,
    placeholders,
    sio_connect,
    sio_ws,
)

SID_ACK = re.compile(r'^40\{"sid":"[^"]+"\}$')
CUSTOM_SID_ACK = re.compile(r'^40/custom,\{"sid":"[^"]+"\}$')


async def _connected(ws: WS) -> str:
    ack, event = await sio_connect(ws)
    assert event == '42["auth",{}]'
    return ack


# ------------------------------------------------------------------------------------ CONNECT


async def test_connect_ack_exact_shape_then_auth_event(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await ws.send("40")
        ack = await ws.recv()
        assert isinstance(ack, str) and SID_ACK.match(ack), ack
        assert list(json.loads(ack[2:])) == ["sid"]  # exactly one key
        # the socket id is not the Engine.IO session id
        assert json.loads(ack[2:])["sid"] != ws.open_info["sid"]  # type: ignore[attr-defined]
        # the handler's emit goes out AFTER the ack, as a separate frame
        assert await ws.recv() == '42["auth",{}]'


async def test_connect_over_polling_ack_before_auth_event(
    http: httpx.AsyncClient, socketio_server: str
) -> None:
    p = Polling(http, socketio_server, SIO_PATH)
    await p.handshake()
    await p.post_ok("40")
    ack, event = await p.collect(2)
    assert SID_ACK.match(ack), ack
    assert event == '42["auth",{}]'


async def test_connect_auth_payload_passed_to_handler(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        ack, event = await sio_connect(ws, auth='{"token":"123"}')
        assert SID_ACK.match(ack), ack
        assert event == '42["auth",{"token":"123"}]'


async def test_auth_payload_json_is_compact_and_keeps_key_order(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        auth = '{ "z" : 1, "a" : [true, null, {"y": "é☃", "b": 2}], "m": {} }'
        _, event = await sio_connect(ws, auth=auth)
        assert event == '42["auth",{"z":1,"a":[true,null,{"y":"é☃","b":2}],"m":{}}]'


async def test_custom_namespace(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send("40/custom,")
        ack = await ws.recv()
        assert isinstance(ack, str) and CUSTOM_SID_ACK.match(ack), ack
        assert await ws.recv() == '42/custom,["auth",{}]'


async def test_custom_namespace_with_auth(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await ws.send('40/custom,{"token":"abc"}')
        ack = await ws.recv()
        assert isinstance(ack, str) and CUSTOM_SID_ACK.match(ack), ack
        assert await ws.recv() == '42/custom,["auth",{"token":"abc"}]'
        # "/" can still be joined on the same connection
        await _connected(ws)


async def test_unknown_namespace_exact_error_and_connection_stays_open(
    socketio_server: str,
) -> None:
    async with sio_ws(socketio_server) as ws:
        await ws.send("40/random,")
        # python-socketio's 44/random,"Unable to connect" is wrong
        assert await ws.recv() == '44/random,{"message":"Invalid namespace"}'
        assert await ws.expect_open_and_quiet(0.1) == []
        await _connected(ws)  # the Engine.IO connection is still usable
        await ws.send('42["message","still"]')
        assert await ws.recv() == '42["message-back","still"]'


async def test_unknown_namespace_with_auth(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('40/random,{"token":"1"}')
        assert await ws.recv() == '44/random,{"message":"Invalid namespace"}'
        await ws.send('42["message",1]')
        assert await ws.recv() == '42["message-back",1]'


async def test_disconnect_sends_nothing_and_keeps_engineio_open(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send("40/custom,")
        assert CUSTOM_SID_ACK.match(await ws.recv())  # type: ignore[arg-type]
        assert await ws.recv() == '42/custom,["auth",{}]'
        await ws.send("41")
        # nothing comes back (PINGs aside), and the connection stays open ...
        assert await ws.expect_open_and_quiet(PING_INTERVAL + 0.1) == []
        # ... for the other namespace, and "/" can be joined again
        await ws.send("41/custom,")
        assert await ws.expect_open_and_quiet(0.1) == []
        await _connected(ws)
        await ws.send('42["message","again"]')
        assert await ws.recv() == '42["message-back","again"]'


async def test_disconnect_of_last_namespace_keeps_engineio_open(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send("41")
        # no connect timeout either: stays open well past connectTimeout
        assert await ws.expect_open_and_quiet(CONNECT_TIMEOUT + 0.2) == []
        await _connected(ws)


# -------------------------------------------------------------------------------- events/acks


async def test_event_with_three_arguments(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('42["message",1,"2",{"3":[true]}]')
        assert await ws.recv() == '42["message-back",1,"2",{"3":[true]}]'


async def test_event_arguments_compact_and_key_order(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('42[ "message" , {"z": 1, "a": {"y": null, "b": [ ]}}, "x\\"y", "é😀" ]')
        assert await ws.recv() == '42["message-back",{"z":1,"a":{"y":null,"b":[]}},"x\\"y","é😀"]'


async def test_event_with_no_arguments(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('42["message"]')
        assert await ws.recv() == '42["message-back"]'


async def test_json_numbers_keep_their_values(socketio_server: str) -> None:
    """Numbers come back with the same values. Node re-serialises them with JSON.stringify
    (1.0 -> 1, 1.5e-7 -> 1.5e-7); Switchboard, like python-socketio, keeps Python's float text
    (1.0, 1.5e-07). Every JSON parser reads both as the same numbers, so clients cannot tell;
    matching JavaScript's float text byte for byte would cost a hook on every float decoded."""
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('42["message",1,1.0,1e2,-0,0.1,1e21,1.5e-7,-2.50]')
        reply = await ws.recv()
        assert reply.startswith('42["message-back",1,')
        assert json.loads(reply[2:]) == ["message-back", 1, 1.0, 100.0, 0, 0.1, 1e21, 1.5e-7, -2.5]


async def test_event_with_ack_id(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('42456["message-with-ack",1,"2",{"3":[true]}]')
        assert await ws.recv() == '43456[1,"2",{"3":[true]}]'
        await ws.send('420["message-with-ack"]')
        assert await ws.recv() == "430[]"


async def test_events_in_custom_namespace_carry_prefix(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await ws.send("40/custom,")
        assert CUSTOM_SID_ACK.match(await ws.recv())  # type: ignore[arg-type]
        assert await ws.recv() == '42/custom,["auth",{}]'
        # "/custom" has no "message" handler: an event there produces nothing and is harmless
        await ws.send('42/custom,["message",1]')
        assert await ws.expect_open_and_quiet(0.1) == []


async def test_event_and_ack_over_polling(http: httpx.AsyncClient, socketio_server: str) -> None:
    p = Polling(http, socketio_server, SIO_PATH)
    await p.handshake()
    await p.post_ok("40")
    await p.collect(2)
    await p.post_ok('42["message",1,"2",{"3":[true]}]' + RS + '427["message-with-ack","x"]')
    assert await p.collect(2) == ['42["message-back",1,"2",{"3":[true]}]', '437["x"]']


# ------------------------------------------------------------------------------------ binary


async def test_binary_event_two_attachments(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('452-["message",' + placeholders(2) + "]")
        await ws.send(b"\x01\x02")
        await ws.send(b"\x03")
        assert await ws.recv_n(3) == [
            '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\x01\x02",
            b"\x03",
        ]


async def test_binary_ack(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('452-12["message-with-ack",' + placeholders(2) + "]")
        await ws.send(b"\xff")
        await ws.send(b"")
        assert await ws.recv_n(3) == [
            '462-12[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\xff",
            b"",
        ]


async def test_binary_attachments_renumbered_in_order(socketio_server: str) -> None:
    """Placeholders referencing attachments out of order: the reply numbers them in the order
    they appear in the arguments and sends the attachments in that order."""
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send(
            '452-["message",{"k":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}],"t"]'
        )
        await ws.send(b"A")
        await ws.send(b"B")
        assert await ws.recv_n(3) == [
            '452-["message-back",{"k":{"_placeholder":true,"num":0}},'
            '[{"_placeholder":true,"num":1}],"t"]',
            b"B",
            b"A",
        ]


async def test_binary_event_over_polling_uses_base64(
    http: httpx.AsyncClient, socketio_server: str
) -> None:
    p = Polling(http, socketio_server, SIO_PATH)
    await p.handshake()
    await p.post_ok("40")
    await p.collect(2)
    await p.post_ok('452-["message",' + placeholders(2) + "]" + RS + "bAQI=" + RS + "bAw==")
    assert await p.collect(3) == [
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        "bAQI=",
        "bAw==",
    ]


async def test_ten_attachments_are_allowed(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('4510-["message",' + placeholders(10) + "]")
        for i in range(10):
            await ws.send(bytes([i]))
        got = await ws.recv_n(11)
        assert got[0] == '4510-["message-back",' + placeholders(10) + "]"
        assert got[1:] == [bytes([i]) for i in range(10)]


async def test_pong_between_packet_and_attachments(socketio_server: str) -> None:
    """A PING/PONG exchange may sit between a binary packet and its attachments."""
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await ws.send('452-["message",' + placeholders(2) + "]")
        # wait for the next server PING and answer it before sending the attachments
        with trio.fail_after(PING_INTERVAL + LATE):
            while await ws.recv_raw() != "2":
                pass
        await ws.send("3")
        await ws.send(b"\x01")
        with trio.fail_after(PING_INTERVAL + LATE):
            while await ws.recv_raw() != "2":
                pass
        await ws.send("3")
        await ws.send(b"\x02")
        assert await ws.recv_n(3) == [
            '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\x01",
            b"\x02",
        ]


# ------------------------------------------------------------------------- invalid packets


async def _expect_closed_at_once(ws: WS, *frames: str | bytes) -> None:
    try:
        for f in frames:
            await ws.send(f)
    except ConnectionClosed:
        pass  # already closed: even better
    assert await ws.expect_closed(within=AT_ONCE) == []


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param("4abc", id="unknown-type"),
        pytest.param("48", id="type-8"),
        pytest.param("42{}", id="event-object-payload"),
        pytest.param('42"message"', id="event-string-payload"),
        pytest.param("42[]", id="event-empty-array"),
        pytest.param('42["message"', id="event-broken-json"),
        pytest.param('42abc["message"]', id="bad-ack-id"),
        pytest.param('42/custom["message"]', id="namespace-without-comma"),
        pytest.param("43[1]x", id="ack-trailing-garbage"),
    ],
)
async def test_invalid_packet_closes_at_once(socketio_server: str, packet: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, packet)


async def test_invalid_packet_before_connect_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _expect_closed_at_once(ws, "4abc")


async def test_placeholder_out_of_range_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, '451-["message",{"_placeholder":true,"num":3}]', b"\x00")


async def test_more_placeholders_than_attachments_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, '451-["message",' + placeholders(2) + "]", b"\x00")


async def test_non_integer_placeholder_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, '451-["message",{"_placeholder":true,"num":"0"}]', b"\x00")


@node_deviation("Node ignores attachments no placeholder refers to and replies with fewer")
@pytest.mark.parametrize(
    "header",
    [
        pytest.param('452-["message",{"_placeholder":true,"num":0}]', id="one-of-two-used"),
        pytest.param('452-["message"]', id="none-used"),
    ],
)
async def test_fewer_placeholders_than_attachments_closes_at_once(
    socketio_server: str, header: str
) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, header, b"\x01", b"\x02")


@pytest.mark.parametrize("declared", ["450-", "45x-", "45-"])
async def test_bad_attachment_count_closes_at_once(socketio_server: str, declared: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, declared + '["message"]')


async def test_more_than_ten_attachments_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, '4511-["message",' + placeholders(11) + "]", *[b"x"] * 11)


async def test_binary_frame_without_binary_packet_closes_at_once(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await _connected(ws)
        await _expect_closed_at_once(ws, b"\x01")


# --------------------------------------------------------------------------- connect timeout


async def test_no_connect_within_connect_timeout_closes(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        t0 = ws.requested_at  # type: ignore[attr-defined]
        # PINGs are answered (so the heartbeat keeps the session alive), no CONNECT is sent
        with trio.fail_after(CONNECT_TIMEOUT + LATE + 0.1):
            frames = []
            try:
                while True:
                    m = await ws.conn.get_message()
                    if m == "2":
                        await ws.send("3")
                    else:
                        frames.append(m)
            except ConnectionClosed:
                pass
        elapsed = trio.current_time() - t0
        assert frames == []
        assert elapsed >= CONNECT_TIMEOUT - EARLY, elapsed


async def test_connect_to_any_namespace_stops_connect_timeout(socketio_server: str) -> None:
    async with sio_ws(socketio_server) as ws:
        await ws.send("40/custom,")
        assert CUSTOM_SID_ACK.match(await ws.recv())  # type: ignore[arg-type]
        assert await ws.recv() == '42/custom,["auth",{}]'
        assert await ws.expect_open_and_quiet(CONNECT_TIMEOUT + 0.2) == []


# ------------------------------------------------------------------------------------ upgrade


async def test_socketio_session_upgrades_to_websocket(
    http: httpx.AsyncClient, socketio_server: str
) -> None:
    """Connect over polling, upgrade, then Socket.IO packets flow on the WebSocket."""
    p = Polling(http, socketio_server, SIO_PATH)
    await p.handshake()
    await p.post_ok("40")
    ack, event = await p.collect(2)
    assert SID_ACK.match(ack), ack
    assert event == '42["auth",{}]'
    async with eio_ws(socketio_server, path=SIO_PATH, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await ws.send("5")
        await ws.send('4213["message-with-ack","up"]')
        assert await ws.recv() == '4313["up"]'
        await ws.send('451-["message",' + placeholders(1) + "]")
        await ws.send(b"\x07")
        assert await ws.recv_n(2) == [
            '451-["message-back",{"_placeholder":true,"num":0}]',
            b"\x07",
        ]
        assert "6" not in ws.frames
