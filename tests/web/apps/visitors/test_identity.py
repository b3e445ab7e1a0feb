"""Who an event is from, and who a dashboard is.

An event needs a ``session_id`` or a ``userId``: without either it is refused (400 naming
``session_id``), alone or in a batch, and nothing of it is counted or sent to the feed. With
``anonymous_dashboards`` the visitor reads and the feed let in a dashboard without a token, but
refuse a bad one."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.clients.visitors import WAIT, open_feed, token

NO_IDENTITY = "an event needs a session_id or a userId"
READS = ("/api/analytics/summary", "/api/analytics/sessions", "/api/analytics/detailed")


async def test_an_event_without_session_id_or_user_id_is_refused(visitor_server: Any) -> None:
    server = visitor_server()
    async with open_feed(server.feed_url(query=f"token={token()}")) as feed:
        await feed.expect("user_connected")
        for body in (
            {"type": "pageview", "page": "/pricing", "country": "DE"},
            {"eventName": "purchase", "session_id": "", "userId": ""},  # empty means absent
        ):
            refused = await server.post("/api/events", body)
            assert refused.status_code == 400, refused.text
            assert refused.json() == {
                "success": False,
                "message": f"Invalid event: session_id: {NO_IDENTITY}",
                "field": "session_id",
            }
        good = {"type": "pageview", "page": "/home", "session_id": "s1"}
        for batch in (
            [good, {"type": "pageview", "page": "/pricing"}],
            {"events": [good, {"type": "pageview", "page": "/pricing"}]},
        ):
            refused = await server.post("/api/events/batch", batch)
            assert refused.status_code == 400, refused.text
            assert refused.json() == {
                "success": False,
                "message": f"Invalid event: events[1].session_id: {NO_IDENTITY}",
                "field": "events[1].session_id",
            }
        # nothing was counted, and the feed heard of nothing before its answer
        detailed = await feed.detailed()
        assert detailed["summary"] == {"total_active": 0, "total_today": 0, "pages_visited": {}}
        # either identity is enough
        assert (await server.event({"eventName": "login", "userId": "u1"}))["session_id"] is None
        data = await server.event(good)
        assert data["current_stats"]["total_today"] == 2
        assert (await feed.expect("visitor_update"))["event"]["user_id"] == "u1"


async def test_anonymous_dashboards_still_refuse_a_bad_token(visitor_server: Any) -> None:
    server = visitor_server("--anonymous-dashboards", "true")
    async with httpx.AsyncClient(timeout=WAIT) as client:
        for path in READS:
            assert (await client.get(server.url + path)).status_code == 200
            bad = await client.get(server.url + path, headers={"Authorization": "Bearer x.y.z"})
            assert bad.status_code == 401
            assert bad.json() == {
                "success": False,
                "message": "Authentication failed: invalid token",
            }
    async with open_feed(server.feed_url()) as anonymous:
        assert (await anonymous.expect("user_connected"))["total_dashboards"] == 1
    async with open_feed(server.feed_url(query="token=nope")) as refused:
        message = "Authentication failed: invalid token"
        assert await refused.expect("error") == {"message": message}
        reason = await refused.closed()
        assert (reason.code, reason.reason) == (1008, message)
