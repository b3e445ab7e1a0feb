"""``analytics:*`` on the default namespace: subscribe, unsubscribe, request-once, dashboard rooms
and errors, with real clients. The push interval is an hour and the test moves the server's clock
by an hour, so each move is exactly one push."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.clients.analytics import Client, Switchboard, token
from tests.support.clients.scenarios import run

LIVE = "analytics:liveMetrics"


def test_subscriptions_requests_and_dashboard_rooms(
    switchboard: Callable[..., Switchboard],
) -> None:
    server = switchboard("--live-metrics-interval-seconds", "3600")
    assert server.event({"eventName": "login", "userId": "u1"}).status_code == 200

    async def scenario() -> None:
        names = "abcdef"
        c: dict[str, Client] = {}
        for name in names:
            c[name] = await Client(server.url).connect(auth={"token": token(name, "user")})
        a, b, cc, d, e, f = (c[n] for n in names)

        assert await a.call("analytics:subscribeLiveMetrics") == {
            "success": True,
            "subscribed": True,
        }
        first = await a.wait_for(LIVE)  # a subscriber gets the current metrics at once
        assert {m["name"]: m["value"] for m in first}["Active Users"] == 1
        await b.call("analytics:subscribeLiveMetrics")
        assert await b.call("analytics:joinDashboard", "d1") == {
            "success": True,
            "dashboardId": "d1",
        }
        await cc.call("analytics:joinDashboard", "d1")
        await d.call("analytics:joinDashboard", "d2")
        assert await d.call("analytics:leaveDashboard", "d2") == {
            "success": True,
            "dashboardId": "d2",
        }
        assert await e.call("analytics:requestLiveMetrics") == {"success": True}
        await f.call("analytics:subscribeLiveMetrics")
        assert await f.call("analytics:unsubscribeLiveMetrics") == {
            "success": True,
            "subscribed": False,
        }

        async def counts() -> dict[str, int]:
            # an acked round trip: whatever was pushed to a client before has arrived
            for client in c.values():
                await client.call("analytics:leaveDashboard", "none")
            return {n: len(c[n].received[LIVE]) for n in names}

        assert await counts() == {"a": 1, "b": 1, "c": 0, "d": 0, "e": 1, "f": 1}

        for push in (1, 2):
            server.advance(3600)
            await a.wait_for(LIVE, after=push)
            await b.wait_for(LIVE, after=push)
            await cc.wait_for(LIVE, after=push - 1)
            # subscribers and dashboard rooms get each push once (b is in both); nobody else
            assert await counts() == {
                "a": 1 + push,
                "b": 1 + push,
                "c": push,
                "d": 0,
                "e": 1,
                "f": 1,
            }
        pushed = cc.received[LIVE][-1]
        assert [m["name"] for m in pushed][:3] == [
            "Active Users",
            "Events per Minute",
            "Connected Clients",
        ]
        values = {m["name"]: m["value"] for m in pushed}
        assert values["Active Users"] == 0  # two hours later
        assert values["Connected Clients"] == 6
        assert b.received[LIVE][-1] == pushed  # the same packet for everyone
        for client in c.values():
            await client.disconnect()

    run(scenario)


def test_bad_dashboard_ids_get_analytics_error(switchboard: Callable[..., Switchboard]) -> None:
    server = switchboard()

    async def scenario() -> None:
        client = await Client(server.url).connect(auth={"token": token("x", "user")})
        cases: list[tuple[str, tuple[Any, ...], str]] = [
            ("analytics:joinDashboard", (123,), "dashboardId must be a string, got a number"),
            ("analytics:joinDashboard", (), "dashboardId must be a string, got nothing"),
            ("analytics:leaveDashboard", (["d"],), "dashboardId must be a string, got an array"),
            (
                "analytics:joinDashboard",
                ({"id": "d"},),
                "dashboardId must be a string, got an object",
            ),
            ("analytics:joinDashboard", ("",), "dashboardId must be 1 to 1024 characters"),
        ]
        for i, (event, args, problem) in enumerate(cases):
            message = f"{event}: {problem}"
            await client.emit(event, *args)  # without an ack: only analytics:error answers
            error = await client.wait_for("analytics:error", after=2 * i)
            assert error == {"message": message}
            answer = await client.call(event, *args)
            assert answer == {"success": False, "message": message}
            assert await client.wait_for("analytics:error", after=2 * i + 1) == {"message": message}
        # the connection is still fine
        assert await client.call("analytics:joinDashboard", "ok") == {
            "success": True,
            "dashboardId": "ok",
        }
        await client.disconnect()

    run(scenario)
