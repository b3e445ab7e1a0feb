"""The raw visitor feed: auth, every kind of bad client message, dashboard actions, both
listeners (``/ws/visitors`` and ``--visitor-ws-port``), ``/api/status``, token expiry, the alert
and slow consumers; and the REST auth policy."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.support.clients.visitors import WAIT, Feed, open_feed, token
from tests.support.processes import free_port
from tests.support.stamps import parse_iso as parse

ALERT = "High visitor activity detected!"


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"ws": free_port()}


@pytest.fixture(scope="module")
def server(module_visitor_server: Any, ports: dict[str, int]) -> Any:
    return module_visitor_server("--visitor-ws-port", str(ports["ws"]))


def pageviews(prefix: str, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"type": "pageview", "page": "/home", "session_id": f"{prefix}{i}", **extra}
        for i in range(1, count + 1)
    ]


async def drain(feed: Feed, kinds: list[str]) -> list[dict[str, Any]]:
    return [await feed.expect(kind) for kind in kinds]


async def test_refused_dashboards_are_told_why(server: Any, ports: dict[str, int]) -> None:
    cases = [
        (server.feed_url(), "Authentication failed: no token provided"),
        (server.feed_url(query="token=nope"), "Authentication failed: invalid token"),
        (
            server.feed_url(query=f"token={token(ttl=-10)}"),
            "Authentication failed: token expired",
        ),
        (f"ws://127.0.0.1:{ports['ws']}/", "Authentication failed: no token provided"),
    ]
    for url, message in cases:
        async with open_feed(url) as feed:
            assert await feed.expect("error") == {"message": message}
            reason = await feed.closed()
            assert (reason.code, reason.reason) == (1008, message)
    with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
        async with open_feed(f"ws://127.0.0.1:{ports['ws']}/elsewhere?token={token()}"):
            pass
    assert rejected.value.status_code == 404
    with pytest.raises(trio_websocket.ConnectionRejected) as forbidden:
        async with open_feed(server.feed_url(), [("Origin", "http://evil.example")]):
            pass
    assert forbidden.value.status_code == 403
    too_long = await server.get("/api/analytics/summary", country="x" * 1025)
    assert (too_long.status_code, too_long.json()) == (
        400,
        {"success": False, "message": "country: longer than 1024 characters"},
    )
    for path in ("/api/analytics/summary", "/api/analytics/sessions", "/api/analytics/detailed"):
        answer = await server.get(path, auth=False)
        assert answer.status_code == 401
        assert answer.json() == {
            "success": False,
            "message": "Authentication failed: no token provided",
        }
        async with httpx.AsyncClient(timeout=WAIT) as client:
            bad = await client.get(server.url + path, headers={"Authorization": "Bearer x.y.z"})
        assert (bad.status_code, bad.json()["message"]) == (
            401,
            "Authentication failed: invalid token",
        )


async def test_bad_client_messages_get_an_error_and_the_socket_stays(server: Any) -> None:
    headers = [("Authorization", f"Bearer {token()}")]
    async with open_feed(server.feed_url(), headers) as feed:
        await feed.expect("user_connected")
        unknown = "expected request_detailed_stats or track_dashboard_action"
        cases: list[tuple[Any, str]] = [
            (b"\x00binary", "Binary messages are not supported: send JSON text"),
            ("{not json", "Invalid JSON"),
            ("[1, 2]", "A message must be a JSON object with a string `type`"),
            ({"filter": {}}, "A message must be a JSON object with a string `type`"),
            ({"type": 7}, "A message must be a JSON object with a string `type`"),
            ({"type": "subscribe"}, f"Unknown message type 'subscribe': {unknown}"),
            (
                {"type": "request_detailed_stats", "filter": "India"},
                "request_detailed_stats: filter: Expected `object | null`, got `str`",
            ),
            (
                {"type": "request_detailed_stats", "filter": {"country": 1}},
                "request_detailed_stats: filter.country: Expected `str | null`, got `int`",
            ),
            (
                {"type": "track_dashboard_action"},
                "track_dashboard_action: Object missing required field `action`",
            ),
            (
                {"type": "track_dashboard_action", "action": ""},
                "track_dashboard_action: action: must be 1 to 1024 characters",
            ),
            (
                {"type": "track_dashboard_action", "action": "x", "details": [1]},
                "track_dashboard_action: details: Expected `object | null`, got `array`",
            ),
            ("[" * 3000 + "]" * 3000, "Invalid JSON: nested too deeply"),
            (
                json.dumps({"type": "x", "pad": "y" * 70000}),
                "Message too large: at most 65536 bytes",
            ),
        ]
        for message, error in cases:
            await feed.send(message)
            assert await feed.expect("error") == {"message": error}, str(message)[:80]
        # still connected and served
        detailed = await feed.detailed(country="Nowhere")
        assert detailed["filter"] == {"country": "Nowhere", "page": None}
        assert detailed["sessions_today"] == 0


async def test_both_listeners_share_one_feed_with_actions_and_status(visitor_server: Any) -> None:
    ports = {"ws": free_port()}
    server = visitor_server("--visitor-ws-port", str(ports["ws"]))  # its own: exact counts
    async with open_feed(server.feed_url(query=f"token={token()}")) as a:
        first = await a.expect("user_connected")
        assert first["total_dashboards"] == 1
        async with open_feed(f"ws://127.0.0.1:{ports['ws']}/?token={token()}") as b:
            joined = await b.expect("user_connected")
            assert joined["total_dashboards"] == 2
            assert await a.expect("user_connected") == joined
            status = await server.ok("/api/status")
            assert status["status"] == "ok"
            assert status["version"] == "0.1.0"
            assert status["websocket"]["dashboards"] == {
                "/ws/visitors": 1,
                "visitor_ws_port": 1,
                "/ws/metrics": 0,
            }
            assert status["websocket"]["total_dashboards"] == 2
            assert status["websocket"]["visitor_ws_port"] == ports["ws"]
            assert status["uptime_seconds"] > 0
            actions_before = status["websocket"]["dashboard_actions"]

            event = {"type": "pageview", "page": "/x", "session_id": "both", "country": "Peru"}
            data = await server.event(event)
            for feed in (a, b):
                update = await feed.expect("visitor_update")
                assert update["event"]["id"] == data["event_id"]
                assert update["stats"] == data["current_stats"]
                assert (await feed.expect("session_activity"))["session_id"] == "both"

            await b.send(
                {
                    "type": "track_dashboard_action",
                    "action": "filter_applied",
                    "details": {"filterType": "country", "value": "India"},
                }
            )
            recorded = await b.expect("dashboard_action_recorded")
            assert recorded["action"] == "filter_applied"
            assert recorded["id"] >= 1
            parse(recorded["recorded_at"])
            status = await server.ok("/api/status")
            assert status["websocket"]["dashboard_actions"] == actions_before + 1
        left = await a.expect("user_disconnected")
        assert left["total_dashboards"] == 1
        async with open_feed(f"ws://127.0.0.1:{ports['ws']}/?token={token()}") as c:
            assert (await c.expect("user_connected"))["total_dashboards"] == 2
            assert (await a.expect("user_connected"))["total_dashboards"] == 2
            await a.ws.aclose()  # the /ws/visitors dashboard leaves
            assert (await c.expect("user_disconnected"))["total_dashboards"] == 1


async def test_a_dashboard_is_closed_when_its_token_expires(server: Any) -> None:
    async with open_feed(server.feed_url(query=f"token={token(ttl=600)}")) as feed:
        await feed.expect("user_connected")
        await server.advance_async(601)
        message = "Authentication failed: token expired"
        assert await feed.expect("error") == {"message": message}
        reason = await feed.closed()
        assert (reason.code, reason.reason) == (1008, message)


async def test_alert_when_visitors_exceed_the_threshold_at_most_once_a_minute(
    visitor_server: Any,
) -> None:
    server = visitor_server("--anonymous-dashboards", "true")
    assert (await server.get("/api/analytics/summary", auth=False)).status_code == 200
    async with open_feed(server.feed_url()) as feed:  # anonymous dashboards: no token needed
        await feed.expect("user_connected")
        answer = await server.post("/api/events/batch", pageviews("a", 10))
        assert answer.status_code == 200, answer.text
        await drain(feed, ["visitor_update", "session_activity"] * 10)
        await feed.detailed()  # the next message after the batch: no alert at 10

        await server.event(pageviews("a", 11)[-1])
        await drain(feed, ["visitor_update", "session_activity"])
        assert await feed.expect("alert") == {
            "level": "info",
            "message": ALERT,
            "details": {"visitors_last_minute": 11, "threshold": 10},
        }
        more = [{**e, "session_id": e["session_id"] + "x"} for e in pageviews("a", 5)]
        assert (await server.post("/api/events/batch", more)).status_code == 200
        await drain(feed, ["visitor_update", "session_activity"] * 5)
        await feed.detailed()  # 16 visitors, but an alert went out less than a minute ago

        await server.advance_async(61)
        assert (await server.post("/api/events/batch", pageviews("b", 11))).status_code == 200
        await drain(feed, ["visitor_update", "session_activity"] * 11)
        assert await feed.expect("alert") == {
            "level": "info",
            "message": ALERT,
            "details": {"visitors_last_minute": 11, "threshold": 10},  # the a's are too old
        }
        status = await server.ok("/api/status")
        assert status["websocket"]["alerts_sent"] == 2
        assert status["sessions"] == {"active": 27}

        # a graceful stop closes the dashboards with 1001
        code = await trio.to_thread.run_sync(server.stop)
        reason = await feed.closed()
        assert (reason.code, reason.reason) == (1001, "server shutdown")
        assert code == 0


async def test_a_slow_dashboard_is_closed_while_the_others_keep_receiving(
    visitor_server: Any,
) -> None:
    server = visitor_server(
        "--visitor-feed-max-queued-messages", "100", "--ingest-max-batch-events", "40"
    )
    pad = "p" * 20000
    async with (
        open_feed(server.feed_url(query=f"token={token()}")) as slow,
        open_feed(server.feed_url(query=f"token={token()}")) as reader,
    ):
        assert (await reader.expect("user_connected"))["total_dashboards"] == 2
        received = 0
        target = 0
        caught_up = trio.Event()

        async def read_all() -> None:
            nonlocal received, caught_up
            while True:
                message = await reader.next()
                if message["type"] == "visitor_update":
                    received += 1
                    if received >= target:
                        caught_up.set()

        closed_at = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            for batch in range(60):
                caught_up = trio.Event()
                target = (batch + 1) * 40
                events = pageviews(f"s{batch}-", 40, metadata={"device": "web", "pad": pad})
                answer = await server.post("/api/events/batch", events)
                assert answer.status_code == 200, answer.text
                with trio.fail_after(WAIT):  # the reader keeps up: it gets every update
                    await caught_up.wait()
                status = await server.ok("/api/status")
                if status["websocket"]["slow_consumer_disconnects"]:
                    closed_at = batch
                    break
            assert closed_at is not None, "the slow dashboard was never closed"
            nursery.cancel_scope.cancel()
        assert (await server.ok("/api/status"))["websocket"]["dashboards"]["/ws/visitors"] == 1
        reason = await slow.closed()
        assert (reason.code, reason.reason) == (1008, "slow consumer: too many messages queued")
