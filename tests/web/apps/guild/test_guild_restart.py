"""Guild events survive a restart: analytics after a restart equal analytics before, the users'
platform sets (multi-client alerts) and event ids (idempotency) carry over."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from tests.support.clients.guild import (
    GUILD_EVENTS,
    Client,
    base_time,
    connected,
    post_events,
    presence,
    start_server,
    token,
)
from tests.support.clients.scenarios import close_all, run

from . import scenario as sc

GUILD = "300000000000000003"


async def analytics_snapshot(server: Any) -> dict[str, Any]:
    client = Client(server, token("admin", role="admin"))
    await client.connect()
    await client.emit("subscribe:analytics", GUILD)
    (snapshot,) = [p for _, p in await client.wait_count(1, "analytics:update")]
    await client.close()
    return snapshot


def test_analytics_and_alert_state_survive_a_killed_server(
    server_factory: Callable[..., Any],
) -> None:
    t = base_time()
    data_dir = tempfile.mkdtemp(prefix="guild-restart-")
    bot = token("bot-r", role="bot", guilds=[GUILD])
    first = start_server(server_factory, data_dir=data_dir)
    marked = {**sc.second_batch(t)[0], "id": "evt-bob-1"}
    assert post_events(first, GUILD, sc.first_batch(t), bot).status_code == 200
    answer = post_events(first, GUILD, [marked], bot)
    assert answer.json()["stored"] == 1

    before: dict[str, Any] = {}

    async def read_before() -> None:
        before.update(await analytics_snapshot(first))

    run(read_before)
    assert sc.data_of(before) == sc.AFTER_SECOND
    assert first.proc is not None
    first.proc.kill()  # SIGKILL right after the acks: nothing acknowledged may be lost
    first.proc.wait()

    second = start_server(server_factory, data_dir=data_dir)

    async def after_restart() -> None:
        after = await analytics_snapshot(second)
        assert sc.data_of(after) == sc.data_of(before) == sc.AFTER_SECOND

        (dash,) = await connected(second, token("dash", guilds=[GUILD]))
        await dash.call("subscribe:guild", GUILD)
        # the same id again: acknowledged as a duplicate, neither stored nor broadcast
        again = post_events(second, GUILD, [marked], bot)
        assert again.json() == {
            "success": True,
            "guildId": GUILD,
            "accepted": 1,
            "stored": 0,
            "duplicates": 1,
        }
        # frank's set {desktop, mobile, web} was restored: repeating it is no change (no alert);
        # one platform is no alert; back to two platforms is a change (one alert)
        stream = [
            presence("u6", "frank", "online", ["desktop", "mobile", "web"], t + 200),
            presence("u6", "frank", "online", ["desktop"], t + 201),
            presence("u6", "frank", "dnd", ["mobile", "desktop"], t + 202),
        ]
        assert post_events(second, GUILD, stream, bot).status_code == 200
        events = await dash.wait_count(4, *GUILD_EVENTS)
        assert [name for name, _ in events] == [
            "presence:update",
            "presence:update",
            "presence:update",
            "alert:multiClient",
        ]
        assert events[3][1] == {
            "userId": "u6",
            "username": "frank",
            "platforms": ["desktop", "mobile"],
            "timestamp": sc.iso(t + 202),
        }
        await close_all(dash)

    run(after_restart)
