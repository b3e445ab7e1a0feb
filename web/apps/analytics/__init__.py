"""Event analytics: ingest REST API, the ``/ws/metrics`` dashboard and ``analytics:*`` live metrics.

Ingest (open to websites, as trackers are; CORS ``*``; rate-limited per client IP):

* ``POST /api/events`` - one event, in the visitor spelling (``type``, ``page``, ``session_id``,
  ``timestamp``, ``country``, ``metadata.device``, ``metadata.referrer``) and/or the product
  spelling (``eventName``, ``userId``, ``country``, ``device``, ``referrer``, ``properties``); see
  :mod:`actors.eventlog.events` for the rules.
* ``POST /api/events/batch`` - up to ``ingest_max_batch_events`` events, as a JSON array or as
  ``{"events": [...]}``. A batch is all or nothing: one invalid event refuses the request (the error
  names it, e.g. ``events[3].timestamp``) and nothing is stored.
* Both answer only after the events are committed to the log (group commit through the Store), with
  the visitor seed's shape: ``{"success": true, "message": ..., "data": {..., "current_stats":
  {"total_active", "total_today", "pages_visited"}}}`` (200). The single-event answer's ``data``
  also has ``session_id``, ``event_id`` and ``duplicate``; the batch's has ``accepted``, ``stored``
  and ``duplicates``.
* Refusals: ``{"success": false, "message": ..., "field": ...}`` with 400 (invalid JSON or event;
  ``field`` is the JSON path), 413 (body over ``ingest_max_body_bytes``), 429 (over
  ``ingest_rate_per_ip_per_minute``, with ``Retry-After``), 500 (the log could not commit).
  A refusal costs only its sender: nothing else waits on it.
* Idempotency: an event ``id`` already in the log is not stored again; a request whose
  ``Idempotency-Key`` header was seen before stores nothing and answers 200 with
  ``duplicate``/``duplicates`` set. Keys are kept in the log's database indefinitely.

Dashboards (a JWT is required unless ``anonymous_dashboards`` is on; the default namespace ``/``
always requires one, since the guild monitor shares it):

* Socket.IO namespace ``/ws/metrics`` (token from ``auth.token``, ``?token=`` or
  ``Authorization: Bearer``): ``dashboard_data`` (the full ``MetricsDashboard``) right after connect
  and every ``dashboard_push_interval_seconds``; ``events`` (an array of committed events, each a
  ``LiveEvent`` plus ``sessionId``, ``page``, ``referrer``, ``properties``) at most every
  ``events_batch_interval_ms``, at most ``events_max_per_push`` per packet.
* On ``/``: ``analytics:subscribeLiveMetrics`` joins the live-metrics subscribers and answers with
  one ``analytics:liveMetrics`` at once; ``analytics:unsubscribeLiveMetrics`` leaves;
  ``analytics:requestLiveMetrics`` answers once to the asker only; ``analytics:joinDashboard`` /
  ``analytics:leaveDashboard`` with a dashboard id (a non-empty string of at most
  ``ingest_max_string_chars``; anything else gets ``analytics:error``) join/leave that dashboard's
  room. Every ``live_metrics_interval_seconds`` one ``analytics:liveMetrics`` goes to the
  subscribers and every dashboard room (a client in several gets it once). Each of these events
  answers an ack, when the client asks for one, with ``{"success": true, ...}`` or
  ``{"success": false, "message": ...}``.
* ``analytics:liveMetrics`` is ``[{name, value, timestamp}]`` with: ``Active Users`` (as
  ``activeUsers``), ``Events per Minute`` (events in the last 5 minutes / 5), ``Connected Clients``
  (Engine.IO connections), ``Messages per Second`` (Socket.IO events received per second since
  the previous sample), ``CPU Usage`` (% of one core used by this process since the previous
  sample), ``Memory Usage`` (resident memory of this process, MB).
* REST reads: ``GET /api/metrics/dashboard`` (the ``MetricsDashboard``) and
  ``GET /api/metrics/live`` (the live metrics array), with ``Authorization: Bearer``.

Decisions where the seeds are silent:

* Status 200 for accepted events (the visitor seed's answer has no other code); a request whose
  events were all duplicates is still a success.
* The per-IP limit counts requests (a batch is one), keyed by the client address: the
  connecting address, or the one ``X-Forwarded-For`` names when the peer is one of
  ``trusted_proxies`` (:mod:`web.sockets.proxies`).
* Event names, countries, devices and referrers are shown as posted (no case folding); the device
  is any string, not only ``mobile``/``web``/``tablet``.
* ``anonymous_dashboards`` opens ``/ws/metrics`` and the REST reads, not ``/`` (shared with the
  guild monitor, which needs identities).
* ``analytics:subscribeLiveMetrics`` answers with the current metrics at once (a new subscriber
  should not stare at an empty chart for 5 s); joining a dashboard room does not.
* A graceful stop records the run's end for ``uptime``; after a crash the last heartbeat
  (``uptime_mark_interval_seconds``) stands in for it.
* ``avgResponseTime``, ``processingRate`` and ``errorRate`` describe this process (they start
  afresh after a restart); every other number is rebuilt from the log.

Metric definitions are in :mod:`actors.analytics.metrics`.

Other views of the log (the visitor analytics) are handed to :class:`Analytics` by the
composition root (:mod:`web.apps`): each :class:`~actors.eventlog.views.LogFollower` is told of
every committed batch before the ingest answers, and the :class:`~actors.eventlog.views.StatsSource`
answers the ingest's ``current_stats`` (without one, the metrics aggregator's visitor counters
do).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import trio
from quart import Blueprint, Response, request

from actors.analytics.feed import EventFeed, NewEvents
from actors.analytics.metrics import (
    FeedEvent,
    GetDashboard,
    GetLive,
    Ingested,
    MetricsAggregator,
    MetricsDashboard,
    RequestDone,
)
from actors.eventlog.events import (
    BatchIn,
    Event,
    EventError,
    EventIn,
    EventLimits,
    iso,
    normalise,
    validation_error,
)
from actors.eventlog.log import EventLog
from actors.eventlog.views import CurrentStats, LogFollower, StatsSource
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import supervise
from actors.sockets.session import Session
from web.platform.auth import TokenError, token_of
from web.platform.http import ApiError, caller, error_response, json_response, read_body
from web.platform.runtime import Runtime
from web.sockets.namespace import Ack, ConnectRefused, Namespace

log = logging.getLogger("switchboard.analytics")

METRICS_NAMESPACE = "/ws/metrics"
LIVE_ROOM = "analytics:live"
DASHBOARD_ROOM = "analytics:dashboard:"

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_encode = msgspec.json.encode
_single_decoder = msgspec.json.Decoder(EventIn)
_batch_decoder = msgspec.json.Decoder(list[EventIn] | BatchIn)


class LiveMetric(msgspec.Struct):
    name: str
    value: float
    timestamp: str


def rss_megabytes() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return round(int(f.read().split()[1]) * _PAGE_SIZE / 1_048_576, 1)
    except OSError:  # pragma: no cover - not Linux
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class ProcessSampler:
    """CPU use and Socket.IO message rate between two samples (at least ``min_seconds`` apart)."""

    def __init__(self, events_in: Any, min_seconds: float = 0.5) -> None:
        self.events_in = events_in
        self.min_seconds = min_seconds
        self._at = time.monotonic()
        self._cpu = time.process_time()
        self._count = 0
        self.cpu_percent = 0.0
        self.messages_per_second = 0.0

    def sample(self) -> None:
        at, cpu, count = time.monotonic(), time.process_time(), int(self.events_in())
        elapsed = at - self._at
        if elapsed < self.min_seconds:
            return
        self.cpu_percent = round((cpu - self._cpu) * 100.0 / elapsed, 1)
        self.messages_per_second = round(max(0, count - self._count) / elapsed, 2)
        self._at, self._cpu, self._count = at, cpu, count


class Analytics:
    """The analytics application: built by :func:`install`, started with the server."""

    def __init__(
        self,
        runtime: Runtime,
        log: EventLog,
        *,
        followers: Sequence[LogFollower] = (),
        current_stats: StatsSource | None = None,
    ) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.settings = s
        self.clock = runtime.clock
        self.log = log
        self.followers = tuple(followers)
        self.stats_source = current_stats
        self.limits = EventLimits(
            max_string_chars=s.ingest_max_string_chars,
            max_future_seconds=s.ingest_max_future_seconds,
            max_past_seconds=s.ingest_max_past_seconds,
            max_nesting=max(1, s.max_json_depth - 4),  # event + array + packet around it
        )
        self.aggregator = MetricsAggregator(
            self.clock.now,
            conversion_events=s.conversion_events,
            session_timeout_minutes=s.session_timeout_minutes,
        )
        self.limiter = SlidingWindowLimiter(
            s.ingest_rate_per_ip_per_minute, 60.0, now=self.clock.now
        )
        self.metrics_ns: Namespace = runtime.namespace(METRICS_NAMESPACE, authenticated=False)
        self.metrics_ns.use(self._dashboard_auth)
        self.metrics_ns.connect(self._dashboard_connected)
        self.default_ns: Namespace = runtime.namespace("/")
        self.feed = EventFeed(
            self._publish_events,
            now=self.clock.now,
            listeners=lambda: len(self.metrics_ns.rooms.sessions),
            interval_seconds=s.events_batch_interval_ms / 1000.0,
            max_per_push=s.events_max_per_push,
        )
        self.dashboard_rooms: set[str] = set()
        self.sampler = ProcessSampler(lambda: runtime.sio.stats.events_in)
        self._run = 0
        self._register_live_events()
        runtime.add_blueprint(self.blueprint())
        runtime.on_start(self.start)
        # operations: /metrics (mailboxes, refusals), housekeeping, the graceful stop
        runtime.add_actor(self.aggregator.kind, self.aggregator)
        runtime.add_actor(self.feed.kind, self.feed)
        runtime.add_rate_limiter("ingest per IP", self.limiter)
        runtime.on_stop(self._stopping)
        runtime.housekeeping.add_async("analytics event retention", self._expire_events)

    # --- start ---------------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        now = self.clock.now()
        run, earlier = await self.log.start_run(now)
        self._run = run
        self.aggregator.set_runs(earlier, now)
        loaded = await self.aggregator.load(self.log)
        log.info("analytics: rebuilt the metrics from %d logged events", loaded)
        nursery.start_soon(supervise, self.aggregator)
        nursery.start_soon(supervise, self.feed)
        nursery.start_soon(
            self._every, self.settings.dashboard_push_interval_seconds, self._push_dashboards
        )
        nursery.start_soon(
            self._every, self.settings.live_metrics_interval_seconds, self._push_live_metrics
        )
        nursery.start_soon(
            self._every,
            self.settings.uptime_mark_interval_seconds,
            lambda: self.log.mark_run(run, self.clock.now()),
        )

    async def _stopping(self) -> None:
        """A graceful stop: record that this run was up until now (the uptime's stop mark)."""
        if self._run:
            await self.log.mark_run(self._run, self.clock.now())

    async def _expire_events(self) -> int:
        """Retention: events and idempotency keys older than ``event_retention_days``."""
        days = self.settings.event_retention_days
        if not days:
            return 0
        return await self.log.expire(self.clock.now() - days * 86400)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        async def guarded() -> None:
            try:
                await job()
            except Exception:  # a failed push is logged; the next one comes on time
                log.exception("analytics: periodic job failed")

        await self.clock.every(seconds, guarded)

    # --- ingest --------------------------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        bp = Blueprint("analytics", __name__)

        @bp.route("/api/events", methods=["POST", "OPTIONS"])
        async def post_event() -> Response:
            return await self._ingest(batch=False)

        @bp.route("/api/events/batch", methods=["POST", "OPTIONS"])
        async def post_batch() -> Response:
            return await self._ingest(batch=True)

        @bp.get("/api/metrics/dashboard")
        async def get_dashboard() -> Response:
            self._authorize()
            return json_response(200, await self.dashboard())

        @bp.get("/api/metrics/live")
        async def get_live() -> Response:
            self._authorize()
            return json_response(200, await self.live_metrics())

        @bp.errorhandler(ApiError)
        async def refused(err: ApiError) -> Response:
            return error_response(err, _CORS)  # trackers post from any origin: errors too

        return bp

    async def _ingest(self, *, batch: bool) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", status=204, headers=_PREFLIGHT)
        started = time.perf_counter()
        accepted = committed = 0
        ok = False
        try:
            events, key = await self._read_events(batch)
            accepted = len(events)
            try:
                appended = await self.log.append(events, idempotency_key=key, now=self.clock.now())
            except Exception:
                log.exception("analytics: the log could not commit %d events", len(events))
                raise ApiError(500, "Internal server error: the events were not stored") from None
            committed = accepted
            stats: CurrentStats = await self.aggregator.ask(
                lambda reply: Ingested(appended.events, reply)
            )
            if appended.events:
                await self.feed.tell(NewEvents(appended.events))
                for follower in self.followers:
                    await follower.committed(appended.events)
            if self.stats_source is not None:
                stats = await self.stats_source.current_stats()
            ok = True
        finally:
            done = RequestDone((time.perf_counter() - started) * 1000.0, ok, accepted, committed)
            if ok:
                await self.aggregator.tell(done)
            else:
                self.aggregator.tell_nowait(done)
        stored = len(appended.events)
        if batch:
            body = {
                "success": True,
                "message": f"{accepted} events processed successfully",
                "data": {
                    "accepted": accepted,
                    "stored": stored,
                    "duplicates": appended.duplicates,
                    "current_stats": stats,
                },
            }
        else:
            event = events[0]
            body = {
                "success": True,
                "message": "Event processed successfully",
                "data": {
                    "session_id": event.session_id,
                    "event_id": event.id,
                    "duplicate": stored == 0,
                    "current_stats": stats,
                },
            }
        return json_response(200, body, _CORS)

    async def _read_events(self, batch: bool) -> tuple[list[Event], str | None]:
        ip = self.runtime.proxies.client_of(request)
        if not self.limiter.allow(ip):
            limit = self.limiter.limit
            raise ApiError(
                429,
                f"Too many requests: at most {limit} per minute per address",
                headers={"Retry-After": str(max(1, round(self.limiter.retry_after(ip))))},
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key) <= self.limits.max_string_chars:
            raise ApiError(
                400,
                f"Idempotency-Key: must be 1 to {self.limits.max_string_chars} characters",
                field="Idempotency-Key",
            )
        limit = self.settings.ingest_max_body_bytes
        body = await read_body(limit, f"Request body larger than {limit} bytes")
        now = self.clock.now()
        try:
            if batch:
                decoded = _batch_decoder.decode(body)
                raw = decoded.events if isinstance(decoded, BatchIn) else decoded
                prefix = "events"
            else:
                raw = [_single_decoder.decode(body)]
                prefix = ""
        except msgspec.ValidationError as err:
            e = validation_error(err)
            field = e.field
            if batch and field.startswith("["):
                field = "events" + field
            where = f"{field}: " if field else ""
            raise ApiError(400, f"Invalid event: {where}{e.problem}", field=field or None) from None
        except RecursionError:
            raise ApiError(400, "Invalid JSON body: nested too deeply") from None
        except msgspec.DecodeError:
            raise ApiError(400, "Invalid JSON body") from None
        if batch:
            if not raw:
                raise ApiError(
                    400, "Invalid batch: events: at least one event is needed", field="events"
                )
            cap = self.settings.ingest_max_batch_events
            if len(raw) > cap:
                raise ApiError(
                    400, f"Invalid batch: events: at most {cap} events per request", field="events"
                )
        events: list[Event] = []
        limits = self.limits
        try:
            for i, item in enumerate(raw):
                where = f"{prefix}[{i}]." if batch else ""
                events.append(normalise(item, now=now, limits=limits, where=where))
        except EventError as err:
            raise ApiError(400, f"Invalid event: {err}", field=err.field) from None
        return events, key

    def _authorize(self) -> None:
        caller(self.runtime.authenticator, anonymous=self.settings.anonymous_dashboards)

    # --- /ws/metrics -----------------------------------------------------------------------------
    async def _dashboard_auth(self, session: Session) -> None:
        token = token_of(session)
        if token is None:
            if self.settings.anonymous_dashboards:
                return
            raise ConnectRefused("Authentication failed: no token provided")
        try:
            session.identity = self.runtime.authenticator.verify(token)
        except TokenError as err:
            raise ConnectRefused(str(err)) from None

    async def _dashboard_connected(self, session: Session) -> None:
        session.emit("dashboard_data", await self.dashboard())

    async def dashboard(self) -> MetricsDashboard:
        result: MetricsDashboard = await self.aggregator.ask(GetDashboard)
        return result

    async def _push_dashboards(self) -> None:
        if self.metrics_ns.rooms.sessions:
            await self.metrics_ns.emit("dashboard_data", await self.dashboard())

    async def _publish_events(self, events: list[FeedEvent]) -> None:
        await self.metrics_ns.emit("events", events)

    # --- analytics:* on / ----------------------------------------------------------------------
    async def live_metrics(self) -> list[LiveMetric]:
        counts = await self.aggregator.ask(GetLive)
        self.sampler.sample()
        stamp = iso(self.clock.now())
        engine = self.runtime.engine.describe()
        return [
            LiveMetric("Active Users", counts.active_users, stamp),
            LiveMetric("Events per Minute", round(counts.events_last_5_minutes / 5, 2), stamp),
            LiveMetric("Connected Clients", engine["connections"], stamp),
            LiveMetric("Messages per Second", self.sampler.messages_per_second, stamp),
            LiveMetric("CPU Usage", self.sampler.cpu_percent, stamp),
            LiveMetric("Memory Usage", rss_megabytes(), stamp),
        ]

    async def _push_live_metrics(self) -> None:
        registry = self.default_ns.rooms.registry
        self.dashboard_rooms = {r for r in self.dashboard_rooms if registry.get(r) is not None}
        rooms = [LIVE_ROOM, *sorted(self.dashboard_rooms)]
        if all(registry.get(r) is None for r in rooms):
            self.sampler.sample()
            return
        await self.default_ns.emit("analytics:liveMetrics", await self.live_metrics(), to=rooms)

    def _register_live_events(self) -> None:
        ns = self.default_ns

        @ns.on("analytics:subscribeLiveMetrics")
        async def subscribe(session: Session, args: list[Any], ack: Ack | None) -> None:
            await ns.rooms.join(session, LIVE_ROOM)
            session.emit("analytics:liveMetrics", await self.live_metrics())
            if ack is not None:
                ack({"success": True, "subscribed": True})

        @ns.on("analytics:unsubscribeLiveMetrics")
        async def unsubscribe(session: Session, args: list[Any], ack: Ack | None) -> None:
            await ns.rooms.leave(session, LIVE_ROOM)
            if ack is not None:
                ack({"success": True, "subscribed": False})

        @ns.on("analytics:requestLiveMetrics")
        async def request_once(session: Session, args: list[Any], ack: Ack | None) -> None:
            session.emit("analytics:liveMetrics", await self.live_metrics())
            if ack is not None:
                ack({"success": True})

        @ns.on("analytics:joinDashboard")
        async def join(session: Session, args: list[Any], ack: Ack | None) -> None:
            dashboard = self._dashboard_id(session, "analytics:joinDashboard", args, ack)
            if dashboard is None:
                return
            room = DASHBOARD_ROOM + dashboard
            await ns.rooms.join(session, room)
            self.dashboard_rooms.add(room)
            if ack is not None:
                ack({"success": True, "dashboardId": dashboard})

        @ns.on("analytics:leaveDashboard")
        async def leave(session: Session, args: list[Any], ack: Ack | None) -> None:
            dashboard = self._dashboard_id(session, "analytics:leaveDashboard", args, ack)
            if dashboard is None:
                return
            await ns.rooms.leave(session, DASHBOARD_ROOM + dashboard)
            if ack is not None:
                ack({"success": True, "dashboardId": dashboard})

    def _dashboard_id(
        self, session: Session, event: str, args: list[Any], ack: Ack | None
    ) -> str | None:
        value = args[0] if args else None
        cap = self.limits.max_string_chars
        if isinstance(value, str) and 0 < len(value) <= cap:
            return value
        if not isinstance(value, str):
            got = "nothing" if not args else _json_type(value)
            message = f"{event}: dashboardId must be a string, got {got}"
        else:
            message = f"{event}: dashboardId must be 1 to {cap} characters"
        session.emit("analytics:error", {"message": message})
        if ack is not None:
            ack({"success": False, "message": message})
        return None


_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, idempotency-key",
    "Access-Control-Max-Age": "86400",
}


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (for error messages clients understand)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
