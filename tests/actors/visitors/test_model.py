"""The session book on its own: splitting, late and out-of-order events, journeys, expiry."""

from __future__ import annotations

from actors.eventlog.events import Event
from actors.visitors.model import DAY, Filter, VisitorBook

NOON = 20_000 * DAY + 12 * 3600
_ids = iter(range(1, 1_000_000))


def ev(
    sid: str | None,
    page: str | None,
    ts: float,
    received: float | None = None,
    **kw: str,
) -> Event:
    n = next(_ids)
    return Event(
        id=f"e{n}",
        name="pageview",
        session_id=sid,
        page=page,
        timestamp=ts,
        received_at=ts if received is None else received,
        seq=n,
        **kw,  # type: ignore[arg-type]
    )


def test_a_gap_longer_than_the_timeout_starts_a_new_session() -> None:
    book = VisitorBook(timeout_seconds=1800)
    book.expire(NOON)
    book.apply(ev("s", "/a", NOON), NOON)
    book.apply(ev("s", "/b", NOON + 1800), NOON + 1800)  # exactly the timeout: same session
    assert [s.view().journey for s in book.active.values()] == [["/a", "/b"]]
    book.apply(ev("s", "/c", NOON + 3601), NOON + 3601)
    views, total = book.sessions()
    assert total == 1
    assert views[0].journey == ["/c"]
    assert views[0].duration == 0
    assert book.detailed(NOON + 3601).sessions_today == 2


def test_journeys_collapse_repeats_and_keep_the_entry_beyond_the_cap() -> None:
    book = VisitorBook(timeout_seconds=1800, journey_max_pages=3)
    book.expire(NOON)
    for i, page in enumerate(["/a", "/a", "/b", "/a", "/c", "/d", "/d"]):
        book.apply(ev("s", page, NOON + i), NOON + i)
    session = book.active["s"]
    assert session.view().journey == ["/a", "/c", "/d"]
    assert (session.entry, session.steps, session.duration) == ("/a", 5, 6)
    detailed = book.detailed(NOON + 10)
    assert detailed.entry_pages == {"/a": 1}
    assert detailed.exit_pages == {"/d": 1}
    assert detailed.bounce_rate == 0.0


def test_late_and_out_of_order_events() -> None:
    book = VisitorBook(timeout_seconds=1800)
    now = NOON
    book.expire(now)
    book.apply(ev("old", "/x", now - 7200, received=now), now)  # long over: never active
    assert book.stats().total_active == 0
    assert book.stats().total_today == 1
    book.apply(ev("s", "/b", now - 10, received=now), now)
    book.apply(ev("s", "/a", now - 20, received=now), now)  # earlier, arriving later
    view = book.sessions()[0][0]
    assert (view.journey, view.duration, view.current_page) == (["/b", "/a"], 10, "/a")
    assert book.detailed(now).sessions_today == 2
    assert [s.session_id for s in book.expire(now + 1791)] == ["s"]
    assert book.stats().total_active == 0


def test_filters_use_the_session_rule_and_the_event_rule() -> None:
    book = VisitorBook()
    book.expire(NOON)
    book.apply(ev("a", "/home", NOON, country="India"), NOON)
    book.apply(ev("a", "/buy", NOON + 1, country="India"), NOON + 1)
    book.apply(ev("b", "/home", NOON + 2, country="Peru"), NOON + 2)
    home = Filter(page="/home")
    assert book.stats(home).total_active == 1  # only b is on /home now
    assert book.stats(home).total_today == 2  # both viewed it
    assert book.stats(Filter(country="India")).pages_visited == {"/buy": 1, "/home": 1}
    assert book.sessions(Filter(country="Peru"))[1] == 1
    assert book.visitors_last_minute(NOON + 30) == 2
    assert book.visitors_last_minute(NOON + 61.5) == 1
