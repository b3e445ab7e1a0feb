"""The metrics aggregator: rolling windows over the event log, kept in memory by one actor.

State is a map of one-minute buckets (by the event's ``timestamp``) covering the last 48 hours:
each bucket counts events and keeps, for that minute, the event names, countries, devices,
referrers and pages (counters) and the distinct users, converting users and sessions (sets).
Every view is computed from those buckets, so the numbers come only from real events. On start
the actor rebuilds the buckets from the log (:meth:`MetricsAggregator.load`), so a restarted server
shows the same numbers.

Windows are whole UTC minutes ("the last N minutes" is the current minute and the N-1 before it);
an event stamped slightly in the future (within the ingest limit) counts in the current windows at
once. With ``m`` the current minute:

* ``totalEvents``: events in minutes ``m-1439 .. m`` (the last 24 h);
* ``activeUsers``: distinct users (``userId``, else ``session_id``) in ``m-4 .. m`` (5 minutes);
* ``eventsPerHour``: events in ``m-59 .. m`` (60 minutes);
* ``conversionRate``: 100 x (distinct users of the last 24 h who sent a conversion event in it)
  / (distinct users of the last 24 h); 0 with no users;
* every ``...Change``: the percentage change of the same figure computed 24 h earlier (the window
  moved back by 1440 minutes): ``100 x (now - before) / before``, rounded to 2 decimals; 0 when
  the earlier figure is 0 (no earlier data);
* ``eventVolumeData``: 24 clock-hour buckets, the current hour last, ``time`` = the hour's start
  (so its sum can differ from ``totalEvents``, whose window moves by minutes);
* ``topEvents``, ``eventDistribution`` (``percentage`` of ``totalEvents``),
  ``geographicDistribution``, ``deviceTypes``, ``topReferrers``: the top 10 over the last 24 h,
  by count then name; events without that field are not counted in that list;
* ``performanceMetrics`` describe this process's ingest requests: ``avgResponseTime`` the mean
  handling time (ms) of ingest requests in the last 5 minutes, ``processingRate`` the percentage
  of validated events that were committed, ``errorRate`` the percentage of ingest requests refused
  (400/413/429) or failed (500), both over the last 24 h (100 and 0 with no requests);
  ``uptime`` the percentage of the last 24 h (or of the time since the first recorded start, if
  shorter) covered by recorded runs (each run's start to its last heartbeat; the current run to
  now);
* ``liveEvents``: the 20 events committed last, newest first; ``timeAgo`` from the event's
  ``timestamp``; missing ``userId`` (falls back to ``session_id``), ``country``, ``device`` are "".

Visitor counters (:class:`CurrentStats`, the ingest response's ``current_stats``): ``total_active``
sessions with an event in the last ``session_timeout_minutes``, ``total_today`` events stamped
since midnight UTC, ``pages_visited`` events with a ``page`` since midnight UTC, per page.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from actors.eventlog.events import Event, iso, time_ago
from actors.eventlog.log import EventLog, Run
from actors.eventlog.views import CurrentStats
from actors.runtime import Actor, Reply, handles

MINUTE = 60
DAY_MINUTES = 1440
KEEP_MINUTES = 2 * DAY_MINUTES + 60
TOP = 10
LIVE_EVENTS = 20


# --- wire shapes (metrics-dashboard-api.md, names verbatim) --------------------------------------
class VolumePoint(msgspec.Struct):
    time: str
    events: int


class NameCount(msgspec.Struct):
    name: str
    count: int


class DistributionItem(msgspec.Struct):
    name: str
    value: int
    percentage: float


class CountryCount(msgspec.Struct):
    country: str
    count: int


class DeviceCount(msgspec.Struct):
    device: str
    count: int


class ReferrerCount(msgspec.Struct):
    referrer: str
    count: int


class PerformanceMetrics(msgspec.Struct, rename="camel"):
    avg_response_time: float
    processing_rate: float
    error_rate: float
    uptime: float


class LiveEvent(msgspec.Struct, rename="camel"):
    id: str
    event_name: str
    user_id: str
    country: str
    device: str
    timestamp: str
    time_ago: str


class FeedEvent(msgspec.Struct, rename="camel"):
    """An item of the ``events`` push: a LiveEvent plus the rest of the event."""

    id: str
    event_name: str
    user_id: str
    country: str
    device: str
    timestamp: str
    time_ago: str
    session_id: str | None
    page: str | None
    referrer: str | None
    properties: dict[str, Any] | None


class MetricsDashboard(msgspec.Struct, rename="camel"):
    total_events: int
    total_events_change: float
    active_users: int
    active_users_change: float
    events_per_hour: int
    events_per_hour_change: float
    conversion_rate: float
    conversion_rate_change: float
    event_volume_data: list[VolumePoint]
    top_events: list[NameCount]
    event_distribution: list[DistributionItem]
    geographic_distribution: list[CountryCount]
    device_types: list[DeviceCount]
    top_referrers: list[ReferrerCount]
    performance_metrics: PerformanceMetrics
    live_events: list[LiveEvent]


@dataclass(frozen=True, slots=True)
class LiveCounts:
    active_users: int
    events_last_5_minutes: int


def live_event(e: Event, now: float) -> LiveEvent:
    return LiveEvent(
        e.id,
        e.name,
        e.user_key or "",
        e.country or "",
        e.device or "",
        iso(e.timestamp),
        time_ago(now - e.timestamp),
    )


def feed_event(e: Event, now: float) -> FeedEvent:
    return FeedEvent(
        e.id,
        e.name,
        e.user_key or "",
        e.country or "",
        e.device or "",
        iso(e.timestamp),
        time_ago(now - e.timestamp),
        e.session_id,
        e.page,
        e.referrer,
        e.properties,
    )


# --- messages ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ingested:
    """Events just committed to the log; the reply (if any) gets the visitor counters after."""

    events: tuple[Event, ...]
    reply: Reply[CurrentStats] | None = None


@dataclass(frozen=True, slots=True)
class RequestDone:
    """One ingest request finished (``ok`` False: refused or failed)."""

    duration_ms: float
    ok: bool
    accepted: int = 0  # events validated and sent to the log
    committed: int = 0  # of those, how many the log confirmed (stored or already there)


@dataclass(frozen=True, slots=True)
class GetDashboard:
    reply: Reply[MetricsDashboard]


@dataclass(frozen=True, slots=True)
class GetLive:
    reply: Reply[LiveCounts]


@dataclass(frozen=True, slots=True)
class GetCurrentStats:
    reply: Reply[CurrentStats]


# --- state ---------------------------------------------------------------------------------------
class _Bucket:
    __slots__ = (
        "converters",
        "count",
        "countries",
        "devices",
        "names",
        "pages",
        "referrers",
        "users",
    )

    def __init__(self) -> None:
        self.count = 0
        self.names: Counter[str] = Counter()
        self.countries: Counter[str] = Counter()
        self.devices: Counter[str] = Counter()
        self.referrers: Counter[str] = Counter()
        self.pages: Counter[str] = Counter()
        self.users: set[str] = set()
        self.converters: set[str] = set()


class _Requests:
    __slots__ = ("accepted", "committed", "duration_ms", "errors", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.accepted = 0
        self.committed = 0
        self.duration_ms = 0.0


def change(now: float, before: float) -> float:
    if before == 0:
        return 0.0
    return round((now - before) * 100.0 / before, 2)


def _top(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def _seq(e: Event) -> int:
    return e.seq


def _merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class MetricsAggregator(Actor):
    kind = "metrics-aggregator"

    def __init__(
        self,
        now: Callable[[], float],
        *,
        conversion_events: Iterable[str] = ("purchase", "signup"),
        session_timeout_minutes: float = 30.0,
        mailbox_size: int = 1024,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.now = now
        self.conversion_events = frozenset(conversion_events)
        self.session_timeout_seconds = session_timeout_minutes * 60.0
        self.buckets: dict[int, _Bucket] = {}
        self.live: deque[Event] = deque(maxlen=LIVE_EVENTS)
        self.loaded_seq = 0  # the last event read from the log at start
        self.sessions: dict[str, float] = {}  # session_id -> last event time, oldest first
        self.today = -1
        self.today_count = 0
        self.today_pages: Counter[str] = Counter()
        self.requests: dict[int, _Requests] = {}
        self.runs: list[Run] = []
        self._pruned_at = -1
        self.version = 0  # bumped by every change, for the dashboard cache
        self._cached: tuple[int, float, MetricsDashboard] | None = None
        self.run_started = now()

    # --- start: rebuild from the log ---------------------------------------------------------
    async def load(self, log: EventLog, *, page: int = 10_000, upto: int | None = None) -> int:
        """Rebuild the windows from the log up to ``seq`` ``upto`` (default: its last event)
        (call before :meth:`run`); returns events read. Later events are told as they come."""
        if upto is None:
            upto = await log.last_seq()
        horizon = (int(self.now() // MINUTE) - KEEP_MINUTES) * MINUTE
        after = 0
        total = 0
        while True:
            events = await log.since(horizon, after_seq=after, limit=page, upto=upto)
            for e in events:
                self._add(e)
            total += len(events)
            if len(events) < page:
                break
            after = events[-1].seq
        latest = await log.latest(LIVE_EVENTS, upto=upto)
        self.live.extend(reversed(latest))
        self.loaded_seq = max(self.loaded_seq, upto)
        return total

    def set_runs(self, earlier: list[Run], started_at: float) -> None:
        self.runs = list(earlier)
        self.run_started = started_at

    # --- messages ------------------------------------------------------------------------------
    @handles(Ingested)
    async def _ingested(self, message: Ingested) -> None:
        self.version += 1
        loaded = self.loaded_seq
        for e in message.events:
            if e.seq == 0 or e.seq > loaded:  # (not already read from the log at start)
                self._add(e)
                self.live.append(e)
        if message.reply is not None:
            message.reply.send(self.current_stats())

    @handles(RequestDone)
    async def _request_done(self, message: RequestDone) -> None:
        self.version += 1
        self._record_request(message)

    @handles(GetDashboard)
    async def _get_dashboard(self, message: GetDashboard) -> None:
        message.reply.send(self.cached_dashboard())

    @handles(GetLive)
    async def _get_live(self, message: GetLive) -> None:
        message.reply.send(self.live_counts())

    @handles(GetCurrentStats)
    async def _get_current_stats(self, message: GetCurrentStats) -> None:
        message.reply.send(self.current_stats())

    # --- adding ----------------------------------------------------------------------------------
    def _add(self, e: Event) -> None:
        ts = e.timestamp
        minute = int(ts // MINUTE)
        now = self.now()
        if minute < int(now // MINUTE) - KEEP_MINUTES:
            return
        bucket = self.buckets.get(minute)
        if bucket is None:  # a new minute (at most one a minute, normally): forget the oldest
            self._prune(int(now // MINUTE))
            bucket = self.buckets[minute] = _Bucket()
        bucket.count += 1
        bucket.names[e.name] += 1
        if e.country:
            bucket.countries[e.country] += 1
        if e.device:
            bucket.devices[e.device] += 1
        if e.referrer:
            bucket.referrers[e.referrer] += 1
        if e.page:
            bucket.pages[e.page] += 1
        user = e.user_key
        if user:
            bucket.users.add(user)
            if e.name in self.conversion_events:
                bucket.converters.add(user)
        session = e.session_id
        if session and ts >= now - self.session_timeout_seconds:
            last = self.sessions.pop(session, None)
            self.sessions[session] = ts if last is None else max(ts, last)
        day = int(now // 86400)
        if day == self.today and int(ts // 86400) == day:
            self.today_count += 1
            if e.page:
                self.today_pages[e.page] += 1

    def _record_request(self, done: RequestDone) -> None:
        minute = int(self.now() // MINUTE)
        slot = self.requests.get(minute)
        if slot is None:
            slot = self.requests[minute] = _Requests()
            horizon = minute - DAY_MINUTES
            for old in [m for m in self.requests if m <= horizon]:
                del self.requests[old]
        slot.requests += 1
        slot.errors += 0 if done.ok else 1
        slot.accepted += done.accepted
        slot.committed += done.committed
        slot.duration_ms += done.duration_ms

    def _prune(self, current: int) -> None:
        if current == self._pruned_at:
            return
        self._pruned_at = current
        horizon = current - KEEP_MINUTES
        if self.buckets and min(self.buckets) < horizon:
            for old in [m for m in self.buckets if m < horizon]:
                del self.buckets[old]

    # --- views -----------------------------------------------------------------------------------
    def _window(self, lo: int, hi: int | None = None) -> list[_Bucket]:
        if hi is None:
            return [b for m, b in self.buckets.items() if m >= lo]
        return [b for m, b in self.buckets.items() if lo <= m <= hi]

    @staticmethod
    def _distinct(buckets: list[_Bucket], attr: str = "users") -> set[str]:
        out: set[str] = set()
        for b in buckets:
            out.update(getattr(b, attr))
        return out

    def _conversion_rate(self, buckets: list[_Bucket]) -> float:
        users = self._distinct(buckets)
        if not users:
            return 0.0
        return round(len(self._distinct(buckets, "converters")) * 100.0 / len(users), 2)

    def live_counts(self) -> LiveCounts:
        m = int(self.now() // MINUTE)
        recent = self._window(m - 4)
        return LiveCounts(len(self._distinct(recent)), sum(b.count for b in recent))

    def current_stats(self) -> CurrentStats:
        now = self.now()
        day = int(now // 86400)
        if day != self.today:  # a new day (or the first call): recount today from the buckets
            self.today = day
            first = day * DAY_MINUTES
            today = self._window(first)
            self.today_count = sum(b.count for b in today)
            self.today_pages = Counter()
            for b in today:
                self.today_pages.update(b.pages)
        sessions = self.sessions
        horizon = now - self.session_timeout_seconds
        while sessions:
            oldest = next(iter(sessions))
            if sessions[oldest] >= horizon:
                break
            del sessions[oldest]
        active = sum(1 for ts in sessions.values() if ts >= horizon)
        return CurrentStats(active, self.today_count, dict(self.today_pages.most_common()))

    def cached_dashboard(self, max_age_seconds: float = 1.0) -> MetricsDashboard:
        """The dashboard, reused while nothing changed for up to ``max_age_seconds`` (many
        dashboards connecting at once cost one computation)."""
        now = self.now()
        cached = self._cached
        if (
            cached is not None
            and cached[0] == self.version
            and 0 <= now - cached[1] < max_age_seconds
        ):
            return cached[2]
        result = self.dashboard()
        self._cached = (self.version, now, result)
        return result

    def dashboard(self) -> MetricsDashboard:
        now = self.now()
        m = int(now // MINUTE)
        self._prune(m)
        day = self._window(m - DAY_MINUTES + 1)
        before = self._window(m - 2 * DAY_MINUTES + 1, m - DAY_MINUTES)
        total = sum(b.count for b in day)
        total_before = sum(b.count for b in before)
        active = len(self._distinct(self._window(m - 4)))
        active_before = len(self._distinct(self._window(m - DAY_MINUTES - 4, m - DAY_MINUTES)))
        hour = sum(b.count for b in self._window(m - 59))
        hour_before = sum(b.count for b in self._window(m - DAY_MINUTES - 59, m - DAY_MINUTES))
        conversion = self._conversion_rate(day)
        conversion_before = self._conversion_rate(before)

        names: Counter[str] = Counter()
        countries: Counter[str] = Counter()
        devices: Counter[str] = Counter()
        referrers: Counter[str] = Counter()
        for b in day:
            names.update(b.names)
            countries.update(b.countries)
            devices.update(b.devices)
            referrers.update(b.referrers)
        top_names = _top(names)

        current_hour = m // 60
        hours: Counter[int] = Counter()
        for minute, b in self.buckets.items():
            hours[minute // 60] += b.count
        volume = [
            VolumePoint(iso(h * 3600.0), hours.get(h, 0))
            for h in range(current_hour - 23, current_hour + 1)
        ]
        return MetricsDashboard(
            total_events=total,
            total_events_change=change(total, total_before),
            active_users=active,
            active_users_change=change(active, active_before),
            events_per_hour=hour,
            events_per_hour_change=change(hour, hour_before),
            conversion_rate=conversion,
            conversion_rate_change=change(conversion, conversion_before),
            event_volume_data=volume,
            top_events=[NameCount(n, c) for n, c in top_names],
            event_distribution=[
                DistributionItem(n, c, round(c * 100.0 / total, 2) if total else 0.0)
                for n, c in top_names
            ],
            geographic_distribution=[CountryCount(n, c) for n, c in _top(countries)],
            device_types=[DeviceCount(n, c) for n, c in _top(devices)],
            top_referrers=[ReferrerCount(n, c) for n, c in _top(referrers)],
            performance_metrics=self.performance(now),
            live_events=[live_event(e, now) for e in sorted(self.live, key=_seq, reverse=True)],
        )

    def performance(self, now: float) -> PerformanceMetrics:
        m = int(now // MINUTE)
        recent = [s for minute, s in self.requests.items() if minute >= m - 4]
        day = [s for minute, s in self.requests.items() if minute > m - DAY_MINUTES]
        recent_n = sum(s.requests for s in recent)
        avg = round(sum(s.duration_ms for s in recent) / recent_n, 2) if recent_n else 0.0
        requests = sum(s.requests for s in day)
        errors = sum(s.errors for s in day)
        accepted = sum(s.accepted for s in day)
        committed = sum(s.committed for s in day)
        return PerformanceMetrics(
            avg_response_time=avg,
            processing_rate=round(committed * 100.0 / accepted, 2) if accepted else 100.0,
            error_rate=round(errors * 100.0 / requests, 2) if requests else 0.0,
            uptime=self.uptime(now),
        )

    def uptime(self, now: float) -> float:
        runs = [(r.started_at, min(r.last_seen, now)) for r in self.runs]
        runs.append((self.run_started, now))
        first = min(start for start, _ in runs)
        window_start = max(now - 86400.0, first)
        span = now - window_start
        if span <= 0:
            return 100.0
        up = 0.0
        for start, end in _merge_intervals(runs):
            lo, hi = max(start, window_start), min(end, now)
            if hi > lo:
                up += hi - lo
        return round(min(100.0, up * 100.0 / span), 2)
