"""Unit tests of the event model and the aggregator's arithmetic (no server)."""

from __future__ import annotations

import msgspec
import pytest

from actors.analytics.metrics import MetricsAggregator, change
from actors.eventlog.events import (
    EventError,
    EventIn,
    EventLimits,
    new_event_id,
    normalise,
    parse_timestamp,
    time_ago,
)
from actors.eventlog.log import Run

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CLASH = "device 'web' and metadata.device 'mobile' disagree"
AHEAD = (NOW + 61) * 1000
BEHIND = (NOW - 3601) * 1000
LIMITS = EventLimits(max_string_chars=16, max_future_seconds=60, max_past_seconds=3600)


def event(**fields: object) -> EventIn:
    return msgspec.convert(fields, EventIn)


def test_both_spellings_make_the_same_record() -> None:
    visitor = normalise(
        event(
            type="pageview",
            page="/a",
            session_id="s",
            timestamp="2027-01-15T07:59:00Z",
            country="EG",
            metadata={"device": "mobile", "referrer": "g.com", "lang": "ar"},
        ),
        now=NOW,
        limits=LIMITS,
    )
    product = normalise(
        event(
            eventName="pageview",
            page="/a",
            session_id="s",
            timestamp=(NOW - 60) * 1000,
            country="EG",
            device="mobile",
            referrer="g.com",
            metadata={"lang": "ar"},
        ),
        now=NOW,
        limits=LIMITS,
    )
    assert msgspec.structs.replace(visitor, id="x") == msgspec.structs.replace(product, id="x")
    assert visitor.timestamp == NOW - 60 and visitor.received_at == NOW
    assert visitor.metadata == {"lang": "ar"} and visitor.user_key == "s"


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({}, "eventName", "an event needs eventName (or type)"),
        ({"type": ""}, "eventName", "an event needs eventName (or type)"),
        ({"type": "a", "eventName": "b"}, "eventName", "eventName 'b' and type 'a' disagree"),
        ({"type": "a", "device": "web", "metadata": {"device": "mobile"}}, "device", CLASH),
        ({"type": "a", "metadata": {"referrer": 5}}, "metadata.referrer", "expected a string"),
        ({"type": "a", "country": "x" * 17}, "country", "longer than 16 characters"),
        ({"type": "a", "timestamp": "soon"}, "timestamp", "not an ISO 8601 date-time"),
        ({"type": "a", "timestamp": AHEAD}, "timestamp", "more than 60 s in the future"),
        ({"type": "a", "timestamp": BEHIND}, "timestamp", "more than 3600 s in the past"),
    ],
)  # fmt: skip
def test_invalid_events_name_the_field(fields: dict[str, object], field: str, problem: str) -> None:
    with pytest.raises(EventError) as caught:
        normalise(event(**fields), now=NOW, limits=LIMITS, where="events[2].")
    assert caught.value.field == "events[2]." + field
    assert caught.value.problem.startswith(problem)


def test_timestamps_ids_and_time_ago() -> None:
    assert parse_timestamp("2027-01-15T08:00:00") == NOW  # no offset: UTC
    assert parse_timestamp("2027-01-15T10:00:00+02:00") == NOW
    assert parse_timestamp(NOW * 1000) == NOW
    ids = [new_event_id() for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [time_ago(s) for s in (-3, 2, 59, 60, 3599, 3600, 86399, 86400 * 3)] == [
        "0s ago",
        "2s ago",
        "59s ago",
        "1m ago",
        "59m ago",
        "1h ago",
        "23h ago",
        "3d ago",
    ]


def test_change_is_a_percentage_and_zero_without_earlier_data() -> None:
    assert change(8, 4) == 100.0
    assert change(1, 3) == -66.67
    assert change(5, 0) == 0.0


def test_uptime_covers_recorded_runs_over_the_last_day() -> None:
    clock = [NOW]
    agg = MetricsAggregator(lambda: clock[0])
    # first start 10 hours ago; up 4 h, down 1 h, up since
    agg.set_runs([Run(NOW - 10 * 3600, NOW - 6 * 3600)], NOW - 5 * 3600)
    assert agg.uptime(NOW) == 90.0
    # two days later only the last 24 h count, all up
    assert agg.uptime(NOW + 2 * 86400) == 100.0
    fresh = MetricsAggregator(lambda: NOW)
    fresh.set_runs([], NOW)
    assert fresh.uptime(NOW) == 100.0


def test_old_minutes_are_forgotten_and_today_starts_at_midnight() -> None:
    clock = [NOW]  # 08:00 UTC
    agg = MetricsAggregator(lambda: clock[0])
    limits = EventLimits(max_past_seconds=86400 * 7)

    def add(ts: float, page: str) -> None:
        raw = event(type="pageview", page=page, session_id=f"s{ts}", timestamp=ts * 1000)
        agg._add(normalise(raw, now=clock[0], limits=limits))

    add(NOW - 9 * 3600, "/yesterday")  # 23:00 the day before
    add(NOW - 60, "/today")
    stats = agg.current_stats()
    assert (stats.total_today, stats.pages_visited) == (1, {"/today": 1})
    assert stats.total_active == 1  # only s(NOW-60) within 30 minutes
    assert len(agg.buckets) == 2
    clock[0] = NOW + 3 * 86400
    add(clock[0], "/later")
    assert list(agg.buckets) == [int(clock[0] // 60)]
    stats = agg.current_stats()
    assert (stats.total_today, stats.pages_visited, stats.total_active) == (1, {"/later": 1}, 1)


def test_conversion_events_are_a_setting() -> None:
    agg = MetricsAggregator(lambda: NOW, conversion_events=("checkout",))
    for user, name in (("a", "checkout"), ("b", "purchase"), ("c", "login"), ("a", "login")):
        agg._add(normalise(event(eventName=name, userId=user), now=NOW, limits=LIMITS))
    dashboard = agg.dashboard()
    assert (dashboard.total_events, dashboard.conversion_rate) == (4, 33.33)  # a of a, b, c
