"""docs/protocol.md "Upgrade (polling -> WebSocket)", against the Engine.IO echo server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from tests.support.clients.raw import RS, RawResponse

from .helpers import AT_ONCE, EIO_PATH, WAIT, WS, Polling, eio_ws, node_deviation


async def _session(http: httpx.AsyncClient, base: str) -> Polling:
    p = Polling(http, base, EIO_PATH)
    await p.handshake()
    return p


class PendingGet:
    def __init__(self) -> None:
        self.completed = trio.Event()
        self.time = 0.0
        self.response: RawResponse | None = None

    async def wait(self, timeout: float = WAIT) -> RawResponse:
        with trio.fail_after(timeout):
            await self.completed.wait()
        assert self.response is not None
        return self.response


@asynccontextmanager
async def _pending_get(p: Polling) -> AsyncIterator[PendingGet]:
    """A GET the server has read (so it is pending there), answered in the background."""
    pending = PendingGet()
    get = await p.send_get()

    async def run() -> None:
        pending.response = await get.response()
        pending.time = trio.current_time()
        pending.completed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        yield pending


async def _upgrade(ws: WS) -> None:
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    await ws.send("5")


def _assert_no_noop(ws: WS) -> None:
    assert "6" not in ws.frames, ws.frames  # python-engineio sends NOOP on the WebSocket: wrong


async def test_probe_answered_and_pending_get_completed_with_noop(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with _pending_get(p) as done, eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        r = await done.wait(0.3)  # well before the first PING (300 ms after the handshake)
        assert (r.status_code, r.text) == (200, "6")
        await ws.send("5")
        await ws.send("4after")
        assert await ws.recv() == "4after"
        _assert_no_noop(ws)


@node_deviation(
    "Node completes the pending GET with 6 from a 100 ms interval timer, not at once on 2probe"
)
async def test_probe_completes_pending_get_at_once(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with _pending_get(p) as done, eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        t_probe = trio.current_time()
        r = await done.wait(0.25)
        assert (r.status_code, r.text) == (200, "6")
        assert done.time - t_probe < 0.05, done.time - t_probe


async def test_upgrade_switches_messages_to_websocket(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    await p.post_ok("4before")
    assert await p.get_packets() == ["4before"]
    async with eio_ws(engineio_server, sid=p.sid) as ws:
        await _upgrade(ws)
        for m in ("4one", b"\x00\xff", "4two"):
            await ws.send(m)
            assert await ws.recv() == m
        # still on the WebSocket after a few heartbeats
        assert await ws.expect_open_and_quiet(0.7) == []
        await ws.send("4three")
        assert await ws.recv() == "4three"
        _assert_no_noop(ws)


async def test_no_noop_ever_sent_on_websocket(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    """With a pending GET during the probe, the NOOP goes to the GET, never to the WebSocket."""
    p = await _session(http, engineio_server)
    async with _pending_get(p) as done, eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await done.wait()
        await ws.send("5")
        await ws.send("4x")
        assert await ws.recv() == "4x"
        assert await ws.expect_open_and_quiet(0.4) == []
        _assert_no_noop(ws)
    r = await done.wait()
    assert r.text == "6"


async def test_probe_and_upgrade_back_to_back(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        await ws.send("5")
        await ws.send("4hello")
        assert await ws.recv() == "3probe"
        assert await ws.recv() == "4hello"
        _assert_no_noop(ws)


@node_deviation(
    "with 2probe and 5 back to back, Node completes the pending GET with 1 "
    "(CLOSE of the polling transport) instead of 6"
)
async def test_probe_and_upgrade_back_to_back_with_pending_get(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with _pending_get(p) as done, eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        await ws.send("5")
        await ws.send("4hello")
        assert await ws.recv() == "3probe"
        assert await ws.recv() == "4hello"
        r = await done.wait()
        assert (r.status_code, r.text) == (200, "6")
        _assert_no_noop(ws)


async def test_polling_after_upgrade_is_400(http: httpx.AsyncClient, engineio_server: str) -> None:
    p = await _session(http, engineio_server)
    async with eio_ws(engineio_server, sid=p.sid) as ws:
        await _upgrade(ws)
        await ws.send("4x")
        assert await ws.recv() == "4x"  # the upgrade is complete
        r = await p.get()
        assert r.status_code == 400
        assert r.json() == {"code": 3, "message": "Bad request"}
        r = await p.post("4y")
        assert r.status_code == 400
        assert r.json() == {"code": 3, "message": "Bad request"}
        # the WebSocket is unaffected
        await ws.send("4z")
        assert await ws.recv() == "4z"


async def test_second_websocket_after_upgrade_accepted_then_closed(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with eio_ws(engineio_server, sid=p.sid) as ws:
        await _upgrade(ws)
        await ws.send("4x")
        assert await ws.recv() == "4x"
        # accepted at the HTTP level (no ConnectionRejected), then closed, without any frame
        async with eio_ws(engineio_server, sid=p.sid) as ws2:
            assert await ws2.expect_closed(within=AT_ONCE) == []
        # the first WebSocket still works
        await ws.send("4y")
        assert await ws.recv() == "4y"


async def test_packets_queued_during_upgrade_are_kept_in_order(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = await _session(http, engineio_server)
    async with _pending_get(p) as done, eio_ws(engineio_server, sid=p.sid) as ws:
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        assert (await done.wait()).text == "6"
        # Upgrade in progress, no GET pending: the echoes of these get queued ...
        await p.post_ok("4q1" + RS + "bAQI=" + RS + "4q2")
        await p.post_ok("4q3")
        # ... and are flushed on the WebSocket, in order, once the upgrade completes.
        await ws.send("5")
        await ws.send("4after")
        assert await ws.recv_n(5) == ["4q1", b"\x01\x02", "4q2", "4q3", "4after"]
        _assert_no_noop(ws)


async def test_upgrade_with_unknown_sid_is_refused_or_closed(engineio_server: str) -> None:
    from trio_websocket import ConnectionRejected

    try:
        async with eio_ws(engineio_server, sid="nope") as ws:
            assert await ws.expect_closed(within=AT_ONCE) == []
    except ConnectionRejected as exc:
        assert exc.status_code == 400
