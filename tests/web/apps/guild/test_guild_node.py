"""The guild monitor with Node's socket.io-client (4.8.1): a dashboard sees a bot's events live
with the seed's payloads and the analytics figures; an outsider gets ``error`` only; a client
without a token gets ``connect_error``. Over WebSocket and over long-polling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.guild import base_time, start_server, token
from tests.support.processes import node_client

from . import scenario as sc


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return start_server(module_server_factory)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_node_dashboard_sees_bot_events_and_analytics(server: Any, transport: str) -> None:
    guild = f"node-{transport}"
    t = base_time()
    events = sc.first_batch(t)
    expected_live = sc.first_live(t)
    result = node_client(
        "guild_dashboard.js",
        {
            "url": server.url,
            "guild": guild,
            "dashboardToken": token("dash", guilds=[guild]),
            "outsiderToken": token("mallory", guilds=["elsewhere"]),
            "botToken": token("bot-n", role="bot", guilds=[guild]),
            "events": events,
            "expectLive": len(expected_live),
            "transports": [transport],
        },
    )
    assert result["ok"], result
    assert result["noToken"] == "Authentication failed: no token provided"
    assert result["subscribeAcks"] == [{"success": True, "guildId": guild}] * 2
    assert result["ingestAck"] == {
        "success": True,
        "guildId": guild,
        "accepted": len(events),
        "stored": len(events),
        "duplicates": 0,
    }
    dashboard = result["dashboard"]
    live = [[e, p] for e, p in dashboard if e != "analytics:update"]
    assert live == [list(item) for item in expected_live]
    updates = [p for e, p in dashboard if e == "analytics:update"]
    assert [sc.data_of(u) for u in updates] == [sc.EMPTY, sc.AFTER_FIRST]
    assert all(u["guildId"] == guild for u in updates)
    message = f"Not authorised for guild {guild}"
    assert result["outsider"] == [["error", {"message": message}]] * 2
