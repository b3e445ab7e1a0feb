"""Event analytics: ingest REST API, the ``/ws/metrics`` dashboard and ``analytics:*`` live metrics.

Ingest (open to websites, as trackers are; CORS ``*``; rate-limited per client IP):

* ``POST /api/events`` - one event, in the visitor spelling (``type``, ``page``, ``session_id``,
  ``timestamp``, ``country``, ``metadata.device``, ``metadata.referrer``) and/or the product
  spelling (``eventName``, ``userId``, ``country``, ``device``, ``referrer``, ``properties``); see
  :mod:`actors.eventlog.events` for the rules.
* ``POST /api/events/batch`` - up to ``ingest_max_batch_events`` events, as a JSON array or as
  ``{"events": [...]}``. A batch is all or nothing: one invalid event refuses the request (the error
  names it, e.g. ``events[3].timestamp``) and nothing is stored.
* Every event needs a name (``eventName`` or ``type``) and an identity (``session_id`` or
  ``userId``): without one, 400 naming ``session_id`` (in a batch, ``events[3].session_id``).
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
  ``duplicate``/``duplicates`` set. Keys are kept in the log's database
  for ``event_retention_days``, as the events are.

Dashboards (a JWT is required unless ``anonymous_dashboards`` is on; the default namespace ``/``
always requires one, since the guild monitor shares it). ``anonymous_dashboards`` means the same
on ``/ws/metrics`` and ``GET /api/metrics/*`` as on the visitor analytics' reads and feed: without
a token a dashboard is let in, but a token that is given must be valid:

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

* An event with neither ``session_id`` nor ``userId`` is refused: nobody could attribute it, yet
  it would inflate ``total_today`` and send the visitor feed an update no session owns.
* Status 200 for accepted events (the visitor seed's answer has no other code); a request whose
  events were all duplicates is still a success. A CORS preflight (``OPTIONS``) answers 204 with
  an empty ``text/plain`` body.
* The per-IP limit counts requests (a batch is one), keyed by the client address: the
  connecting address, or the one ``X-Forwarded-For`` names when the peer is one of
  ``trusted_proxies`` (:mod:`web.sockets.proxies`).
* Event names, countries, devices and referrers are shown as posted (no case folding); the device
  is any string, not only ``mobile``/``web``/``tablet``.
* ``anonymous_dashboards`` opens ``/ws/metrics`` and the REST reads to callers without a token,
  not ``/`` (shared with the guild monitor, which needs identities); a bad token is refused even
  then (a dashboard that sends one means to be someone).
* ``analytics:subscribeLiveMetrics`` answers with the current metrics at once (a new subscriber
  should not stare at an empty chart for 5 s); joining a dashboard room does not.
* A graceful stop records the run's end for ``uptime``; after a crash the last heartbeat
  (``uptime_mark_interval_seconds``) stands in for it.
* ``avgResponseTime``, ``processingRate`` and ``errorRate`` describe this process (they start
  afresh after a restart); every other number is rebuilt from the log.

Metric definitions are in :mod:`actors.analytics.metrics`; the live metrics are measured in
:mod:`web.apps.analytics.live`. The package: :mod:`~web.apps.analytics.rest` (ingest and the
dashboard reads), :mod:`~web.apps.analytics.events` (``analytics:*`` and ``/ws/metrics``),
:mod:`~web.apps.analytics.schemas` (the shapes at its doors).

Other views of the log (the visitor analytics) are handed to :class:`Analytics` by the
composition root (:mod:`web.apps`): each :class:`~actors.eventlog.views.LogFollower` is told of
every committed batch before the ingest answers, and the :class:`~actors.eventlog.views.StatsSource`
answers the ingest's ``current_stats`` (without one, the metrics aggregator's visitor counters
do).

In a cluster (``redis_url``) the views follow the log instead of being told by the ingest: every
node's tail (:mod:`actors.cluster.tail`) reads what any node committed, in ``seq`` order, and
feeds its metrics aggregator, live feed and followers one ingest request at a time; an ingest
wakes the other nodes and answers once its own node's tail has passed its events. Each node
pushes ``dashboard_data``, ``events`` and ``analytics:liveMetrics`` to its own clients only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from actors.analytics.feed import EventFeed, NewEvents
from actors.analytics.metrics import (
    GetCurrentStats,
    GetDashboard,
    GetLive,
    Ingested,
    LiveCounts,
    MetricsAggregator,
    MetricsDashboard,
    RequestDone,
)
from actors.cluster.tail import LogTail
from actors.eventlog.events import Event, EventLimits
from actors.eventlog.log import Appended, EventLog
from actors.eventlog.views import CurrentStats, LogFollower, StatsSource, by_request
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import supervise
from actors.store.faults import OutcomeUnknown, StoreError
from web.apps.analytics import events, rest
from web.apps.analytics.live import ProcessSampler, live_metrics
from web.apps.analytics.schemas import LiveMetric
from web.platform.http import ApiError
from web.platform.runtime import Runtime
from web.sockets.namespace import Namespace

log = logging.getLogger("switchboard.analytics")

METRICS_NAMESPACE = "/ws/metrics"
LOG_CHANNEL = "log-analytics"  # a node committed events: the others read the log now


def _seq(e: Event) -> int:
    return e.seq


class Analytics:
    """The analytics application: built by the composition root, started with the server."""

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
        self.default_ns: Namespace = runtime.namespace("/")
        self.feed = EventFeed(
            lambda items: events.publish_events(self, items),
            now=self.clock.now,
            listeners=lambda: len(self.metrics_ns.rooms.sessions),
            interval_seconds=s.events_batch_interval_ms / 1000.0,
            max_per_push=s.events_max_per_push,
        )
        self.dashboard_rooms: set[str] = set()
        self.sampler = ProcessSampler(lambda: runtime.sio.stats.events_in)
        self._run = 0
        # in a cluster every node follows the one log: the views are fed by the tail
        self.signals = runtime.signals
        self.tail: LogTail[Event] | None = None
        if self.signals is not None:
            self.signals.on(LOG_CHANNEL, self._hinted)
        events.register(self)
        runtime.add_blueprint(rest.blueprint(self))
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
        upto = await self.log.last_seq()
        loaded = await self.aggregator.load(self.log, upto=upto)
        log.info("analytics: rebuilt the metrics from %d logged events", loaded)
        nursery.start_soon(supervise, self.aggregator)
        nursery.start_soon(supervise, self.feed)
        s = self.settings
        if self.signals is not None:
            self.tail = LogTail(
                "analytics log",
                self.log.after,
                _seq,
                self._tailed,
                poll_seconds=s.cluster_log_poll_seconds,
            )
            self.tail.start_at(upto)
            nursery.start_soon(self.tail.run)
        nursery.start_soon(
            self._every, s.dashboard_push_interval_seconds, lambda: events.push_dashboards(self)
        )
        nursery.start_soon(
            self._every, s.live_metrics_interval_seconds, lambda: events.push_live_metrics(self)
        )
        nursery.start_soon(
            self._every,
            s.uptime_mark_interval_seconds,
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

    # --- ingest: commit, then tell every view ----------------------------------------------------
    async def append(self, batch: list[Event], idempotency_key: str | None) -> Appended:
        """Commit ``batch`` to the log (500 when it cannot)."""
        try:
            return await self.log.append(
                batch, idempotency_key=idempotency_key, now=self.clock.now()
            )
        except OutcomeUnknown as err:
            log.warning("analytics: %d events: %s", len(batch), err)
            raise ApiError(
                503,
                f"Outcome unknown ({err.fault}): the events may be stored; retry with the same "
                "Idempotency-Key to store them once",
                error="outcome_unknown",
                headers={"Retry-After": "1"},
            ) from None
        except StoreError as err:
            log.warning("analytics: %d events: %s", len(batch), err)
            raise ApiError(
                503,
                f"The events were not stored ({err.fault}). Please retry.",
                error="not_stored",
                headers={"Retry-After": "1"},
            ) from None
        except Exception:
            log.exception("analytics: the log could not commit %d events", len(batch))
            raise ApiError(500, "Internal server error: the events were not stored") from None

    async def after_commit(self, appended: Appended) -> CurrentStats:
        """Tell the metrics, the live feed and every follower of the committed events (before
        the ingest answers); returns the ``current_stats`` of the answer.

        In a cluster the views follow the log instead (:meth:`_tailed`, on every node): the
        other nodes are woken, and the answer waits until this node's tail has passed the
        events just committed (read your writes)."""
        if self.tail is not None:
            return await self._after_commit_in_cluster(appended)
        stats: CurrentStats = await self.aggregator.ask(
            lambda reply: Ingested(appended.events, reply)
        )
        if appended.events:
            await self.feed.tell(NewEvents(appended.events))
            for follower in self.followers:
                await follower.committed(appended.events)
        if self.stats_source is not None:
            stats = await self.stats_source.current_stats()
        return stats

    async def _after_commit_in_cluster(self, appended: Appended) -> CurrentStats:
        assert self.tail is not None and self.signals is not None
        if appended.events:
            last = max(e.seq for e in appended.events)
            self.signals.publish(LOG_CHANNEL, b"%d" % last)
            await self.tail.caught_up(last)
        if self.stats_source is not None:
            return await self.stats_source.current_stats()
        stats: CurrentStats = await self.aggregator.ask(GetCurrentStats)
        return stats

    async def _hinted(self, payload: bytes) -> None:
        if self.tail is not None:
            self.tail.poke()

    async def _tailed(self, logged: list[Event]) -> None:
        """Events the tail read from the log: to every view, one ingest request at a time (as
        the single node's ingest tells them)."""
        for batch in by_request(logged):
            committed = tuple(batch)
            await self.aggregator.tell(Ingested(committed))
            await self.feed.tell(NewEvents(committed))
            for follower in self.followers:
                await follower.committed(committed)

    async def request_done(self, done: RequestDone) -> None:
        """Count one ingest request in the performance metrics (a failed one without waiting:
        its error is on its way to the client)."""
        if done.ok:
            await self.aggregator.tell(done)
        else:
            self.aggregator.tell_nowait(done)

    # --- views -----------------------------------------------------------------------------------
    async def dashboard(self) -> MetricsDashboard:
        result: MetricsDashboard = await self.aggregator.ask(GetDashboard)
        return result

    async def live_metrics(self) -> list[LiveMetric]:
        counts: LiveCounts = await self.aggregator.ask(GetLive)
        self.sampler.sample()
        connections = len(self.runtime.engine.sockets)
        return live_metrics(counts, self.sampler, connections, self.clock.now())
