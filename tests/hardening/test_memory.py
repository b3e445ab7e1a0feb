"""Memory: 1,000 connect/disconnect cycles leave the server's memory and counts where they were.

(10,000 room joins/leaves with the same checks: tests/hardening/test_floods.py,
``test_join_spam_leaves_no_rooms_behind``.)

Measured on the server: RSS from /proc/<pid>/status (VmRSS); open connections, sessions and room
actors from GET /metrics (admin token); and the objects the garbage collector tracks after a
full collection (the interop server's test-only ``gc-collect`` event): RSS alone hides a leak of
a few KiB per connection behind the allocator's slack, the object count does not.

The server runs with short Engine.IO timers (ping interval and connect timeout 1 s): a closed
connection may stay referenced by a pending heartbeat or connect timer until that timer fires,
so "back to the start" is waited for (bounded), not expected at the very moment of the close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from tests.support.clients.raw import PATH, TOKEN, WAIT, raw_ws, sio_ws
from tests.support.clients.status import metrics
from tests.support.processes import interop
from tests.support.waiting import wait_until

from .helpers import rss_kib

CYCLES = 1000
CONCURRENCY = 20
RSS_SLACK_KIB = 8 * 1024
OBJECT_SLACK = 1000  # objects, for 1,000 cycles: less than one per connection


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(
        module_server_factory,
        "ping_interval_ms=1000",
        "ping_timeout_ms=2000",
        "connect_timeout_ms=1000",
    )


async def cycle(server: Any, http: httpx.AsyncClient, i: int, *, connect: bool = True) -> None:
    """One client: handshake, CONNECT, an echo, then hang up (every fifth over polling, closed
    with an Engine.IO CLOSE; the rest WebSocket, half on each path, dropped at TCP level).
    Without ``connect``: a WebSocket handshake only (no namespace, no token used)."""
    if not connect:
        async with raw_ws(server, "native" if i % 2 else "asgi", connect=False):
            return
    if i % 5 == 0:
        url = server.url + PATH
        params = {"EIO": "4", "transport": "polling", "token": TOKEN}
        r = await http.get(url, params=params)
        params["sid"] = r.text[1:].split('"sid":"')[1].split('"')[0]
        assert (await http.post(url, params=params, content='40\x1e421["echo",1]')).text == "ok"
        got = ""
        while "431[1]" not in got:
            got += (await http.get(url, params=params)).text
        assert (await http.post(url, params=params, content="1")).text == "ok"
        return
    async with raw_ws(server, "native" if i % 2 else "asgi") as ws:
        await ws.send_text(f'42{i}["echo",{i}]')
        assert await ws.text() == f"43{i}[{i}]"


async def run_cycles(server: Any, count: int, *, connect: bool = True) -> None:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        limiter = trio.CapacityLimiter(CONCURRENCY)

        async def one(i: int) -> None:
            async with limiter:
                await cycle(server, http, i, connect=connect)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(one, i)


async def settled(server: Any, key: str, value: float, timeout: float = 10.0) -> dict[str, float]:
    """Metrics once ``key`` has come back to ``value`` (bounded poll of a condition)."""
    m: dict[str, float] = {}

    async def back() -> bool:
        m.clear()
        m.update(await metrics(server))
        return m.get(key, 0.0) <= value

    await wait_until(back, timeout)
    return m


async def tracked_objects(server: Any) -> tuple[int, dict[str, int]]:
    async with sio_ws(server) as client:
        [answer] = await client.call(1, "gc-collect")
    return answer["objects"], answer["types"]


async def objects_back_to(server: Any, start: int, timeout: float = 5.0) -> None:
    """Wait (bounded) until the server tracks at most ``start + OBJECT_SLACK`` objects."""
    now, types = 0, {}

    async def collected() -> bool:
        nonlocal now, types
        now, types = await tracked_objects(server)
        return now <= start + OBJECT_SLACK

    await wait_until(
        collected,
        timeout,
        message=lambda: (
            f"{now - start} more objects tracked than before the cycles; commonest now: {types}"
        ),
    )


async def test_connect_disconnect_cycles_leave_counts_unchanged(server: Any) -> None:
    """Load: 1,000 full client lives (handshake, CONNECT, echo, disconnect), 20 at a time,
    on polling and both WebSocket paths. Expected: afterwards ``switchboard_connections`` and
    ``switchboard_namespace_sessions`` are back to their values before, the room actors too, and
    the handshake counter grew by exactly 1,000."""
    await run_cycles(server, 200)  # warm-up
    conn_ws = 'switchboard_connections{transport="websocket"}'
    conn_poll = 'switchboard_connections{transport="polling"}'
    sessions = 'switchboard_namespace_sessions{namespace="/"}'
    before = await settled(server, conn_ws, 0)
    await run_cycles(server, CYCLES)
    after = await settled(server, conn_ws, before[conn_ws])
    after = await settled(server, conn_poll, before[conn_poll])
    after = await settled(server, sessions, before[sessions])
    assert after['switchboard_actors{kind="room"}'] == before['switchboard_actors{kind="room"}']
    assert after["switchboard_handshakes_total"] - before["switchboard_handshakes_total"] == CYCLES


async def test_unauthenticated_handshake_cycles_free_everything(server: Any) -> None:
    """Load: 1,000 WebSocket handshakes (both paths) that hang up without joining a namespace.
    Expected: once the connections' timers have fired (1 s here), the server tracks no more
    objects than before (within 1,000), and its RSS is within 8 MB of the start."""
    await run_cycles(server, 200, connect=False)
    start, _ = await tracked_objects(server)
    rss_before = rss_kib(server)
    await run_cycles(server, CYCLES, connect=False)
    await objects_back_to(server, start)
    growth = rss_kib(server) - rss_before
    assert growth < RSS_SLACK_KIB, f"RSS grew by {growth} KiB over {CYCLES} cycles"


async def test_authenticated_cycles_free_everything(server: Any) -> None:
    """Load: 1,000 full client lives (JWT, CONNECT, echo, disconnect), on polling and both
    WebSocket paths. Expected: once the connections' timers have fired (1 s here), the server
    tracks no more objects than before (within 1,000: nothing per connection is kept), and its
    RSS is within 8 MB of its value after a warm-up of 200 cycles."""
    await run_cycles(server, 200)
    start, _ = await tracked_objects(server)
    rss_before = rss_kib(server)
    await run_cycles(server, CYCLES)
    await objects_back_to(server, start)
    growth = rss_kib(server) - rss_before
    assert growth < RSS_SLACK_KIB, f"RSS grew by {growth} KiB over {CYCLES} cycles"
