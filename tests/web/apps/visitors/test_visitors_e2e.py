"""Visitor analytics end to end: a scripted day of pageviews across sessions, countries and
devices, checked against exact values on every REST answer and every feed message; session expiry
by the test clock; the rebuild from the log after a restart.

The server's clock is moved to noon UTC of the next day first, so every scripted timestamp (noon
minus a few minutes) is "today" and far from midnight, whenever the test runs.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.clients.visitors import DAY, Feed, open_feed, token
from tests.support.stamps import iso
from tests.support.stamps import parse_iso as parse

SESSION_TIMEOUT = 30 * 60

# (session_id, page, seconds before noon, country, device, referrer, type, userId)
SCRIPT: list[tuple[str | None, str | None, int, str, str | None, str | None, str, str | None]] = [
    ("s1", "/home", 600, "India", "mobile", "google.com", "pageview", None),
    ("s2", "/home", 590, "USA", "desktop", "twitter.com", "pageview", None),
    ("s2", "/home", 580, "USA", "desktop", None, "pageview", None),  # a reload: same step
    ("s1", "/products", 555, "India", "mobile", None, "pageview", None),
    ("s1", "/products/42", 500, "India", "mobile", None, "pageview", None),
    ("s3", "/blog", 400, "India", "desktop", None, "pageview", None),
    ("s3", "/home", 300, "India", "desktop", None, "pageview", None),
    ("s4", "/products", 200, "Germany", "tablet", None, "pageview", None),
    (None, None, 100, "USA", None, None, "purchase", "u1"),  # a product event: no session
]


def noon_tomorrow() -> float:
    return (int(time.time() // DAY) + 1) * DAY + 12 * 3600


def body(row: tuple[Any, ...], noon: float) -> dict[str, Any]:
    sid, page, before, country, device, referrer, kind, user = row
    event: dict[str, Any] = {"timestamp": iso(noon - before), "country": country}
    if kind == "pageview":
        event.update(type=kind, page=page, session_id=sid)
        event["metadata"] = {"device": device}
        if referrer:
            event["metadata"]["referrer"] = referrer
    else:
        event.update(eventName=kind, userId=user)
    return event


def ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def visitors_per_minute(generated_at: str, stamps: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """The expected chart: distinct visitors per minute, the 30 minutes up to generated_at."""
    current = int(parse(generated_at) // 60)
    chart = []
    for minute in range(current - 29, current + 1):
        seen = {v for v, ts in stamps if int(ts // 60) == minute}
        chart.append({"minute": iso(minute * 60), "visitors": len(seen)})
    return chart


EXPECTED_SESSIONS = {
    "s1": {
        "session_id": "s1",
        "current_page": "/products/42",
        "journey": ["/home", "/products", "/products/42"],
        "duration": 100,
        "country": "India",
        "device": "mobile",
    },
    "s2": {
        "session_id": "s2",
        "current_page": "/home",
        "journey": ["/home"],
        "duration": 10,
        "country": "USA",
        "device": "desktop",
    },
    "s3": {
        "session_id": "s3",
        "current_page": "/home",
        "journey": ["/blog", "/home"],
        "duration": 100,
        "country": "India",
        "device": "desktop",
    },
    "s4": {
        "session_id": "s4",
        "current_page": "/products",
        "journey": ["/products"],
        "duration": 0,
        "country": "Germany",
        "device": "tablet",
    },
}
LAST = {"s1": 500, "s2": 580, "s3": 300, "s4": 200}
PAGES = {"/home": 4, "/products": 2, "/blog": 1, "/products/42": 1}


def session(sid: str, noon: float) -> dict[str, Any]:
    return {**EXPECTED_SESSIONS[sid], "last_activity": iso(noon - LAST[sid])}


async def post_script(server: Any, feed: Feed, noon: float) -> None:
    """Post SCRIPT one event at a time; check each answer and each feed message exactly."""
    total = 0
    pages: Counter[str] = Counter()
    seen_sessions: set[str] = set()
    journeys: dict[str, list[str]] = {}
    first: dict[str, float] = {}
    for row in SCRIPT:
        sid, page, before, country, device, referrer, kind, user = row
        data = await server.event(body(row, noon))
        total += 1
        if page:
            pages[page] += 1
        if sid:
            seen_sessions.add(sid)
        stats = {
            "total_active": len(seen_sessions),
            "total_today": total,
            "pages_visited": ranked(pages),
        }
        assert data["session_id"] == sid
        assert data["current_stats"] == stats
        update = await feed.expect("visitor_update")
        assert update == {
            "event": {
                "id": data["event_id"],
                "type": kind,
                "page": page,
                "session_id": sid,
                "user_id": user,
                "timestamp": iso(noon - before),
                "country": country,
                "metadata": {"device": device, "referrer": referrer},
                "properties": None,
            },
            "stats": stats,
        }
        if sid is None:
            continue
        journey = journeys.setdefault(sid, [])
        if page and (not journey or journey[-1] != page):
            journey.append(page)
        first.setdefault(sid, noon - before)
        activity = await feed.expect("session_activity")
        assert activity == {
            "session_id": sid,
            "current_page": journey[-1],
            "journey": journey,
            "duration": round(noon - before - first[sid]),
            "country": country,
            "device": device,
            "last_activity": iso(noon - before),
        }


def stamps(noon: float) -> list[tuple[str, float]]:
    return [(row[0] or row[7] or "", noon - row[2]) for row in SCRIPT]


async def test_scripted_day_exact_rest_and_feed_then_expiry_and_rebuild(
    visitor_server: Any, tmp_path: Path
) -> None:
    server = visitor_server("--cleanup-interval-minutes", "1")
    noon = noon_tomorrow()
    await server.set_clock(noon)
    async with open_feed(server.feed_url(query=f"token={token()}")) as feed:
        hello = await feed.expect("user_connected")
        assert hello["total_dashboards"] == 1
        assert noon <= parse(hello["connected_at"]) < noon + 60
        await post_script(server, feed, noon)

        # --- REST: summary, with every filter ----------------------------------------------------
        summary = await server.ok("/api/analytics/summary")
        assert summary["summary"] == {"total_active": 4, "total_today": 9, "pages_visited": PAGES}
        assert noon <= parse(summary["generated_at"]) < noon + 60
        india = await server.ok("/api/analytics/summary", country="India")
        assert india["summary"] == {
            "total_active": 2,
            "total_today": 5,
            "pages_visited": {"/home": 2, "/blog": 1, "/products": 1, "/products/42": 1},
        }
        home = await server.ok("/api/analytics/summary", page="/home")
        assert home["summary"] == {
            "total_active": 2,
            "total_today": 4,
            "pages_visited": {"/home": 4},
        }
        both = await server.ok("/api/analytics/summary", country="India", page="/home")
        assert both["summary"] == {
            "total_active": 1,
            "total_today": 2,
            "pages_visited": {"/home": 2},
        }
        usa = await server.ok("/api/analytics/summary", country="USA", page="")
        assert usa["summary"] == {
            "total_active": 1,
            "total_today": 3,
            "pages_visited": {"/home": 2},
        }

        # --- REST: sessions -----------------------------------------------------------------------
        listed = await server.ok("/api/analytics/sessions")
        assert listed == {
            "sessions": [session(s, noon) for s in ("s4", "s3", "s1", "s2")],
            "total_count": 4,
        }
        limited = await server.ok("/api/analytics/sessions", limit="2")
        assert limited == {"sessions": [session(s, noon) for s in ("s4", "s3")], "total_count": 4}
        assert await server.ok("/api/analytics/sessions", country="India", limit="1") == {
            "sessions": [session("s3", noon)],
            "total_count": 2,
        }
        assert await server.ok("/api/analytics/sessions", page="/home") == {
            "sessions": [session("s3", noon), session("s2", noon)],
            "total_count": 2,
        }
        for bad in ("0", "x", "1001"):
            answer = await server.get("/api/analytics/sessions", limit=bad)
            assert answer.status_code == 400
            assert answer.json() == {
                "success": False,
                "message": "limit: must be an integer from 1 to 1000",
            }

        # --- REST and feed: detailed ------------------------------------------------------------
        detailed = await server.ok("/api/analytics/detailed")
        expected = {
            "filter": {"country": None, "page": None},
            "summary": {"total_active": 4, "total_today": 9, "pages_visited": PAGES},
            "sessions_today": 4,
            "countries": {"India": 2, "Germany": 1, "USA": 1},
            "devices": {"desktop": 2, "mobile": 1, "tablet": 1},
            "referrers": {"direct": 2, "google.com": 1, "twitter.com": 1},
            "pages": PAGES,
            "entry_pages": {"/home": 2, "/blog": 1, "/products": 1},
            "exit_pages": {"/home": 2, "/products": 1, "/products/42": 1},
            "avg_session_duration": 52.5,
            "bounce_rate": 50.0,
            "visitors_per_minute": visitors_per_minute(detailed["generated_at"], stamps(noon)),
            "generated_at": detailed["generated_at"],
        }
        assert detailed == expected
        by_feed = await feed.detailed()
        assert by_feed == {**expected, "generated_at": by_feed["generated_at"]}
        india_detailed = await feed.detailed(country="India")
        india_stamps = [(row[0] or "", noon - row[2]) for row in SCRIPT if row[3] == "India"]
        assert india_detailed == {
            "filter": {"country": "India", "page": None},
            "summary": india["summary"],
            "sessions_today": 2,
            "countries": {"India": 2},
            "devices": {"desktop": 1, "mobile": 1},
            "referrers": {"direct": 1, "google.com": 1},
            "pages": india["summary"]["pages_visited"],
            "entry_pages": {"/blog": 1, "/home": 1},
            "exit_pages": {"/home": 1, "/products/42": 1},
            "avg_session_duration": 100.0,
            "bounce_rate": 0.0,
            "visitors_per_minute": visitors_per_minute(
                india_detailed["generated_at"], india_stamps
            ),
            "generated_at": india_detailed["generated_at"],
        }
        rest_india = await server.ok("/api/analytics/detailed", country="India")
        assert rest_india == {**india_detailed, "generated_at": rest_india["generated_at"]}
        home_detailed = await server.ok("/api/analytics/detailed", page="/home")
        assert home_detailed["sessions_today"] == 2  # s2 and s3 are on /home
        assert home_detailed["entry_pages"] == {"/blog": 1, "/home": 1}
        assert home_detailed["exit_pages"] == {"/home": 2}
        assert home_detailed["avg_session_duration"] == 55.0
        assert home_detailed["bounce_rate"] == 50.0
        assert home_detailed["pages"] == {"/home": 4}

        # --- expiry: 31 minutes later (test clock), the cleanup task ends all four ----------------
        await server.advance_async(31 * 60)
        expired = await feed.expect("sessions_expired")
        assert expired == {
            "session_ids": ["s1", "s2", "s3", "s4"],
            "stats": {"total_active": 0, "total_today": 9, "pages_visited": PAGES},
        }
        assert (await server.ok("/api/analytics/summary"))["summary"] == {
            "total_active": 0,
            "total_today": 9,
            "pages_visited": PAGES,
        }
        assert await server.ok("/api/analytics/sessions") == {"sessions": [], "total_count": 0}
        after = await server.ok("/api/analytics/detailed")
        assert after["sessions_today"] == 4  # ended today: still in today's figures
        assert after["exit_pages"] == expected["exit_pages"]
        assert after["avg_session_duration"] == 52.5
        assert after["visitors_per_minute"] == visitors_per_minute(after["generated_at"], [])

        # s1 comes back after the timeout: a new session with the same id
        later = noon + 31 * 60 + 5
        data = await server.event(
            {
                "type": "pageview",
                "page": "/pricing",
                "session_id": "s1",
                "timestamp": iso(later),
                "country": "India",
                "metadata": {"device": "mobile"},
            }
        )
        stats = {
            "total_active": 1,
            "total_today": 10,
            "pages_visited": {**PAGES, "/pricing": 1},
        }
        assert data["current_stats"] == stats
        assert (await feed.expect("visitor_update"))["stats"] == stats
        back = {
            "session_id": "s1",
            "current_page": "/pricing",
            "journey": ["/pricing"],
            "duration": 0,
            "country": "India",
            "device": "mobile",
            "last_activity": iso(later),
        }
        assert await feed.expect("session_activity") == back
        assert (await feed.detailed())["sessions_today"] == 5
        assert await server.ok("/api/analytics/sessions") == {"sessions": [back], "total_count": 1}
        before_restart = await server.ok("/api/analytics/detailed")

    # --- a restart rebuilds the same sessions and counters from the log ---------------------------
    server.stop()
    again = visitor_server("--cleanup-interval-minutes", "1", data_dir=server.data_dir)
    await again.set_clock(parse(before_restart["generated_at"]) + 1)
    assert await again.ok("/api/analytics/sessions") == {"sessions": [back], "total_count": 1}
    rebuilt = await again.ok("/api/analytics/detailed")
    for key in ("summary", "sessions_today", "countries", "devices", "referrers", "pages"):
        assert rebuilt[key] == before_restart[key], key
    for key in ("entry_pages", "exit_pages", "avg_session_duration", "bounce_rate"):
        assert rebuilt[key] == before_restart[key], key
