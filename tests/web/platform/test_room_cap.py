"""``max_rooms_per_socket``: one socket cannot hold rooms without bound. Every event that joins
rooms (``analytics:joinDashboard``, ``analytics:subscribeLiveMetrics``, guild subscriptions, chat
joins) is refused past it with an answer naming the setting; leaving one makes room again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio

from tests.support.clients.chat import Client, create_chat, start_server, token
from tests.support.clients.scenarios import close_all, run

CAP = 3
WAIT = 5.0


async def default_namespace(server: Any) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url,
        auth={"token": token("root", role="admin")},
        transports=["websocket"],
        wait_timeout=WAIT,
    )
    return client


def refused(answer: Any) -> bool:
    return answer["success"] is False and "max_rooms_per_socket" in answer["message"]


def test_every_join_is_refused_past_the_per_socket_room_cap(
    server_factory: Callable[..., Any],
) -> None:
    server = start_server(
        server_factory,
        "--max-rooms-per-socket",
        str(CAP),
        "--guild-max-subscriptions-per-socket",
        "50",
    )
    chats = [create_chat(server, "kim", name=f"c{i}") for i in range(CAP + 1)]

    async def scenario() -> None:
        root = await default_namespace(server)
        for i in range(CAP):
            answer = await root.call("analytics:joinDashboard", f"d{i}", timeout=WAIT)
            assert answer["success"] is True, answer
        assert refused(await root.call("analytics:joinDashboard", "one-more", timeout=WAIT))
        assert refused(await root.call("analytics:subscribeLiveMetrics", timeout=WAIT))
        assert refused(await root.call("subscribe:guild", "g1", timeout=WAIT))
        assert refused(await root.call("subscribe:analytics", "g1", timeout=WAIT))
        left = await root.call("analytics:leaveDashboard", "d0", timeout=WAIT)
        assert left["success"] is True
        assert (await root.call("subscribe:guild", "g1", timeout=WAIT))["success"] is True
        await root.disconnect()

        kim = await Client(server, "kim").connect()
        for chat in chats[:CAP]:
            await kim.ok("join:chat", {"chatId": chat})
        answer = await kim.call("join:chat", {"chatId": chats[CAP]})
        assert refused(answer), answer
        await kim.ok("leave:chat", {"chatId": chats[0]})
        await kim.ok("join:chat", {"chatId": chats[CAP]})
        await close_all(kim)

    run(scenario)
