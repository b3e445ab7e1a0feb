"""Faults: a room actor that raises is restarted by its supervisor; other rooms go on.

The crash is made with the interop server's test-only ``crash-room`` event, which tells a room
actor a message it does not understand (it raises TypeError). A database that is briefly locked
delays writes but loses none: tests/actors/test_store.py,
``test_a_locked_database_delays_but_loses_nothing``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from tests.support.clients.raw import SioWS, sio_ws
from tests.support.clients.status import health, metrics
from tests.support.processes import interop
from tests.support.waiting import wait_until

LIVENESS_SPACING_SECONDS = 0.2  # between liveness checks after the crashes

CRASHES = 25
RESTARTS = 'switchboard_actor_restarts_total{kind="room"}'


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(module_server_factory)


async def bcast(sender: SioWS, ack: int, room: str, marker: str) -> None:
    message = {"room": room, "event": "news", "args": [marker]}
    assert await sender.call(ack, "bcast", message) == [{"ok": True}]


async def next_news(client: SioWS) -> str:
    while True:
        message = await client.recv()
        if isinstance(message, str) and message.startswith('42["news",'):
            return str(message[len('42["news","') : -2])


async def test_crashed_room_is_restarted_with_its_members(server: Any) -> None:
    """Fault: the actor of room ``r1`` raises while ``r2`` is busy. Expected: the supervisor
    restarts ``r1`` in place (its members kept: the next broadcast to it reaches both), ``r2``
    delivers throughout, ``switchboard_actor_restarts_total{kind="room"}`` counts the restart,
    and no client connection is affected."""
    before = (await metrics(server)).get(RESTARTS, 0.0)
    async with (
        sio_ws(server) as a,
        sio_ws(server) as b,
        sio_ws(server) as c,
        sio_ws(server) as sender,
    ):
        for client, room in ((a, "r1"), (b, "r1"), (c, "r2")):
            assert await client.call(1, "join", room) == [{"ok": True, "room": room}]
        await bcast(sender, 2, "r1", "before")
        assert await next_news(a) == await next_news(b) == "before"

        assert await sender.call(3, "crash-room", "r1") == [{"ok": True}]
        await bcast(sender, 4, "r2", "during")
        assert await next_news(c) == "during"

        async def restarted() -> bool:
            return (await metrics(server)).get(RESTARTS, 0.0) >= before + 1

        await wait_until(restarted, 5)
        await bcast(sender, 5, "r1", "after")
        assert await next_news(a) == await next_news(b) == "after"
        for client in (a, b, c):
            await client.echo(9, "alive")


async def test_a_room_crashing_over_and_over_never_takes_the_server_down(
    server_factory: Callable[..., Any],
) -> None:
    """Fault: one room's actor raises 25 times in a row (past the supervisor's
    ``max_restarts`` of 20 per minute). Expected (DESIGN.md: "one crashing room never takes
    down another room or the server"): the server keeps serving; another room still delivers;
    /health answers."""
    srv = interop(server_factory)
    async with sio_ws(srv) as victim, sio_ws(srv) as bystander, sio_ws(srv) as sender:
        assert await victim.call(1, "join", "doomed") == [{"ok": True, "room": "doomed"}]
        assert await bystander.call(1, "join", "fine") == [{"ok": True, "room": "fine"}]
        for i in range(CRASHES):
            assert await sender.call(100 + i, "crash-room", "doomed") == [{"ok": True}]
        # the supervisor backs off between restarts (10 ms doubling to 2 s): it reaches its
        # 20th restart after about 27 s; the 21st crash comes right after that restart

        async def twenty_restarts() -> bool:
            return (await metrics(srv)).get(RESTARTS, 0.0) >= 20

        await wait_until(twenty_restarts, 45)
        # then the server must keep serving: broadcasts, echoes and new clients, for 4 s
        for i in range(20):
            with trio.fail_after(3):
                await bcast(sender, 200 + i, "fine", f"still here {i}")
                assert await next_news(bystander) == f"still here {i}"
                await bystander.echo(300 + i, "alive")
                async with sio_ws(srv) as fresh:
                    assert await fresh.call(1, "join", f"new-{i}") == [
                        {"ok": True, "room": f"new-{i}"}
                    ]
            await trio.sleep(LIVENESS_SPACING_SECONDS)  # spacing of the checks, not a wait
        assert (await health(srv))["status"] == "ok"
        assert srv.alive
        assert (await metrics(srv)).get(RESTARTS, 0.0) >= 20
