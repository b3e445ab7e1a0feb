"""Raw frames against the interop server: bad input ends only the offending connection.

trio-websocket speaks WebSocket correctly but lets us send any Socket.IO text; for framing
violations (unmasked client frame, RSV bits) the frames are built by hand on a raw TCP stream.
The interop server runs with ``--max-payload 10000`` so the size cap is cheap to exceed. Every
case also checks that a bystander client, connected beforehand, still gets its echo acks.
Runs on the native WebSocket path and on the ASGI-only server (Hypercorn enforces the size cap
and parses frames there, so close codes may differ: there the test checks that the connection
closes and that others are unaffected).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.clients.raw import (
    AT_ONCE,
    PATH,
    WAIT,
    RawConn,
    SioWS,
    client_frame,
    raw_ws,
    sio_ws,
    ws_url,
)
from tests.support.clients.status import wait_connections as wait_sessions
from tests.support.servers import INTEROP_SERVER
from tests.support.tokens import interop_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

MAX_PAYLOAD = 10_000
TOKEN = interop_token("raw")


@pytest.fixture(scope="module")
def native_server(module_server_factory: Callable[..., Any]) -> Any:
    return module_server_factory(INTEROP_SERVER, "--max-payload", str(MAX_PAYLOAD))


@pytest.fixture(scope="module")
def asgi_server(module_server_factory: Callable[..., Any]) -> Any:
    return module_server_factory(INTEROP_SERVER, "--asgi-only", "--max-payload", str(MAX_PAYLOAD))


@pytest.fixture(params=["native", "asgi"])
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_server")


def is_native(server: Any) -> bool:
    return "--asgi-only" not in server.args


@asynccontextmanager
async def sio_client(server: Any) -> AsyncIterator[SioWS]:
    """A raw Socket.IO client, connected to ``/`` (tests/support/clients/raw.py)."""
    async with sio_ws(server, token=TOKEN) as client:
        yield client


# --- malformed Socket.IO / Engine.IO packets ---------------------------------------------------
MALFORMED = {
    "event-payload-not-array": "42{}",
    "unknown-socketio-type": "4abc",
    "bad-ack-id": '42abc["echo","x"]',
    "not-json": '42["echo",',
    "namespace-not-connected": '42/admin,["echo","x"]',
    "unknown-engineio-type": "9hello",
}


@pytest.mark.parametrize("packet", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_packet_closes_only_that_connection(server: Any, packet: str) -> None:
    async with sio_client(server) as bystander, sio_client(server) as victim:
        await bystander.echo(1, "before")
        await victim.echo(1, "fine so far")
        await victim.send(packet)
        await victim.expect_closed()
        await bystander.echo(2, "after")
        await wait_sessions(server, 1)
        await bystander.echo(3, {"still": ["working", 1]})


async def test_attachment_mismatch_closes_only_that_connection(server: Any) -> None:
    async with sio_client(server) as bystander, sio_client(server) as victim:
        # announces one attachment but its placeholder points at attachment 5
        await victim.send('451-["echo",{"_placeholder":true,"num":5}]')
        await victim.send(b"\x01\x02")
        await victim.expect_closed()
        await bystander.echo(1, "after")
        await wait_sessions(server, 1)


async def test_binary_attachments_still_work(server: Any) -> None:
    """Positive control for the raw client: a well-formed binary event round-trips."""
    async with sio_client(server) as client:
        await client.send(
            '452-1["binary-echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        )
        await client.send(b"\x00\x01")
        await client.send(b"\xff" * 100)
        back = [await client.recv() for _ in range(3)]  # "binary-back" + 2 attachments
        ack = [await client.recv() for _ in range(3)]  # ack + 2 attachments
        frames = sorted([back, ack], key=lambda f: str(f[0]))
        assert frames[0][0] == (
            '452-["binary-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        )
        assert frames[1][0] == (
            '462-1[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        )
        for f in frames:
            assert f[1:] == [b"\x00\x01", b"\xff" * 100]


# --- size cap ----------------------------------------------------------------------------------
async def test_message_under_the_cap_is_accepted(server: Any) -> None:
    async with sio_client(server) as client:
        await client.echo(1, "x" * (MAX_PAYLOAD - 100))


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_oversize_message_is_refused(server: Any, kind: str) -> None:
    async with sio_client(server) as bystander, sio_client(server) as victim:
        if kind == "text":
            await victim.send("42" + json.dumps(["echo", "x" * (MAX_PAYLOAD + 1000)]))
        else:
            await victim.send('451-["echo",{"_placeholder":true,"num":0}]')
            await victim.send(b"\x00" * (MAX_PAYLOAD + 1000))
        code = await victim.expect_closed()
        if is_native(server):
            assert code == 1009
        else:  # Hypercorn enforces the cap on the ASGI path; its close code is its own
            assert code is not None
        await bystander.echo(1, "after")
        await wait_sessions(server, 1)


async def test_polling_post_over_the_cap_gets_413(server: Any) -> None:
    url = server.url + PATH
    base = {"EIO": "4", "transport": "polling", "token": TOKEN}
    async with httpx.AsyncClient(timeout=WAIT) as http, sio_client(server) as bystander:
        r = await http.get(url, params=base)
        assert r.status_code == 200
        sid = json.loads(r.text[1:])["sid"]
        params = {**base, "sid": sid}
        r = await http.post(url, params=params, content="40")
        assert (r.status_code, r.text) == (200, "ok")
        r = await http.get(url, params=params)
        assert r.text.startswith('40{"sid":'), r.text

        big = "42" + json.dumps(["echo", "x" * (MAX_PAYLOAD + 1000)])
        r = await http.post(url, params=params, content=big)
        assert r.status_code == 413
        # the session is over (as in Node: the transport errors and the socket closes)
        r = await http.get(url, params=params)
        assert r.status_code == 400 or r.text in ("1", "6"), (r.status_code, r.text)
        await bystander.echo(1, "after")


# --- framing violations over raw TCP -----------------------------------------------------------
@asynccontextmanager
async def raw_client(server: Any) -> AsyncIterator[RawConn]:
    """A hand-driven WebSocket on the native path, connected to ``/``."""
    async with raw_ws(server, "native") as conn:
        yield conn


async def test_raw_client_works(server: Any) -> None:
    """Positive control for the hand-built frames (masked, fragmented)."""
    async with raw_client(server) as ws:
        await ws.stream.send_all(client_frame(0x1, b'421["echo","hi"]'))
        assert await ws.text() == '431["hi"]'
        # one message in two fragments, with a ping in between
        await ws.stream.send_all(
            client_frame(0x1, b'422["echo",', fin=False)
            + client_frame(0x9, b"pp")
            + client_frame(0x0, b'"frag"]')
        )
        opcode, payload = await ws.frame()
        assert (opcode, payload) == (0xA, b"pp")
        assert await ws.text() == '432["frag"]'


VIOLATIONS = {
    "unmasked": lambda: client_frame(0x1, b'421["echo","x"]', masked=False),
    "rsv1": lambda: client_frame(0x1, b'421["echo","x"]', rsv=0b100),
    "rsv3": lambda: client_frame(0x1, b'421["echo","x"]', rsv=0b001),
    "unknown-opcode": lambda: client_frame(0x3, b"x"),
}


@pytest.mark.parametrize("violation", list(VIOLATIONS), ids=list(VIOLATIONS))
async def test_framing_violation_closes_with_1002(server: Any, violation: str) -> None:
    async with sio_client(server) as bystander, raw_client(server) as ws:
        await ws.stream.send_all(VIOLATIONS[violation]())
        code = await ws.close_code()
        if is_native(server):
            assert code == 1002
        await ws.wait_eof()
        await bystander.echo(1, "after")
        await wait_sessions(server, 1)


@pytest.mark.parametrize("writes", ["separate-writes", "one-write"])
async def test_oversize_fragmented_message_closes_with_1009(server: Any, writes: str) -> None:
    """Fragments that are each small but together exceed the cap; sent one write per frame, or
    all in one write (as a client that pipelines its frames does)."""
    async with sio_client(server) as bystander, raw_client(server) as ws:
        chunk = b"x" * (MAX_PAYLOAD // 2)
        frames = [
            client_frame(0x1, b'42["echo","' + chunk, fin=False),
            client_frame(0x0, chunk, fin=False),
            client_frame(0x0, chunk + b'"]'),
        ]
        if writes == "one-write":
            await ws.stream.send_all(b"".join(frames))
        else:
            for frame in frames:
                await ws.stream.send_all(frame)
        code = await ws.close_code()
        if is_native(server):
            assert code == 1009
        await ws.wait_eof()
        await bystander.echo(1, "after")
        await wait_sessions(server, 1)


# --- the polling -> WebSocket upgrade ------------------------------------------------------------
async def test_get_during_upgrade_completes_promptly(server: Any) -> None:
    """Node's socket.io-client may receive the NOOP that ends its pending GET *before* the
    ``3probe`` on the WebSocket; it then starts a new GET, pauses polling, and waits for that GET
    to complete before sending ``5`` (UPGRADE) and flushing its buffered packets. Node's server
    answers such a GET with ``6`` within ~100 ms (it writes a NOOP to polling every 100 ms while
    an upgrade is in progress); a server that leaves it pending stalls the client's upgrade and
    every emit until the next PING (pingInterval, 25 s here)."""
    url = server.url + PATH
    base = {"EIO": "4", "transport": "polling", "token": TOKEN}
    async with httpx.AsyncClient(timeout=WAIT) as http:
        r = await http.get(url, params=base)
        sid = json.loads(r.text[1:])["sid"]
        params = {**base, "sid": sid}
        assert (await http.post(url, params=params, content="40")).text == "ok"
        assert (await http.get(url, params=params)).text.startswith('40{"sid":')

        first: list[httpx.Response] = []
        first_done = trio.Event()

        async def pending_get() -> None:
            # pending at the probe or arriving just after it: either way it must end with "6"
            first.append(await http.get(url, params=params))
            first_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pending_get)
            async with open_websocket_url(ws_url(server, f"&sid={sid}", token=TOKEN)) as conn:
                ws = SioWS(conn)
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                with trio.fail_after(AT_ONCE):
                    await first_done.wait()
                assert first[0].text == "6"
                # the GET a client starts when its NOOP overtook the 3probe
                with trio.fail_after(AT_ONCE):
                    second = await http.get(url, params=params)
                assert (second.status_code, second.text) == (200, "6")
                await ws.send("5")
                await ws.echo(7, "upgraded")


async def test_connect_middleware_refusal_is_exact_and_keeps_the_connection(server: Any) -> None:
    """docs/protocol.md: a connect middleware refusing a client answers exactly
    ``44{"message":"<reason>"}``; the Engine.IO connection stays open for another CONNECT."""
    url = f"{server.ws_url}{PATH}?EIO=4&transport=websocket"  # no token anywhere
    async with open_websocket_url(url) as conn:
        ws = SioWS(conn)
        opened = await ws.recv()
        assert isinstance(opened, str) and opened.startswith("0{")
        await ws.send("40")
        assert await ws.recv() == '44{"message":"Authentication failed: no token provided"}'
        await ws.send('40{"token":"not-a-jwt"}')
        assert await ws.recv() == '44{"message":"Authentication failed: invalid token"}'
        await ws.send('40{"token":"' + TOKEN + '"}')
        connected = await ws.recv()
        assert isinstance(connected, str) and connected.startswith('40{"sid":')
