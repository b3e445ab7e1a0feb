"""Visitor sessions and the views of them: pure state, no I/O (the aggregator actor owns one).

Definitions (times are the events' ``timestamp``s on the service clock, UTC days and minutes):

* A **session** is keyed by ``session_id`` (events without one never make a session). It starts
  with its first event and stays active while ``now - last_activity <= timeout``; an event that
  comes after that (``received_at - last_activity > timeout``), or that is stamped more than the
  timeout after the session's last activity, starts a new session with the same id. An event
  stamped more than the timeout ago (a late upload) counts in today's figures, but its session
  ends at once (it is never active).
* ``journey``: the pages of the session's events, in the order they arrived; the same page twice
  in a row counts once (a reload or a click on the page is not a new step). At most
  ``journey_max_pages`` are kept (the latest); ``current_page`` is the last page, the entry page
  the first one. ``duration``: whole seconds from the first event's time to ``last_activity``.
  ``country`` and ``device``: the latest non-empty values of the session's events; the session's
  referrer is the first non-empty one (what brought the visitor).
* ``total_active``: active sessions; ``total_today``: events stamped since midnight UTC;
  ``pages_visited``: events with a ``page`` stamped since midnight UTC, per page (most first).
* **Filters** (``country``, ``page``): a session matches when its ``country`` and its
  ``current_page`` equal the given values; an event matches when its own ``country`` and ``page``
  do. Session figures (``total_active``, the sessions list, every per-session figure of the detailed
  stats) use the session rule, event figures (``total_today``, ``pages_visited``, ``pages``,
  ``visitors_per_minute``) the event rule.
* **Detailed stats** cover today's sessions (active or ended, with activity since midnight UTC):
  ``countries``, ``devices`` (missing: ``unknown``), ``referrers`` (missing: ``direct``) count
  sessions; ``entry_pages`` / ``exit_pages`` count their first / last page (for a session still
  active, its current page); ``avg_session_duration`` is their mean duration in seconds;
  ``bounce_rate`` is the percentage of those with at least one page whose journey has one page;
  ``visitors_per_minute`` is, for each of the last 30 UTC minutes (the current one last), the
  distinct visitors (``session_id``, else ``userId``) with an event stamped in it.
* ``visitors_last_minute`` (for the alert): distinct visitors with an event stamped in the last 60
  seconds.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import msgspec

from actors.eventlog.events import Event, iso
from actors.eventlog.views import CurrentStats

MINUTE = 60
DAY = 86400
CHART_MINUTES = 30


@dataclass(frozen=True, slots=True)
class Filter:
    country: str | None = None
    page: str | None = None

    @property
    def empty(self) -> bool:
        return self.country is None and self.page is None

    def matches(self, country: str | None, page: str | None) -> bool:
        return (self.country is None or country == self.country) and (
            self.page is None or page == self.page
        )


NO_FILTER = Filter()


# --- wire shapes ---------------------------------------------------------------------------------
class SessionView(msgspec.Struct):
    session_id: str
    current_page: str | None
    journey: list[str]
    duration: int
    country: str | None
    device: str | None
    last_activity: str


class FilterView(msgspec.Struct):
    country: str | None
    page: str | None


class MinuteVisitors(msgspec.Struct):
    minute: str
    visitors: int


class Detailed(msgspec.Struct):
    filter: FilterView
    summary: CurrentStats
    sessions_today: int
    countries: dict[str, int]
    devices: dict[str, int]
    referrers: dict[str, int]
    pages: dict[str, int]
    entry_pages: dict[str, int]
    exit_pages: dict[str, int]
    avg_session_duration: float
    bounce_rate: float
    visitors_per_minute: list[MinuteVisitors]
    generated_at: str


class VisitorEvent(msgspec.Struct):
    """An event as the feed shows it (the visitor spelling)."""

    id: str
    type: str
    page: str | None
    session_id: str | None
    user_id: str | None
    timestamp: str
    country: str | None
    metadata: dict[str, Any]
    properties: dict[str, Any] | None


def visitor_event(e: Event) -> VisitorEvent:
    metadata: dict[str, Any] = {"device": e.device, "referrer": e.referrer}
    if e.metadata:
        metadata.update(e.metadata)
    return VisitorEvent(
        e.id,
        e.name,
        e.page,
        e.session_id,
        e.user_id,
        iso(e.timestamp),
        e.country,
        metadata,
        e.properties,
    )


def ranked(counter: Counter[str]) -> dict[str, int]:
    """Counts, most first, ties by name."""
    return dict(sorted(((k, v) for k, v in counter.items() if v), key=lambda kv: (-kv[1], kv[0])))


# --- state ---------------------------------------------------------------------------------------
class VisitorSession:
    __slots__ = (
        "country",
        "device",
        "entry",
        "journey",
        "last",
        "referrer",
        "session_id",
        "started",
        "steps",
    )

    def __init__(self, session_id: str, ts: float, journey_max: int) -> None:
        self.session_id = session_id
        self.started = ts
        self.last = ts
        self.journey: deque[str] = deque(maxlen=journey_max)
        self.steps = 0  # pages in the journey, including those beyond journey_max
        self.entry: str | None = None
        self.country: str | None = None
        self.device: str | None = None
        self.referrer: str | None = None

    @property
    def current_page(self) -> str | None:
        return self.journey[-1] if self.journey else None

    @property
    def duration(self) -> int:
        return round(self.last - self.started)

    def view(self) -> SessionView:
        return SessionView(
            self.session_id,
            self.current_page,
            list(self.journey),
            self.duration,
            self.country,
            self.device,
            iso(self.last),
        )


class VisitorBook:
    """Every session and counter of the visitor analytics (owned by one actor)."""

    def __init__(self, *, timeout_seconds: float = 1800.0, journey_max_pages: int = 100) -> None:
        self.timeout = timeout_seconds
        self.journey_max = journey_max_pages
        self.active: dict[str, VisitorSession] = {}
        self.by_minute: dict[int, set[str]] = {}  # minute of last_activity -> active session ids
        self.ended: list[VisitorSession] = []  # ended today
        self.day = -1
        self.day_total: Counter[int] = Counter()
        self.day_pages: dict[int, Counter[str]] = {}
        self.day_keys: dict[int, Counter[tuple[str | None, str | None]]] = {}
        self.minute_visitors: dict[int, set[tuple[str, str | None, str | None]]] = {}
        self.recent: dict[str, float] = {}  # visitor -> latest event time (the alert's window)

    # --- adding ----------------------------------------------------------------------------------
    def apply(self, e: Event, now: float) -> VisitorSession | None:
        """Count one event; returns its session (None without ``session_id``)."""
        ts = e.timestamp
        session: VisitorSession | None = None
        sid = e.session_id
        if sid:
            session = self.active.get(sid)
            if session is not None and (
                e.received_at - session.last > self.timeout or ts - session.last > self.timeout
            ):
                self._end(session)
                session = None
            if session is None:
                session = self.active[sid] = VisitorSession(sid, ts, self.journey_max)
                self._index(session)
            else:
                session.started = min(session.started, ts)
                if ts > session.last:
                    self._unindex(session)
                    session.last = ts
                    self._index(session)
            page = e.page
            if page and (not session.journey or session.journey[-1] != page):
                session.journey.append(page)
                session.steps += 1
                if session.entry is None:
                    session.entry = page
            if e.country:
                session.country = e.country
            if e.device:
                session.device = e.device
            if e.referrer and session.referrer is None:
                session.referrer = e.referrer
            if session.last < now - self.timeout:  # a late event of a session long over
                self._end(session)
        day = int(ts // DAY)
        self.day_total[day] += 1
        if e.page:
            pages = self.day_pages.get(day)
            if pages is None:
                pages = self.day_pages[day] = Counter()
            pages[e.page] += 1
        keys = self.day_keys.get(day)
        if keys is None:
            keys = self.day_keys[day] = Counter()
        keys[(e.country, e.page)] += 1
        visitor = sid or e.user_id
        if visitor:
            minute = int(ts // MINUTE)
            if minute > int(now // MINUTE) - CHART_MINUTES:
                bucket = self.minute_visitors.get(minute)
                if bucket is None:
                    bucket = self.minute_visitors[minute] = set()
                bucket.add((visitor, e.country, e.page))
            if ts >= now - MINUTE and ts > self.recent.get(visitor, float("-inf")):
                self.recent[visitor] = ts
        return session

    def _index(self, s: VisitorSession) -> None:
        minute = int(s.last // MINUTE)
        bucket = self.by_minute.get(minute)
        if bucket is None:
            bucket = self.by_minute[minute] = set()
        bucket.add(s.session_id)

    def _unindex(self, s: VisitorSession) -> None:
        minute = int(s.last // MINUTE)
        bucket = self.by_minute.get(minute)
        if bucket is not None:
            bucket.discard(s.session_id)
            if not bucket:
                del self.by_minute[minute]

    def _end(self, s: VisitorSession) -> None:
        self._unindex(s)
        if self.active.get(s.session_id) is s:
            del self.active[s.session_id]
        if int(s.last // DAY) >= self.day:
            self.ended.append(s)

    # --- time passing ----------------------------------------------------------------------------
    def expire(self, now: float) -> list[VisitorSession]:
        """End the sessions idle for longer than the timeout (returned, oldest minute first) and
        forget yesterday's counters on a new day."""
        today = int(now // DAY)
        if today != self.day:
            self.day = today
            self.ended = [s for s in self.ended if int(s.last // DAY) >= today]
            for table in (self.day_pages, self.day_keys):
                for old in [d for d in table if d < today]:
                    del table[old]
            for old in [d for d in self.day_total if d < today]:
                del self.day_total[old]
        horizon = now - self.timeout
        last_minute = int(horizon // MINUTE)
        ended: list[VisitorSession] = []
        for minute in sorted(m for m in self.by_minute if m <= last_minute):
            for sid in list(self.by_minute.get(minute, ())):
                session = self.active[sid]
                if session.last < horizon:
                    self._end(session)
                    ended.append(session)
        first_chart = int(now // MINUTE) - CHART_MINUTES
        for old in [m for m in self.minute_visitors if m <= first_chart]:
            del self.minute_visitors[old]
        return ended

    def visitors_last_minute(self, now: float) -> int:
        horizon = now - MINUTE
        if any(ts < horizon for ts in self.recent.values()):
            self.recent = {v: ts for v, ts in self.recent.items() if ts >= horizon}
        return len(self.recent)

    # --- views (call expire(now) first) ----------------------------------------------------------
    def _sessions(self, f: Filter) -> Iterable[VisitorSession]:
        if f.empty:
            return self.active.values()
        return (s for s in self.active.values() if f.matches(s.country, s.current_page))

    def stats(self, f: Filter = NO_FILTER) -> CurrentStats:
        day = self.day
        if f.empty:
            pages = self.day_pages.get(day, Counter())
            return CurrentStats(len(self.active), self.day_total.get(day, 0), ranked(pages))
        total = 0
        by_page: Counter[str] = Counter()
        for (country, page), count in self.day_keys.get(day, Counter()).items():
            if f.matches(country, page):
                total += count
                if page:
                    by_page[page] += count
        active = sum(1 for _ in self._sessions(f))
        return CurrentStats(active, total, ranked(by_page))

    def sessions(
        self, f: Filter = NO_FILTER, limit: int | None = None
    ) -> tuple[list[SessionView], int]:
        """Active sessions (most recent activity first, ties by id) and how many match."""
        found = sorted(self._sessions(f), key=lambda s: (-s.last, s.session_id))
        shown = found if limit is None else found[:limit]
        return [s.view() for s in shown], len(found)

    def detailed(self, now: float, f: Filter = NO_FILTER) -> Detailed:
        midnight = self.day * DAY
        today = [
            s
            for s in chain(self.active.values(), self.ended)
            if s.last >= midnight and f.matches(s.country, s.current_page)
        ]
        countries: Counter[str] = Counter()
        devices: Counter[str] = Counter()
        referrers: Counter[str] = Counter()
        entries: Counter[str] = Counter()
        exits: Counter[str] = Counter()
        paged = bounced = 0
        durations = 0
        for s in today:
            countries[s.country or "unknown"] += 1
            devices[s.device or "unknown"] += 1
            referrers[s.referrer or "direct"] += 1
            durations += s.duration
            if s.entry is not None:
                entries[s.entry] += 1
                exits[s.journey[-1]] += 1
                paged += 1
                bounced += s.steps == 1
        current = int(now // MINUTE)
        chart = []
        for minute in range(current - CHART_MINUTES + 1, current + 1):
            seen = self.minute_visitors.get(minute, ())
            if f.empty:
                count = len({v for v, _, _ in seen})
            else:
                count = len({v for v, c, p in seen if f.matches(c, p)})
            chart.append(MinuteVisitors(iso(minute * MINUTE), count))
        summary = self.stats(f)
        return Detailed(
            filter=FilterView(f.country, f.page),
            summary=summary,
            sessions_today=len(today),
            countries=ranked(countries),
            devices=ranked(devices),
            referrers=ranked(referrers),
            pages=summary.pages_visited,
            entry_pages=ranked(entries),
            exit_pages=ranked(exits),
            avg_session_duration=round(durations / len(today), 2) if today else 0.0,
            bounce_rate=round(bounced * 100.0 / paged, 2) if paged else 0.0,
            visitors_per_minute=chart,
            generated_at=iso(now),
        )
