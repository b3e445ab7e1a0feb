"""docs/protocol.md "Heartbeat": PING every pingInterval, closed by a timer pingTimeout after an
unanswered PING.  These tests read raw frames (no automatic PONG)."""

from __future__ import annotations

import httpx
import trio

from .helpers import EARLY, EIO_PATH, LATE, PING_INTERVAL, PING_TIMEOUT, Polling, eio_ws, sio_ws


async def test_websocket_ping_every_interval(engineio_server: str) -> None:
    async with eio_ws(engineio_server) as ws:
        t_prev = ws.requested_at  # type: ignore[attr-defined]
        for _ in range(3):
            msg = await ws.recv_raw(timeout=PING_INTERVAL + LATE)
            now = trio.current_time()
            assert msg == "2"
            assert now - t_prev >= PING_INTERVAL - EARLY, now - t_prev
            await ws.send("3")
            t_prev = now
        await ws.send("4alive")  # still open after three answered PINGs
        assert await ws.recv_raw() == "4alive"


async def test_websocket_no_pong_closes_at_ping_timeout(engineio_server: str) -> None:
    async with eio_ws(engineio_server) as ws:
        t0 = ws.requested_at  # type: ignore[attr-defined]
        assert await ws.recv_raw(timeout=PING_INTERVAL + LATE) == "2"
        t_ping = trio.current_time()
        assert t_ping - t0 >= PING_INTERVAL - EARLY
        # do not answer: closed by a timer at t_ping + pingTimeout (not later by a sweep)
        frames = await ws.expect_closed(within=PING_TIMEOUT + LATE)
        t_closed = trio.current_time()
        assert frames == []
        assert t_closed - t_ping >= PING_TIMEOUT - EARLY, t_closed - t_ping


async def test_polling_ping_every_interval(http: httpx.AsyncClient, engineio_server: str) -> None:
    p = Polling(http, engineio_server, EIO_PATH)
    await p.handshake()
    assert p.handshake_sent_at is not None
    t_prev = p.handshake_sent_at
    for _ in range(2):
        r = await p.get(timeout=PING_INTERVAL + LATE)
        now = trio.current_time()
        assert (r.status_code, r.text) == (200, "2")
        assert now - t_prev >= PING_INTERVAL - EARLY, now - t_prev
        await p.post_ok("3")
        t_prev = now
    await p.post_ok("4alive")
    assert (await p.get()).text == "4alive"


async def test_polling_no_pong_closes_at_ping_timeout(
    http: httpx.AsyncClient, engineio_server: str
) -> None:
    p = Polling(http, engineio_server, EIO_PATH)
    await p.handshake()
    r = await p.get(timeout=PING_INTERVAL + LATE)
    assert (r.status_code, r.text) == (200, "2")
    t_ping = trio.current_time()
    # no PONG; the pending GET is completed with CLOSE when the timer fires
    r = await p.get(timeout=PING_TIMEOUT + LATE)
    t_closed = trio.current_time()
    assert (r.status_code, r.text) == (200, "1")
    assert t_closed - t_ping >= PING_TIMEOUT - EARLY, t_closed - t_ping
    r = await p.get()
    assert r.status_code == 400
    assert r.json() == {"code": 1, "message": "Session ID unknown"}


async def test_socketio_mode_heartbeat(socketio_server: str) -> None:
    """Both modes use pingInterval 300 / pingTimeout 200."""
    async with sio_ws(socketio_server) as ws:
        await ws.send("40")
        assert (await ws.recv_raw()).startswith('40{"sid":')  # type: ignore[union-attr]
        assert await ws.recv_raw() == '42["auth",{}]'
        t0 = ws.requested_at  # type: ignore[attr-defined]
        assert await ws.recv_raw(timeout=PING_INTERVAL + LATE) == "2"
        t_ping = trio.current_time()
        assert t_ping - t0 >= PING_INTERVAL - EARLY
        assert await ws.expect_closed(within=PING_TIMEOUT + LATE) == []
        assert trio.current_time() - t_ping >= PING_TIMEOUT - EARLY
