"""Ingest over REST: both spellings, batches, the seed's answer, clear 400s, limits, idempotency,
per-IP rate limit, CORS, and what the answer promises (committed) against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.clients.analytics import Switchboard, token
from tests.support.stamps import iso

VISITOR = {
    "type": "pageview",
    "page": "/products",
    "session_id": "user-123",
    "country": "India",
    "metadata": {"device": "mobile", "referrer": "google.com"},
}


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


LIMITED = (
    "--ingest-max-batch-events",
    "5",
    "--ingest-max-body-bytes",
    "4000",
    "--ingest-max-string-chars",
    "64",
    "--ingest-max-future-seconds",
    "60",
    "--ingest-max-past-seconds",
    "3600",
)


@pytest.fixture
def server(switchboard: Callable[..., Switchboard]) -> Switchboard:
    return switchboard(*LIMITED)


@pytest.fixture(scope="module")
def shared(module_switchboard: Callable[..., Switchboard]) -> Switchboard:
    """For tests that store nothing."""
    return module_switchboard(*LIMITED)


def test_single_events_in_both_spellings_answer_with_the_seed_shape(server: Switchboard) -> None:
    answer = server.event({**VISITOR, "timestamp": iso(time.time())})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    event_id = body["data"].pop("event_id")
    assert event_id.startswith("evt_")
    assert body == {
        "success": True,
        "message": "Event processed successfully",
        "data": {
            "session_id": "user-123",
            "duplicate": False,
            "current_stats": {
                "total_active": 1,
                "total_today": 1,
                "pages_visited": {"/products": 1},
            },
        },
    }
    assert answer.headers["access-control-allow-origin"] == "*"

    product = {
        "eventName": "purchase",
        "userId": "u1",
        "country": "US",
        "device": "web",
        "referrer": "twitter.com",
        "properties": {"amount": 42.5, "items": ["a", "b"]},
        "id": "order-1",
    }
    answer = server.event(product)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["session_id"] is None
    assert data["event_id"] == "order-1"
    # no page and no session: the visitor counters count it only in total_today
    assert data["current_stats"] == {
        "total_active": 1,
        "total_today": 2,
        "pages_visited": {"/products": 1},
    }

    live = server.dashboard()["liveEvents"]
    assert [(e["id"], e["eventName"], e["userId"], e["country"], e["device"]) for e in live] == [
        ("order-1", "purchase", "u1", "US", "web"),
        (event_id, "pageview", "user-123", "India", "mobile"),
    ]


def test_a_batch_is_committed_before_the_answer(server: Switchboard) -> None:
    events = [
        {"type": "pageview", "page": "/home", "session_id": "s1"},
        {"type": "pageview", "page": "/home", "session_id": "s2"},
        {"eventName": "signup", "userId": "u9", "page": "/join", "session_id": "s2"},
    ]
    answer = server.batch(events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True,
        "message": "3 events processed successfully",
        "data": {
            "accepted": 3,
            "stored": 3,
            "duplicates": 0,
            "current_stats": {
                "total_active": 2,
                "total_today": 3,
                "pages_visited": {"/home": 2, "/join": 1},
            },
        },
    }
    answer = server.batch({"events": [{"eventName": "login", "userId": "u9"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["accepted"] == 1
    assert server.dashboard()["totalEvents"] == 4


BAD: list[tuple[str, Any, str, str]] = [
    ("/api/events", {"type": "pageview", "country": 7}, "country", "Expected `str | null`"),
    ("/api/events", {"page": "/x"}, "eventName", "needs eventName (or type)"),
    ("/api/events", {"eventName": "a", "type": "b"}, "eventName", "disagree"),
    ("/api/events", {"type": "x", "metadata": {"device": 3}}, "metadata.device", "string"),
    ("/api/events", {"type": "x", "page": "p" * 65}, "page", "longer than 64 characters"),
    ("/api/events", {"type": "x", "timestamp": "yesterday"}, "timestamp", "ISO 8601"),
    ("/api/events", {"type": "x", "timestamp": "2001-01-01T00:00:00Z"}, "timestamp", "past"),
    ("/api/events", {"type": "x", "timestamp": 1e20}, "timestamp", "future"),
    ("/api/events", [VISITOR], "", "Expected `object`"),
    ("/api/events/batch", [VISITOR, {"type": 1}], "events[1].type", "Expected `str | null`"),
    ("/api/events/batch", {"events": [VISITOR, {}]}, "events[1].eventName", "needs eventName"),
    ("/api/events", {"type": "x", "properties": {"a": nested(30)}}, "properties", "deeper than 28"),
    ("/api/events/batch", [], "events", "at least one event"),
    ("/api/events/batch", [VISITOR] * 6, "events", "at most 5 events"),
]


@pytest.mark.parametrize(("path", "body", "field", "problem"), BAD)
def test_bad_payloads_get_a_400_naming_the_field(
    shared: Switchboard, path: str, body: Any, field: str, problem: str
) -> None:
    answer = shared.post(path, body)
    assert answer.status_code == 400, answer.text
    refusal = answer.json()
    assert refusal["success"] is False
    assert refusal.get("field", "") == field
    assert problem in refusal["message"]
    if field:
        assert field in refusal["message"]


def test_other_refusals_and_that_nothing_refused_is_stored(server: Switchboard) -> None:
    url = server.url
    not_json = httpx.post(url + "/api/events", content=b"{nope", timeout=5)
    assert not_json.status_code == 400
    assert not_json.json() == {"success": False, "message": "Invalid JSON body"}
    deep_body = b'{"type":"x","properties":{"a":' + b"[" * 1500 + b"]" * 1500 + b"}}"
    deep = httpx.post(url + "/api/events", content=deep_body, timeout=5)
    assert deep.status_code == 400
    assert deep.json()["message"] == "Invalid JSON body: nested too deeply"
    huge = httpx.post(url + "/api/events", content=b" " * 5000, timeout=5)
    assert huge.status_code == 413
    assert huge.json()["message"] == "Request body larger than 4000 bytes"
    bad_key = server.event(VISITOR, headers={"Idempotency-Key": "k" * 65})
    assert bad_key.status_code == 400 and bad_key.json()["field"] == "Idempotency-Key"
    dashboard = server.dashboard()
    assert dashboard["totalEvents"] == 0
    assert dashboard["performanceMetrics"]["errorRate"] == 100.0


def test_a_retried_post_counts_once(server: Switchboard) -> None:
    first = server.event({"id": "e-1", "eventName": "login", "userId": "u"})
    again = server.event({"id": "e-1", "eventName": "login", "userId": "u"})
    assert first.json()["data"]["duplicate"] is False
    assert again.status_code == 200 and again.json()["data"]["duplicate"] is True

    key = {"Idempotency-Key": "batch-42"}
    events = [{"eventName": "view", "userId": "u"}, {"eventName": "view", "userId": "v"}]
    stored = server.batch(events, headers=key).json()["data"]
    replay = server.batch(events, headers=key).json()["data"]
    assert (stored["stored"], stored["duplicates"]) == (2, 0)
    assert (replay["stored"], replay["duplicates"]) == (0, 2)
    mixed = server.batch(
        [{"id": "e-1", "type": "x", "userId": "u"}, {"id": "e-2", "type": "x", "userId": "u"}]
    ).json()["data"]
    assert (mixed["stored"], mixed["duplicates"]) == (1, 1)
    assert server.dashboard()["totalEvents"] == 4


def test_cors_preflight_lets_websites_post(shared: Switchboard) -> None:
    answer = httpx.options(
        shared.url + "/api/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"]


def test_reading_views_needs_a_token(shared: Switchboard) -> None:
    server = shared
    for path in ("/api/metrics/dashboard", "/api/metrics/live"):
        refused = httpx.get(server.url + path, timeout=5)
        assert refused.status_code == 401
        assert refused.json()["message"] == "Authentication failed: no token provided"
        wrong = httpx.get(server.url + path, headers={"Authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401
        ok = httpx.get(server.url + path, headers={"Authorization": f"Bearer {token()}"}, timeout=5)
        assert ok.status_code == 200


def test_the_rate_limit_is_per_ip_and_costs_only_the_sender(
    switchboard: Callable[..., Switchboard],
) -> None:
    server = switchboard("--ingest-rate-per-ip-per-minute", "3")
    for _ in range(3):
        assert server.event({"type": "x", "session_id": "s"}).status_code == 200
    refused = server.event({"type": "x", "session_id": "s"})
    assert refused.status_code == 429
    assert refused.json()["message"] == "Too many requests: at most 3 per minute per address"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # another address is not affected
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:
        assert (
            other.post(
                server.url + "/api/events", json={"type": "x", "session_id": "s"}
            ).status_code
            == 200
        )
    # a minute later the first address may post again
    server.advance(61)
    assert server.event({"type": "x", "session_id": "s"}).status_code == 200


def test_behind_a_trusted_proxy_the_rate_limit_counts_each_client(
    switchboard: Callable[..., Switchboard],
) -> None:
    server = switchboard("--ingest-rate-per-ip-per-minute", "1", "--trusted-proxies", "127.0.0.1")

    def post(client: str) -> int:
        answer = httpx.post(
            server.url + "/api/events",
            json={"type": "x", "session_id": "s"},
            headers={"X-Forwarded-For": client},
            timeout=5,
        )
        return answer.status_code

    assert post("198.51.100.1") == 200
    assert post("198.51.100.2") == 200  # another client behind the same proxy
    assert post("198.51.100.1") == 429
