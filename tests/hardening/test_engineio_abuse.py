"""Engine.IO transport abuse against a live interop server.

Already covered elsewhere (not repeated here): bad handshakes over HTTP, POST without sid, two
concurrent GETs, aborted GETs, upgrade of an already upgraded sid, unknown sid on upgrade, the
ping timeout on both transports and the connect timeout over WebSocket (tests/conformance/);
polling POST over the size cap -> 413 (tests/web/sockets/test_raw_frames.py).

Every attack here also checks the bystander: a client connected before the attack keeps its echo.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from tests.support.clients.raw import (
    AT_ONCE,
    PATH,
    TOKEN,
    WAIT,
    Polling,
    RawConn,
    client_frame,
    raw_conn,
    sio_ws,
    upgrade_head,
)
from tests.support.clients.status import health, metrics, wait_connections
from tests.support.processes import interop

from .helpers import answering_pings

MAX_PACKETS = 20
HEAD_TIMEOUT = 1.0
HB_INTERVAL = 0.3
HB_TIMEOUT = 0.3
CONNECT_TIMEOUT = 0.8


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(
        module_server_factory,
        f"max_packets_per_payload={MAX_PACKETS}",
        f"http_head_timeout_seconds={HEAD_TIMEOUT}",
    )


@pytest.fixture(scope="module")
def hb_server(module_server_factory: Callable[..., Any]) -> Any:
    """Fast heartbeat and connect timeout, for the timing attacks."""
    return interop(
        module_server_factory,
        f"ping_interval_ms={int(HB_INTERVAL * 1000)}",
        f"ping_timeout_ms={int(HB_TIMEOUT * 1000)}",
        f"connect_timeout_ms={int(CONNECT_TIMEOUT * 1000)}",
    )


async def upgrade_status(server: Any, query: str, path: str) -> tuple[int, dict[str, Any] | None]:
    """Send a WebSocket upgrade with ``query`` on the native path (first request) or the ASGI
    route (after a keep-alive request); returns the status and the JSON body if refused."""
    async with raw_conn(server) as conn:
        if path == "asgi":
            await conn.send(
                f"GET /health HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n\r\n".encode()
            )
            assert (await conn.response())[0] == 200
        await conn.send(upgrade_head(server, query, keep_alive=path == "asgi"))
        status, _, body = await conn.response()
        if status == 101:
            return status, None
        return status, json.loads(body)


@pytest.mark.parametrize("path", ["native", "asgi"])
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("transport=websocket", 5),
        ("EIO=2&transport=websocket", 5),
        ("EIO=abc&transport=websocket", 5),
        ("EIO=4.0&transport=websocket", 5),
        ("EIO=4", 0),
        ("EIO=4&transport=flash", 0),
        ("EIO=4&transport=websocket&sid=not-a-session", 1),
    ],
    ids=["no-eio", "eio2", "eio-abc", "eio-4.0", "no-transport", "bad-transport", "unknown-sid"],
)
async def test_websocket_bad_engineio_query_is_refused_at_upgrade(
    server: Any, path: str, query: str, code: int
) -> None:
    """Attack: a WebSocket upgrade with a missing/wrong EIO version, no or an unknown transport,
    or a sid nobody holds. Expected: HTTP 400 at the upgrade with Node's JSON body, on both
    WebSocket paths; no session is opened."""
    async with sio_ws(server) as bystander:
        before = (await health(server))["connections"]
        status, body = await upgrade_status(server, query, path)
        assert status == 400
        assert body is not None and body["code"] == code, body
        assert (await health(server))["connections"] == before
        await bystander.echo(1, "after")


async def test_foreign_websocket_sid_cannot_be_polled_or_upgraded(server: Any) -> None:
    """Attack: another client's WebSocket sid used for polling GET/POST and for an upgrade.
    Expected: polling 400 ``{"code":3}`` (the sid is not a polling session); the upgrade is
    accepted and closed at once; the victim's session carries on untouched."""
    async with raw_conn(server) as raw, httpx.AsyncClient(timeout=WAIT) as http:
        await raw.send(upgrade_head(server, "EIO=4&transport=websocket&token=x"))
        assert (await raw.response())[0] == 101
        opened = await raw.text()
        sid = json.loads(opened[1:])["sid"]
        url = server.url + PATH
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        r = await http.get(url, params=params)
        assert (r.status_code, r.json()["code"]) == (400, 3)
        r = await http.post(url, params=params, content="41")
        assert (r.status_code, r.json()["code"]) == (400, 3)
        async with raw_conn(server) as hijack:
            await hijack.send(upgrade_head(server, f"EIO=4&transport=websocket&sid={sid}"))
            assert (await hijack.response())[0] == 101
            assert await hijack.close_code() in (1000, None)
        # the victim is unharmed: it still connects a namespace and is answered
        await raw.send_text('40{"token":"bad"}')
        assert (await raw.text()).startswith('44{"message":')


async def test_foreign_polling_sid_bad_upgrade_does_not_end_the_session(server: Any) -> None:
    """Attack: a stranger opens a WebSocket with a polling client's sid and sends garbage
    instead of ``2probe``/``5``. Expected: only that WebSocket is closed; the polling session
    goes on (its GET is answered, its echo acked)."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        victim = Polling(http, server, token=TOKEN)
        await victim.handshake()
        await victim.connect()
        async with raw_conn(server) as hijack:
            await hijack.send(upgrade_head(server, f"EIO=4&transport=websocket&sid={victim.sid}"))
            assert (await hijack.response())[0] == 101
            await hijack.send_text('42["echo","hijacked"]')  # not a probe, not an upgrade
            assert await hijack.close_code() in (1000, 1002, None)
        assert (await victim.post('421["echo","still mine"]')).text == "ok"
        with trio.fail_after(WAIT):
            while True:
                r = await victim.get()
                assert r.status_code == 200, r.text
                if '431["still mine"]' in r.text.split("\x1e"):
                    break


async def test_upgrade_without_probe_and_probe_twice(server: Any) -> None:
    """Upgrade misuse: ``2probe`` twice, and ``5`` with no probe at all. Expected (as Node):
    each probe is answered ``3probe``; ``5`` alone switches the session; afterwards polling
    gets 400 and the WebSocket carries the echo. A ``5`` on a session that is not upgrading
    closes that connection."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for probes in (2, 0):
            client = Polling(http, server, token=TOKEN)
            await client.handshake()
            await client.connect()
            async with raw_conn(server) as ws:
                await ws.send(upgrade_head(server, f"EIO=4&transport=websocket&sid={client.sid}"))
                assert (await ws.response())[0] == 101
                for _ in range(probes):
                    await ws.send_text("2probe")
                    assert await ws.text() == "3probe"
                await ws.send_text("5")
                await ws.send_text('427["echo","up"]')
                assert await ws.text() == '437["up"]'
                assert (await client.get()).status_code == 400
                await ws.send_text("5")  # UPGRADE again, on an upgraded session
                assert await ws.close_code() in (1000, None)


@pytest.mark.parametrize("packet", ["0", "0{}", "5", "6probe", "b!!!!", "b", "bAAA"])
async def test_engineio_packets_a_client_may_not_send(server: Any, packet: str) -> None:
    """Attack: OPEN or UPGRADE from the client on a plain WebSocket session, and ``b`` +
    broken base64, or an empty binary message (``b``: no binary packet awaits it). Expected:
    that connection closed at once; ``6`` (NOOP) with data is harmless and the connection
    stays."""
    async with sio_ws(server) as bystander, sio_ws(server) as attacker:
        await attacker.send(packet)
        if packet == "6probe":
            await attacker.echo(2, "still open")
        else:
            await attacker.expect_closed()
        await bystander.echo(1, "after")


async def test_polling_bad_base64_closes_the_session(server: Any) -> None:
    """Attack: a polling POST carrying ``b`` + invalid base64 (inside a valid payload).
    Expected: 400 ``{"code":3}``; the session is closed (next GET 400)."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        client = Polling(http, server, token=TOKEN)
        await client.handshake()
        await client.connect()
        r = await client.post('42["echo",1]\x1ebnot*base64')
        assert r.status_code == 400 and r.json()["code"] == 3
        assert (await client.get()).status_code == 400


async def test_payload_amplification_is_capped(server: Any) -> None:
    """Attack: one polling POST carrying many tiny packets (each would cost an ack).
    Expected: up to ``max_packets_per_payload`` (20 here) are all handled and answered; one
    more and the POST gets 400 and the session is closed, none of its packets handled."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        client = Polling(http, server, token=TOKEN)
        await client.handshake()
        await client.connect()
        body = "\x1e".join(f'42{i}["echo",{i}]' for i in range(MAX_PACKETS))
        assert (await client.post(body)).text == "ok"
        acks: set[str] = set()
        with trio.fail_after(WAIT):
            while len(acks) < MAX_PACKETS:
                r = await client.get()
                acks.update(p for p in r.text.split("\x1e") if p.startswith("43"))
        assert acks == {f"43{i}[{i}]" for i in range(MAX_PACKETS)}

        body = "\x1e".join(f'42{i}["echo",{i}]' for i in range(MAX_PACKETS + 1))
        r = await client.post(body)
        assert r.status_code == 400
        assert (await client.get()).status_code == 400

        client = Polling(http, server, token=TOKEN)  # a body of record separators only
        await client.handshake()
        r = await client.post("\x1e" * 5000)
        assert r.status_code == 400


async def chunked_post(server: Any, query: str, chunks: list[bytes]) -> tuple[int, bytes]:
    async with raw_conn(server) as conn:
        head = (
            f"POST {PATH}?{query} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        await conn.send(head)
        try:
            await conn.send(body)
        except trio.BrokenResourceError:  # the server answered and hung up mid-body
            pass
        status, _, data = await conn.response()
        return status, data


async def test_chunked_post_under_and_over_the_cap(server: Any) -> None:
    """Attack: polling POSTs with ``Transfer-Encoding: chunked`` (no Content-Length to check
    up front). Expected: under the cap (10,000 bytes) the packets are handled (200 ``ok``, the
    echo is acked); over the cap 413 and the session is closed, the bystander unaffected."""
    async with httpx.AsyncClient(timeout=WAIT) as http, sio_ws(server) as bystander:
        client = Polling(http, server, token=TOKEN)
        await client.handshake()
        await client.connect()
        packet = b'425["echo","' + b"c" * 3000 + b'"]'
        status, data = await chunked_post(
            server, client.query(), [packet[i : i + 100] for i in range(0, len(packet), 100)]
        )
        assert (status, data) == (200, b"ok")
        with trio.fail_after(WAIT):
            while '435["' + "c" * 3000 + '"]' not in (await client.get()).text.split("\x1e"):
                pass
        over = b'42["echo","' + b"x" * 12_000 + b'"]'
        status, _ = await chunked_post(
            server, client.query(), [over[i : i + 1000] for i in range(0, len(over), 1000)]
        )
        assert status == 413
        assert (await client.get()).status_code == 400
        await bystander.echo(1, "after")


async def test_tcp_connection_without_a_request_head_is_closed(server: Any) -> None:
    """Attack: TCP connections that send nothing, or a request head that never ends
    (slowloris). Expected: closed after ``http_head_timeout_seconds`` (1 s here): silently when
    nothing was sent, with ``408 Request Timeout`` for a partial head; meanwhile 20 such idle
    connections do not slow a normal client."""
    async with sio_ws(server) as bystander:
        connecting = trio.current_time()  # no later than the server's accept of `silent`
        async with raw_conn(server) as silent, raw_conn(server) as slow:
            await slow.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                idle: list[RawConn] = []
                for _ in range(20):
                    stream = await trio.open_tcp_stream(server.host, server.port)
                    idle.append(RawConn(stream))
                await bystander.echo(1, "during")
                assert trio.current_time() - started < HEAD_TIMEOUT
                got = await silent.wait_eof(HEAD_TIMEOUT + 2)
                assert got == b""
                assert trio.current_time() - connecting >= HEAD_TIMEOUT - 0.1
                got = await slow.wait_eof(AT_ONCE)
                assert got.startswith(b"HTTP/1.1 408"), got
                for conn in idle:
                    assert await conn.wait_eof(AT_ONCE) == b""
                    await conn.stream.aclose()
                nursery.cancel_scope.cancel()
        await bystander.echo(2, "after")


KEEP_ALIVE = 5.0  # Hypercorn's keep_alive_timeout default (web/front_door.hypercorn_config)


async def test_keep_alive_connection_cannot_stall_after_its_first_request(server: Any) -> None:
    """Attack: a slowloris that first sends one complete request (GET /health) on a keep-alive
    connection, then either nothing or a second request head that never ends. Expected: closed
    like a first-request slowloris, at the latest after ``http_head_timeout_seconds`` or the
    keep-alive timeout (5 s), whichever is longer (+2 s of slack)."""
    async with raw_conn(server) as idle, raw_conn(server) as partial:
        for conn in (idle, partial):
            await conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await conn.response())[0] == 200
        await partial.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        deadline = max(HEAD_TIMEOUT, KEEP_ALIVE) + 2
        with trio.fail_after(deadline):
            await idle.wait_eof(deadline)
            await partial.wait_eof(deadline)


async def test_oversize_request_head_gets_431(server: Any) -> None:
    """Attack: a request head larger than ``max_http_head_bytes`` (16 KiB). Expected:
    ``431 Request Header Fields Too Large`` and the connection closed."""
    async with raw_conn(server) as conn:
        junk = "X-Junk: " + "j" * 20_000 + "\r\n"
        try:
            await conn.send(f"GET /health HTTP/1.1\r\nHost: x\r\n{junk}\r\n".encode())
        except trio.BrokenResourceError:
            pass
        got = await conn.wait_eof(WAIT)
        assert got.startswith(b"HTTP/1.1 431"), got[:100]


# --- timing attacks on the fast-heartbeat server ---
async def test_pong_flood_schedules_no_extra_pings(hb_server: Any) -> None:
    """Attack: 2,000 unsolicited PONGs in a burst, then more between the server's PINGs.
    Expected: ignored: PINGs keep coming once per ``ping_interval_ms`` (no extra PING per
    PONG), the session stays open and its echo is answered promptly."""
    async with sio_ws(hb_server) as client:
        for _ in range(2000):
            await client.send("3")
        await client.echo(1, "after flood", timeout=AT_ONCE)
        client.pings = 0
        window = 5 * HB_INTERVAL
        started = trio.current_time()
        with trio.move_on_after(window):
            while True:
                await client.send("3")
                with trio.move_on_after(0.01):
                    await client.recv()
        elapsed = trio.current_time() - started
        assert client.pings <= elapsed / HB_INTERVAL + 1, client.pings
        assert client.pings >= 2  # the heartbeat still runs
        await client.echo(2, "still open", timeout=AT_ONCE)


async def test_unanswered_pings_close_a_connected_session(hb_server: Any) -> None:
    """Attack: a connected Socket.IO client that stops answering PINGs (half-open peer).
    Expected: closed at ping interval + ping timeout (0.6 s here), /health stops counting it;
    another client connected all along is unaffected."""
    async with sio_ws(hb_server) as bystander:
        async with answering_pings(bystander):
            base = (await health(hb_server))["connections"]
            async with sio_ws(hb_server) as dead:
                started = trio.current_time()
                code = await dead.expect_closed(within=HB_INTERVAL + HB_TIMEOUT + 1.0)
                assert code in (1000, 1005, 1006)
                assert trio.current_time() - started >= HB_TIMEOUT
            await wait_connections(hb_server, base)
        await bystander.echo(1, "after")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_half_open_connection_without_connect_is_closed(
    hb_server: Any, transport: str
) -> None:
    """Attack: open Engine.IO sessions (answering PINGs) that never send a Socket.IO CONNECT.
    Expected: closed at ``connect_timeout_ms`` (0.8 s here) on either transport."""
    if transport == "websocket":
        async with sio_ws(hb_server, connect=False) as idle:
            started = trio.current_time()
            with trio.fail_after(CONNECT_TIMEOUT + 1.5):
                with pytest.raises(Exception) as closed:
                    while True:
                        await idle.recv(CONNECT_TIMEOUT + 1.5)
            assert "Closed" in type(closed.value).__name__
    else:
        async with httpx.AsyncClient(timeout=WAIT) as http:
            idle = Polling(http, hb_server, token=TOKEN)
            await idle.handshake()
            started = trio.current_time()
            with trio.fail_after(CONNECT_TIMEOUT + 1.5):
                while True:
                    r = await idle.get()
                    if r.status_code != 200 or "1" in r.text.split("\x1e"):
                        break
                    if "2" in r.text.split("\x1e"):
                        assert (await idle.post("3")).status_code == 200
    assert trio.current_time() - started >= CONNECT_TIMEOUT - 0.15


async def test_frames_before_and_between_handshakes_are_harmless(server: Any) -> None:
    """Attack: WebSocket frames sent in the same write as the upgrade request (before the
    server's 101) and a client PING ``2`` before CONNECT. Expected: the early frames are
    parsed after the handshake (``2`` answered ``3``), the connection then works."""
    async with raw_conn(server) as conn:
        head = upgrade_head(server, "EIO=4&transport=websocket&token=x")
        await conn.send(head + client_frame(0x1, b"2early"))
        assert (await conn.response())[0] == 101
        assert (await conn.text()).startswith("0{")
        assert await conn.text() == "3early"


CAP = 3
TOO_MANY = {"code": 4, "message": "Too many connections from this address"}


@pytest.fixture
def capped_server(server_factory: Callable[..., Any]) -> Any:
    return interop(server_factory, f"max_connections_per_ip={CAP}")


@pytest.mark.parametrize("path", ["native", "asgi"])
async def test_one_address_cannot_hold_more_sessions_than_the_cap(
    capped_server: Any, path: str
) -> None:
    """Attack: one address opens sessions until ``max_connections_per_ip``. Expected: the next
    handshake, polling or WebSocket (both paths), gets 403 ``{"code":4}`` with a clear message
    and opens nothing; the sessions it holds keep working, a held polling session may still
    upgrade, and closing one admits a new one."""
    server = capped_server
    ws_query = "EIO=4&transport=websocket"
    async with httpx.AsyncClient(timeout=WAIT) as http, sio_ws(server) as first:
        polling = Polling(http, server, token=TOKEN)
        await polling.handshake()
        async with sio_ws(server) as third:
            r = await http.get(server.url + PATH, params={"EIO": "4", "transport": "polling"})
            assert (r.status_code, r.json()) == (403, TOO_MANY)
            assert await upgrade_status(server, ws_query, path) == (403, TOO_MANY)
            assert (await health(server))["connections"] == CAP
            await first.echo(1, "still served")
            await third.echo(2, "still served")
            # an upgrade moves a held session to a WebSocket: it opens nothing, so it is allowed
            status, _ = await upgrade_status(server, f"{ws_query}&sid={polling.sid}", path)
            assert status == 101
        await wait_connections(server, CAP - 1)
        assert (await upgrade_status(server, ws_query, path))[0] == 101
    refused = (await metrics(server))[
        'switchboard_handshake_failures_total{reason="too_many_connections"}'
    ]
    assert refused == 2
