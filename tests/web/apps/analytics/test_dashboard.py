"""The metrics dashboard end to end: a scripted set of events with known timestamps (the server's
clock moved to a known time of day), then the exact ``dashboard_data``, ``events`` and
``analytics:liveMetrics`` a real client receives; restart and SIGKILL keep every number."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import pytest

from tests.support.clients.analytics import Client, Switchboard, metrics_refusal, token
from tests.support.clients.scenarios import run
from tests.support.stamps import iso

HOUR = 3600.0
DAY = 86400.0
FAST_PUSH = ("--dashboard-push-interval-seconds", "0.2")


def move_to_noon(server: Switchboard) -> float:
    """Move the server's clock to 12:00:30 UTC tomorrow; returns that time (epoch seconds)."""
    real = time.time()
    target = (real // DAY + 1) * DAY + 12 * HOUR + 30
    server.advance(target - real)
    return target


def script(t: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(the 24 h before, earlier today, just now) relative to ``t``."""
    before = [
        {"id": "e9", "eventName": "login", "userId": "p1", "country": "US", "device": "web",
         "timestamp": iso(t - DAY - 120)},
        {"id": "e10", "eventName": "login", "userId": "p2", "timestamp": iso(t - DAY - 1800)},
        {"id": "e11", "eventName": "purchase", "userId": "p1", "timestamp": iso(t - 30 * HOUR)},
        {"id": "e12", "eventName": "login", "userId": "p3", "timestamp": (t - 40 * HOUR) * 1000},
    ]  # fmt: skip
    earlier = [
        {"id": "e5", "eventName": "login", "userId": "u3", "country": "US", "device": "tablet",
         "timestamp": iso(t - 1800)},
        {"id": "e6", "eventName": "signup", "userId": "u1", "country": "US", "device": "mobile",
         "timestamp": iso(t - 2 * HOUR)},
        {"id": "e7", "eventName": "login", "userId": "u4", "country": "FR", "device": "web",
         "referrer": "google.com", "timestamp": iso(t - 3 * HOUR)},
        {"id": "e8", "eventName": "purchase", "userId": "u4", "country": "FR", "device": "web",
         "timestamp": iso(t - 3 * HOUR - 10)},
    ]  # fmt: skip
    now = [
        {"id": "e1", "eventName": "login", "userId": "u1", "country": "US", "device": "mobile",
         "referrer": "google.com"},
        {"id": "e2", "eventName": "purchase", "userId": "u2", "country": "EG", "device": "web",
         "referrer": "twitter.com"},
        {"id": "e3", "type": "pageview", "page": "/home", "session_id": "s1", "country": "US",
         "metadata": {"device": "mobile", "referrer": "google.com"}},
        {"id": "e4", "type": "pageview", "page": "/products", "session_id": "s1", "country": "US",
         "metadata": {"device": "mobile"}, "timestamp": iso(t - 60)},
    ]  # fmt: skip
    return before, earlier, now


def post_script(server: Switchboard, t: float) -> None:
    before, earlier, now = script(t)
    assert server.batch(before).status_code == 200
    assert server.batch({"events": earlier}).status_code == 200
    for event in now:
        answer = server.event(event)
        assert answer.status_code == 200, answer.text


def expected_dashboard(t: float) -> dict[str, Any]:
    hours = {t // HOUR * HOUR - 3 * HOUR: 2, t // HOUR * HOUR - 2 * HOUR: 1,
             t // HOUR * HOUR - HOUR: 2, t // HOUR * HOUR: 3}  # fmt: skip
    first = t // HOUR * HOUR - 23 * HOUR
    return {
        "totalEvents": 8,
        "totalEventsChange": 100.0,  # 8 against 4
        "activeUsers": 3,  # u1, u2, s1
        "activeUsersChange": 200.0,  # 3 against 1 (p1)
        "eventsPerHour": 5,
        "eventsPerHourChange": 150.0,  # 5 against 2
        "conversionRate": 60.0,  # u1 (signup), u2, u4 (purchase) of u1 u2 u3 u4 s1
        "conversionRateChange": 80.02,  # 60 against 33.33 (p1 of p1 p2 p3)
        "eventVolumeData": [
            {"time": iso(first + i * HOUR), "events": hours.get(first + i * HOUR, 0)}
            for i in range(24)
        ],
        "topEvents": [
            {"name": "login", "count": 3},
            {"name": "pageview", "count": 2},
            {"name": "purchase", "count": 2},
            {"name": "signup", "count": 1},
        ],
        "eventDistribution": [
            {"name": "login", "value": 3, "percentage": 37.5},
            {"name": "pageview", "value": 2, "percentage": 25.0},
            {"name": "purchase", "value": 2, "percentage": 25.0},
            {"name": "signup", "value": 1, "percentage": 12.5},
        ],
        "geographicDistribution": [
            {"country": "US", "count": 5},
            {"country": "FR", "count": 2},
            {"country": "EG", "count": 1},
        ],
        "deviceTypes": [
            {"device": "mobile", "count": 4},
            {"device": "web", "count": 3},
            {"device": "tablet", "count": 1},
        ],
        "topReferrers": [
            {"referrer": "google.com", "count": 3},
            {"referrer": "twitter.com", "count": 1},
        ],
    }


def expected_live_events(t: float) -> list[tuple[Any, ...]]:
    """(id, eventName, userId, country, device, timestamp or None, timeAgo or None), newest
    first; None where the server stamped the event itself."""
    return [
        ("e4", "pageview", "s1", "US", "mobile", iso(t - 60), "1m ago"),
        ("e3", "pageview", "s1", "US", "mobile", None, None),
        ("e2", "purchase", "u2", "EG", "web", None, None),
        ("e1", "login", "u1", "US", "mobile", None, None),
        ("e8", "purchase", "u4", "FR", "web", iso(t - 3 * HOUR - 10), "3h ago"),
        ("e7", "login", "u4", "FR", "web", iso(t - 3 * HOUR), "3h ago"),
        ("e6", "signup", "u1", "US", "mobile", iso(t - 2 * HOUR), "2h ago"),
        ("e5", "login", "u3", "US", "tablet", iso(t - 1800), "30m ago"),
        ("e12", "login", "p3", "", "", iso(t - 40 * HOUR), "1d ago"),
        ("e11", "purchase", "p1", "", "", iso(t - 30 * HOUR), "1d ago"),
        ("e10", "login", "p2", "", "", iso(t - DAY - 1800), "1d ago"),
        ("e9", "login", "p1", "US", "web", iso(t - DAY - 120), "1d ago"),
    ]


def check_live_events(live: list[dict[str, Any]], t: float) -> None:
    expected = expected_live_events(t)
    assert len(live) == len(expected)
    for item, (id_, name, user, country, device, stamp, ago) in zip(live, expected, strict=True):
        assert item["id"] == id_
        assert (item["eventName"], item["userId"], item["country"]) == (name, user, country)
        assert item["device"] == device
        if stamp is None:  # stamped by the server on arrival, within the test's run
            assert iso(t) <= item["timestamp"] <= iso(t + 60)
            assert re.fullmatch(r"\d{1,2}s ago", item["timeAgo"])
        else:
            assert (item["timestamp"], item["timeAgo"]) == (stamp, ago)


def without_performance(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("performanceMetrics", "liveEvents")}


def test_dashboard_events_and_live_metrics_show_the_exact_numbers(
    switchboard: Callable[..., Switchboard],
) -> None:
    server = switchboard(*FAST_PUSH)
    t = move_to_noon(server)

    async def scenario() -> None:
        dash = await Client(server.url, "/ws/metrics").connect(auth={"token": token()})
        first = await dash.wait_for("dashboard_data")  # right after connect
        assert first["totalEvents"] == 0 and first["liveEvents"] == []
        assert len(first["eventVolumeData"]) == 24
        assert first["performanceMetrics"] == {
            "avgResponseTime": 0.0,
            "processingRate": 100.0,
            "errorRate": 0.0,
            "uptime": 100.0,
        }

        post_script(server, t)
        refused = server.event({"eventName": "login", "country": 1})
        assert refused.status_code == 400

        data = await dash.wait_for(
            "dashboard_data",
            lambda d: d["totalEvents"] == 8 and d["performanceMetrics"]["errorRate"] > 0,
        )
        assert without_performance(data) == expected_dashboard(t)
        check_live_events(data["liveEvents"], t)
        perf = data["performanceMetrics"]
        assert perf["avgResponseTime"] > 0
        assert (perf["processingRate"], perf["errorRate"], perf["uptime"]) == (
            100.0,
            14.29,  # 1 refused of 7 ingest requests
            100.0,
        )
        # the REST view shows the same numbers
        assert without_performance(server.dashboard()) == expected_dashboard(t)

        # `events`: every committed event once, in commit order, in at most one push per request
        await dash.wait_for("events", lambda _: sum(map(len, dash.received["events"])) >= 12)
        pushes = dash.received["events"]
        assert 1 <= len(pushes) <= 6
        items = [item for push in pushes for item in push]
        order = ["e9", "e10", "e11", "e12", "e5", "e6", "e7", "e8", "e1", "e2", "e3", "e4"]
        assert [item["id"] for item in items] == order
        by_id = {item["id"]: item for item in items}
        assert by_id["e5"] == {
            "id": "e5",
            "eventName": "login",
            "userId": "u3",
            "country": "US",
            "device": "tablet",
            "timestamp": iso(t - 1800),
            "timeAgo": "30m ago",
            "sessionId": None,
            "page": None,
            "referrer": None,
            "properties": None,
        }
        e3 = by_id["e3"]
        assert (e3["userId"], e3["sessionId"], e3["page"], e3["referrer"]) == (
            "s1",
            "s1",
            "/home",
            "google.com",
        )

        # analytics:liveMetrics on the default namespace
        live = await Client(server.url).connect(auth={"token": token("viewer", "user")})
        assert await live.call("analytics:requestLiveMetrics") == {"success": True}
        metrics = live.received["analytics:liveMetrics"][0]
        assert [m["name"] for m in metrics] == [
            "Active Users",
            "Events per Minute",
            "Connected Clients",
            "Messages per Second",
            "CPU Usage",
            "Memory Usage",
        ]
        values = {m["name"]: m["value"] for m in metrics}
        assert values["Active Users"] == 3
        assert values["Events per Minute"] == 0.8  # e1..e4 in the last 5 minutes
        assert values["Connected Clients"] == 2
        assert values["Messages per Second"] >= 0
        assert 0 <= values["CPU Usage"] <= 400
        assert 10 < values["Memory Usage"] < 2000
        assert all(iso(t) <= m["timestamp"] <= iso(t + 60) for m in metrics)

        # a day later everything has moved into the "24 h before" window
        pushed = len(dash.received["dashboard_data"])
        server.advance(DAY)
        later = await dash.wait_for("dashboard_data", lambda d: d["totalEvents"] == 0, after=pushed)
        changes = ("totalEventsChange", "activeUsersChange", "eventsPerHourChange")
        assert [later[k] for k in changes] == [-100.0, -100.0, -100.0]  # 0 against 8, 3, 5
        assert (later["conversionRate"], later["conversionRateChange"]) == (0.0, -100.0)
        assert len(later["liveEvents"]) == 12 and later["liveEvents"][0]["timeAgo"] == "1d ago"
        await live.disconnect()
        await dash.disconnect()

    run(scenario)


def test_metrics_namespace_needs_a_valid_token(switchboard: Callable[..., Switchboard]) -> None:
    server = switchboard()

    attempt = partial(metrics_refusal, server.url)

    async def scenario() -> None:
        assert await attempt() == "Authentication failed: no token provided"
        assert await attempt(auth={"token": "nope"}) == "Authentication failed: invalid token"
        assert await attempt(url=f"{server.url}?token={token()}") is None
        assert await attempt(headers={"Authorization": f"Bearer {token()}"}) is None
        assert await attempt(auth={"token": token("someone", "user")}) is None

    run(scenario)


def test_anonymous_dashboards_when_enabled(switchboard: Callable[..., Switchboard]) -> None:
    server = switchboard("--anonymous-dashboards", "true")
    assert httpx.get(server.url + "/api/metrics/dashboard", timeout=5).status_code == 200

    async def scenario() -> None:
        dash = await Client(server.url, "/ws/metrics").connect()
        assert (await dash.wait_for("dashboard_data"))["totalEvents"] == 0
        await dash.disconnect()

    run(scenario)


def test_a_burst_of_10000_events_is_a_few_packets(switchboard: Callable[..., Switchboard]) -> None:
    server = switchboard()

    async def scenario() -> None:
        dash = await Client(server.url, "/ws/metrics").connect(auth={"token": token()})
        await dash.wait_for("dashboard_data")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(b: int) -> None:
                events = [{"eventName": "tick", "userId": f"u{b}-{i}"} for i in range(1000)]
                answer = await http.post("/api/events/batch", json=events)
                assert answer.status_code == 200

            await asyncio.gather(*(post(b) for b in range(10)))  # concurrent: group commits
        assert server.dashboard()["totalEvents"] == 10_000
        await dash.wait_for("events", lambda _: sum(map(len, dash.received["events"])) >= 10_000)
        pushes = dash.received["events"]
        assert sum(map(len, pushes)) == 10_000
        assert len(pushes) <= 20  # at most 1,000 per packet, at most one push per 250 ms
        ids = [item["id"] for push in pushes for item in push]
        assert len(set(ids)) == 10_000
        await dash.disconnect()

    run(scenario)


def test_a_restart_shows_the_same_numbers(switchboard: Callable[..., Switchboard]) -> None:
    first = switchboard()
    t = move_to_noon(first)  # far from an hour boundary: the restart cannot shift the buckets
    post_script(first, t)
    before = first.dashboard()
    assert before["totalEvents"] == 8
    offset = first.advance(0)
    first.stop()

    second = switchboard(data_dir=first.data_dir)
    second.advance(offset)
    after = second.dashboard()
    assert without_performance(after) == without_performance(before)
    assert [e["id"] for e in after["liveEvents"]] == [e["id"] for e in before["liveEvents"]]
    assert [e["timestamp"] for e in after["liveEvents"]] == [
        e["timestamp"] for e in before["liveEvents"]
    ]
    # the visitor counters are rebuilt too
    stats = second.event({"type": "pageview", "page": "/home", "session_id": "s2"}).json()
    assert stats["data"]["current_stats"]["total_active"] == 2  # s1 and s2
    assert 0 < after["performanceMetrics"]["uptime"] <= 100.0


@pytest.mark.parametrize("concurrent", [1, 4])
def test_sigkill_right_after_2xx_loses_nothing(
    switchboard: Callable[..., Switchboard], concurrent: int
) -> None:
    server = switchboard()

    async def post_all() -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def one(n: int) -> int:
                events = [{"eventName": "order", "userId": f"c{n}-{i}"} for i in range(500)]
                answer = await http.post("/api/events/batch", json=events)
                assert answer.status_code == 200
                return int(answer.json()["data"]["stored"])

            results = await asyncio.gather(*(one(n) for n in range(concurrent)))
            server.kill()  # the moment the last 2xx arrived
            return sum(results)

    stored = run(post_all)
    assert stored == 500 * concurrent
    restarted = switchboard(data_dir=server.data_dir)
    dashboard = restarted.dashboard()
    assert dashboard["totalEvents"] == stored
    assert dashboard["activeUsers"] == stored  # every user id is distinct
