"""Floods at the core and slow consumers, against a live interop server with a small outbox
bound (``max_outbox_bytes`` 65,536) and rooms that retire quickly (``room_idle_seconds`` 0.5).

The measure of "the server stays responsive": a well-behaved client (the bystander) sends an
echo with ack over and over during the flood; every round trip must stay under
``RTT_BOUND`` (1 s, generous: idle it is about a millisecond on this machine).

The core has no per-IP connection or per-socket event rate limit (the chat application adds its
own: tests/web/apps/chat/test_chat_limits.py); what bounds a flooder here is backpressure: the
reader task handles one connection's packets in order, and a client that does not read its
answers is cut off at the outbox bound.
"""

from __future__ import annotations

import contextlib
import json
import socket as stdlib_socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from tests.support.clients.raw import (
    PATH,
    TOKEN,
    WAIT,
    RawConn,
    SioWS,
    client_frame,
    dumps,
    sio_ws,
    upgrade_head,
)
from tests.support.clients.status import health, metrics, wait_connections
from tests.support.processes import interop
from tests.support.tcp_table import ESTABLISHED, server_end
from tests.support.waiting import wait_until

from .helpers import rss_kib

PROBE_PACING_SECONDS = 0.01  # between a bystander's echo probes during a flood

OUTBOX = 65_536
RTT_BOUND = 1.0


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(
        module_server_factory,
        f"max_outbox_bytes={OUTBOX}",
        "room_idle_seconds=0.5",
        max_payload=100_000,
    )


class Probe:
    """Echo round trips of a bystander, measured in a background task."""

    def __init__(self, client: SioWS) -> None:
        self.client = client
        self.rtts: list[float] = []

    async def run(self) -> None:
        ack = 1000
        while True:
            ack += 1
            started = trio.current_time()
            await self.client.echo(ack, "probe", timeout=RTT_BOUND * 5)
            self.rtts.append(trio.current_time() - started)
            await trio.sleep(PROBE_PACING_SECONDS)  # pacing of the probe, not a wait

    def check(self) -> None:
        assert len(self.rtts) >= 3, self.rtts
        assert max(self.rtts) < RTT_BOUND, f"max echo RTT {max(self.rtts):.3f}s during the flood"


@asynccontextmanager
async def probing(server: Any) -> AsyncIterator[Probe]:
    async with sio_ws(server) as bystander, trio.open_nursery() as nursery:
        probe = Probe(bystander)
        nursery.start_soon(probe.run)
        yield probe
        nursery.cancel_scope.cancel()
    probe.check()


async def small_window_conn(server: Any) -> RawConn:
    """A raw TCP connection with a tiny receive buffer: it fills at once when not read."""
    sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 4096)
    await sock.connect((server.host, server.port))
    return RawConn(trio.SocketStream(sock))


async def test_connection_flood_keeps_others_responsive(server: Any) -> None:
    """Attack: 300 WebSocket handshakes and 100 polling handshakes as fast as the client can
    open them, all held open, then dropped at once. Expected: every handshake answered with an
    OPEN packet, the bystander's echo stays under 1 s throughout, and /health returns to the
    count from before once the flood hangs up."""
    base = (await health(server))["connections"]
    conns: list[RawConn] = []
    async with probing(server):
        async with httpx.AsyncClient(timeout=WAIT, limits=httpx.Limits(max_connections=50)) as http:
            async with trio.open_nursery() as nursery:

                async def ws_flood() -> None:
                    stream = await trio.open_tcp_stream(server.host, server.port)
                    conn = RawConn(stream)
                    conns.append(conn)
                    await conn.send(
                        upgrade_head(server, f"EIO=4&transport=websocket&token={TOKEN}")
                    )
                    assert (await conn.response())[0] == 101
                    assert (await conn.text()).startswith("0{")

                async def polling_flood() -> None:
                    r = await http.get(
                        server.url + PATH, params={"EIO": "4", "transport": "polling"}
                    )
                    assert r.status_code == 200 and r.text.startswith("0{")

                for i in range(400):
                    nursery.start_soon(ws_flood if i % 4 else polling_flood)

        async def all_open() -> bool:
            return bool((await health(server))["connections"] >= base + 300)

        await wait_until(all_open, WAIT)
        for conn in conns:
            await conn.stream.aclose()
    # the polling sessions never CONNECT: they end at the connect timeout (45 s by default),
    # so only the WebSocket ones are expected gone now
    await wait_connections(server, base + 100, timeout=10)


async def test_event_flood_from_one_socket(server: Any) -> None:
    """Attack: one socket pipelines 20,000 echo events (with acks) in large writes while
    reading its acks. Expected: every ack arrives, in order; the bystander's echo stays under
    1 s during the flood (the flooder only occupies its own reader task)."""
    total = 20_000
    async with probing(server), sio_ws(server) as flooder:
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                batch = 500
                for start in range(0, total, batch):
                    for i in range(start, start + batch):
                        await flooder.send(f"42{i}" + dumps(["echo", i]))

            nursery.start_soon(send)
            with trio.fail_after(60):
                for i in range(total):
                    assert await flooder.recv() == f"43{i}[{i}]"


def server_side_established(server: Any, client_port: int) -> bool:
    """Whether the server's end of the connection from ``client_port`` is still ESTABLISHED."""
    end = server_end(server.port, client_port)
    return end is not None and end.state == ESTABLISHED


@pytest.mark.parametrize(
    "path",
    [
        "native",
        "asgi",
    ],
)
async def test_flooder_that_never_reads_is_cut_off_at_the_outbox_bound(
    server: Any, path: str
) -> None:
    """Attack: a socket with a tiny receive window sends 5,000 echo events of 1 KB and never
    reads the acks (on either WebSocket path). Expected: once more than ``max_outbox_bytes``
    (64 KiB) wait for it, the server disconnects it as a slow consumer (counted in
    ``switchboard_slow_consumer_disconnects_total``) and hangs up its TCP connection within
    2 s even though the client still reads nothing; the bystander stays under 1 s; the
    server's RSS grows by far less than the 5 MB the flooder asked for."""
    before = await metrics(server)
    rss_before = rss_kib(server)
    async with probing(server):
        conn = await small_window_conn(server)
        async with conn.stream:
            if path == "asgi":
                await conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await conn.response())[0] == 200
            query = f"EIO=4&transport=websocket&token={TOKEN}"
            await conn.send(upgrade_head(server, query, keep_alive=path == "asgi"))
            assert (await conn.response())[0] == 101
            assert (await conn.text()).startswith("0{")
            await conn.send_text("40")
            assert (await conn.text()).startswith('40{"sid":')
            payload = "p" * 1024
            client_port = conn.stream.socket.getsockname()[1]
            async with trio.open_nursery() as nursery:

                async def flood() -> None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        for i in range(5000):
                            frame = f"42{i}".encode() + dumps(["echo", payload]).encode()
                            await conn.send(client_frame(0x1, frame))

                nursery.start_soon(flood)
                key = "switchboard_slow_consumer_disconnects_total"

                async def counted() -> bool:
                    return (await metrics(server))[key] != before[key]

                await wait_until(counted, 20)
                # the client still reads nothing: the server must hang up on its own (it gives
                # the close frame a grace second first)
                await wait_until(lambda: not server_side_established(server, client_port), 3.0)
                nursery.cancel_scope.cancel()
    assert rss_kib(server) - rss_before < 3 * 1024


async def test_polling_client_that_never_polls_is_cut_off(server: Any) -> None:
    """Attack: a polling client POSTs echo events (4 KB each, 15 per POST) and never GETs its
    acks. Expected: once more than ``max_outbox_bytes`` (64 KiB) of acks wait, the session is
    closed as a slow consumer: a later POST or GET gets 400 (or the final CLOSE ``1``)."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        url = server.url + PATH
        params = {"EIO": "4", "transport": "polling", "token": TOKEN}
        r = await http.get(url, params=params)
        params["sid"] = json.loads(r.text[1:])["sid"]
        assert (await http.post(url, params=params, content="40")).text == "ok"
        blob = "q" * 4000
        statuses = []
        for n in range(5):  # 5 x 60 KB of acks: the bound is passed during the 2nd POST
            body = "\x1e".join(f"42{n * 100 + i}" + dumps(["echo", blob]) for i in range(15))
            statuses.append((await http.post(url, params=params, content=body)).status_code)
            if statuses[-1] != 200:
                break
        assert statuses[-1] == 400, statuses
        r = await http.get(url, params=params)
        assert r.status_code == 400 or r.text == "1", (r.status_code, r.text[:100])


async def test_slow_consumer_in_a_busy_room(server: Any) -> None:
    """Attack: a member of a busy room stops reading (tiny receive window) while 1,000
    broadcasts of 8 KB go to the room (8 MB: more than the kernel's socket buffers hold).
    Expected: it is cut off at the outbox bound (its connection ends, the slow-consumer counter
    grows); the three members that read get every broadcast in order; the broadcaster's acks
    keep coming; the bystander stays under 1 s."""
    count, blob = 1000, "b" * 8000
    before = await metrics(server)
    async with probing(server):
        async with (
            sio_ws(server) as a,
            sio_ws(server) as b,
            sio_ws(server) as c,
            sio_ws(server) as sender,
        ):
            for member in (a, b, c):
                assert await member.call(1, "join", "busy") == [{"ok": True, "room": "busy"}]
            slow = await small_window_conn(server)
            async with slow.stream:
                await slow.send(upgrade_head(server, f"EIO=4&transport=websocket&token={TOKEN}"))
                assert (await slow.response())[0] == 101
                await slow.text()
                await slow.send_text("40")
                await slow.text()
                await slow.send_text('421["join","busy"]')
                assert await slow.text() == '431[{"ok":true,"room":"busy"}]'

                received: dict[int, list[int]] = {}

                async def member(client: SioWS, key: int) -> None:
                    got = received.setdefault(key, [])
                    while len(got) < count:
                        message = await client.recv(timeout=30)
                        assert isinstance(message, str) and message.startswith('42["news",')
                        got.append(json.loads(message[2:])[1])

                async with trio.open_nursery() as nursery:
                    for key, client in enumerate((a, b, c)):
                        nursery.start_soon(member, client, key)
                    for i in range(count):
                        bcast = {"room": "busy", "event": "news", "args": [i, blob]}
                        await sender.send(f"42{i}" + dumps(["bcast", bcast]))
                        if i % 50 == 49:  # keep 50 in flight
                            while True:
                                ack = await sender.recv(timeout=10)
                                if ack == f"43{i}" + dumps([{"ok": True}]):
                                    break
                assert all(received[k] == list(range(count)) for k in range(3))

                async def cut_off() -> bool:
                    after = await metrics(server)
                    return bool(
                        after["switchboard_slow_consumer_disconnects_total"]
                        > before["switchboard_slow_consumer_disconnects_total"]
                    )

                await wait_until(cut_off, WAIT)
                # what the slow member still finds in its buffers ends with the server's close
                got = await slow.wait_eof(WAIT)
                assert len(got) < count * len(blob)


async def test_join_spam_leaves_no_rooms_behind(server: Any) -> None:
    """Attack: one socket joins and leaves 10,000 distinct rooms (20,000 acked events,
    pipelined). Expected: every join/leave acked; the bystander stays under 1 s; when the rooms
    are idle (0.5 s here) their actors retire: ``switchboard_actors{kind="room"}`` back to its
    starting value, RSS within 20 MB of the start."""
    before = await metrics(server)
    rss_before = rss_kib(server)
    async with probing(server), sio_ws(server) as spammer:
        total = 10_000
        window = 200
        for start in range(0, total, window):
            for i in range(start, start + window):
                await spammer.send(f"42{2 * i}" + dumps(["join", f"spam-{i}"]))
                await spammer.send(f"42{2 * i + 1}" + dumps(["leave", f"spam-{i}"]))
            for i in range(start, start + window):
                assert await spammer.recv() == f"43{2 * i}" + dumps(
                    [{"ok": True, "room": f"spam-{i}"}]
                )
                assert await spammer.recv() == f"43{2 * i + 1}" + dumps(
                    [{"ok": True, "room": f"spam-{i}"}]
                )
    key = 'switchboard_actors{kind="room"}'

    async def retired() -> bool:
        return (await metrics(server))[key] <= before[key]

    await wait_until(retired, 10)
    assert rss_kib(server) - rss_before < 20 * 1024
