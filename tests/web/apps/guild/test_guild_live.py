"""End to end: a bot posts a scripted guild stream; an authorised dashboard sees every live event
with its exact payload, the multi-client alerts, and analytics updates with the exact expected
figures, never more often than the throttle (driven by the test clock); an unauthorised user gets
``error`` and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.guild import (
    GUILD_EVENTS,
    Client,
    base_time,
    connected,
    post_events,
    start_server,
    token,
)
from tests.support.clients.scenarios import close_all, run
from tests.support.stamps import parse_iso

from . import scenario as sc

GUILD = "100000000000000001"


@pytest.fixture
def server(server_factory: Callable[..., Any]) -> Any:
    return start_server(server_factory)


def test_scripted_stream_live_events_alerts_and_throttled_analytics(server: Any) -> None:
    t = base_time()
    bot = token("bot-1", role="bot", guilds=[GUILD])

    async def scenario() -> None:
        dash, outsider, bot_socket = await connected(
            server,
            token("dash", guilds=[GUILD, "other"]),
            token("mallory", guilds=["200000000000000002"]),
            bot,
        )
        # the dashboard subscribes; the snapshot of an unused guild comes at once
        assert await dash.call("subscribe:guild", GUILD) == {"success": True, "guildId": GUILD}
        await dash.emit("subscribe:analytics", GUILD)
        (snapshot,) = [p for _, p in await dash.wait_count(1, "analytics:update")]
        assert snapshot["guildId"] == GUILD
        assert sc.data_of(snapshot) == sc.EMPTY
        assert snapshot["data"]["timestamp"] == snapshot["timestamp"]

        # an unauthorised user: `error` for both subscriptions, and nothing else
        await outsider.emit("subscribe:guild", GUILD)
        await outsider.emit("subscribe:analytics", GUILD)
        await outsider.wait_count(2, "error")

        # batch 1 over REST: answered after commit, then broadcast
        answer = post_events(server, GUILD, sc.first_batch(t), bot)
        assert answer.status_code == 200, answer.text
        first = sc.first_batch(t)
        assert answer.json() == {
            "success": True,
            "guildId": GUILD,
            "accepted": len(first),
            "stored": len(first),
            "duplicates": 0,
        }
        expected_live = sc.first_live(t)
        live = await dash.wait_count(len(expected_live), *GUILD_EVENTS)
        assert live == expected_live
        # the first change after a quiet interval is published at once (leading edge)
        updates = await dash.wait_count(2, "analytics:update")
        u1 = updates[1][1]
        assert u1["guildId"] == GUILD
        assert sc.data_of(u1) == sc.AFTER_FIRST

        # batch 2 over the socket, with an ack: inside the 30 s interval, so held back
        ack = await bot_socket.call("guild:event", GUILD, sc.second_batch(t))
        assert ack == {
            "success": True,
            "guildId": GUILD,
            "accepted": 1,
            "stored": 1,
            "duplicates": 0,
        }
        await dash.wait_count(len(expected_live) + 1, *GUILD_EVENTS)
        assert dash.events(*GUILD_EVENTS)[-1] == (
            "message:new",
            {
                "userId": "u2",
                "username": "bob",
                "channelId": "c2",
                "channelName": "random",
                "timestamp": sc.iso(t + 80),
            },
        )
        server.advance(29)
        server.advance(1)  # 30 s after the first update: the held-back one goes out
        updates = await dash.wait_count(3, "analytics:update")
        u2 = updates[2][1]
        assert sc.data_of(u2) == sc.AFTER_SECOND
        assert parse_iso(u2["timestamp"]) - parse_iso(u1["timestamp"]) >= 30.0

        # batch 3 changes no figure: no update, even after the interval
        answer = post_events(server, GUILD, sc.third_batch(t), bot)
        assert answer.status_code == 200, answer.text
        server.advance(30)
        # batch 4 changes the figures, more than 30 s after the last update: published at once
        answer = post_events(server, GUILD, {"events": sc.fourth_batch(t)}, bot)
        assert answer.status_code == 200, answer.text
        updates = await dash.wait_count(4, "analytics:update")
        assert sc.data_of(updates[3][1]) == sc.AFTER_FOURTH
        # every update so far, in order: the snapshot, then one per changed interval
        assert [sc.data_of(p) for p in dash.payloads("analytics:update")] == [
            sc.EMPTY,
            sc.AFTER_FIRST,
            sc.AFTER_SECOND,
            sc.AFTER_FOURTH,
        ]

        # a late subscriber gets the latest snapshot right away
        late = Client(server, token("late", guilds=[GUILD]))
        await late.connect()
        await late.emit("subscribe:analytics", GUILD)
        (snap,) = [p for _, p in await late.wait_count(1, "analytics:update")]
        assert sc.data_of(snap) == sc.AFTER_FOURTH

        # 7 days later every event has left the window: the figures empty out
        server.advance(7 * 86400 + 3600)
        updates = await dash.wait_count(5, "analytics:update")
        assert sc.data_of(updates[4][1]) == sc.EMPTY
        (_, again) = (await late.wait_count(2, "analytics:update"))[1]
        assert sc.data_of(again) == sc.EMPTY

        # unsubscribed: no more guild events for the dashboard
        assert await dash.call("unsubscribe:guild", GUILD) == {"success": True, "guildId": GUILD}
        await dash.call("unsubscribe:analytics", GUILD)
        count = len(dash.log)
        assert (await bot_socket.call("guild:event", GUILD, sc.second_batch(t + 7 * 86400)))[
            "success"
        ]
        await late.close()

        # the outsider: exactly two errors, no data (an ack round trip flushes its connection)
        assert await outsider.call("unsubscribe:guild", GUILD) == {
            "success": True,
            "guildId": GUILD,
        }
        message = f"Not authorised for guild {GUILD}"
        assert outsider.log == [("error", {"message": message}), ("error", {"message": message})]
        await dash.call("unsubscribe:guild", GUILD)
        assert len(dash.log) == count
        await close_all(dash, outsider, bot_socket)

    run(scenario)
