"""Visitor analytics: REST reads, ``/api/status`` and the raw JSON WebSocket feed ``/ws/visitors``.

The contract is the visitor analytics API reference (``docs/api/visitors.md``: shapes and
message names verbatim). Events come in through the ingest API (``POST /api/events``,
``POST /api/events/batch``, served by the event analytics): one event log feeds the metrics
dashboard and this application, which follows it as a
:class:`~actors.eventlog.views.LogFollower` and answers the ingest's ``current_stats`` from its
session aggregator (:mod:`actors.visitors.aggregator`; definitions in
:mod:`actors.visitors.model`).

REST (``Authorization: Bearer <JWT>``, 401 without a valid one; with ``anonymous_dashboards`` a
request without a token is let in, but a token that is given must still be valid, as on the feed
and on the metrics dashboard's ``/ws/metrics`` and ``GET /api/metrics/*``):

* ``GET /api/analytics/summary?country=&page=`` -> ``{success, data: {summary: {total_active,
  total_today, pages_visited}, generated_at}}``;
* ``GET /api/analytics/sessions?country=&page=&limit=`` -> ``{success, data: {sessions: [...],
  total_count}}``: active sessions, most recent activity first; ``total_count`` counts every
  matching session, ``limit`` (1 to ``visitor_sessions_page_max``, also the default) only how many
  are listed;
* ``GET /api/analytics/detailed?country=&page=`` -> ``{success, data: <detailed>}`` with
  ``filter``, ``summary``, ``sessions_today``, ``countries``, ``devices``, ``referrers``,
  ``pages``, ``entry_pages``, ``exit_pages``, ``avg_session_duration``, ``bounce_rate``,
  ``visitors_per_minute`` ``[{minute, visitors}]`` (30, oldest first), ``generated_at``.
* A bad parameter answers 400 ``{success: false, message}`` naming it (``limit`` not an integer
  in range, a ``country``/``page`` longer than ``ingest_max_string_chars``). An empty
  ``country``/``page`` means no filter.
* ``GET /api/status`` (open, like ``/health``; the server part is the platform's
  :func:`~web.platform.status.server_status`): ``{success, data: {status, version,
  uptime_seconds, started_at, server: {connections, by_transport, namespaces}, websocket:
  {dashboards: {"/ws/visitors", "visitor_ws_port", "/ws/metrics"}, total_dashboards,
  visitor_ws_port, alerts_sent, slow_consumer_disconnects, dashboard_actions}, sessions:
  {active}}}``.

The feed: ``/ws/visitors`` (a Quart websocket route; the front door sends only Engine.IO upgrades
to the native path) and, with ``--visitor-ws-port N``, ``/`` on port N (trio-websocket), the same
feed from the same actor. Messages are JSON text frames ``{"type", "data"}``:

* from the server: ``user_connected``, ``user_disconnected``, ``visitor_update``,
  ``session_activity``, ``sessions_expired``, ``alert``, ``detailed_stats``,
  ``dashboard_action_recorded``, ``error`` (see :mod:`actors.visitors.aggregator`);
* from a dashboard: ``{"type": "request_detailed_stats", "filter": {country?, page?}}`` ->
  ``detailed_stats`` to that dashboard; ``{"type": "track_dashboard_action", "action": <1 to
  ingest_max_string_chars chars>, "details": {...}?}`` -> stored, then ``dashboard_action_recorded``
  ``{id, action, recorded_at}``;
* anything else - a binary frame, invalid JSON, not an object, no string ``type``, an unknown
  ``type``, a field of the wrong type, a message over ``visitor_feed_max_message_bytes`` - is
  answered ``error`` ``{message}`` saying what was wrong; the connection stays open.
* Auth: the JWT from ``?token=`` or ``Authorization: Bearer`` (unless ``anonymous_dashboards``; a
  token that is given must be valid even then). A refused dashboard gets ``error`` ``{message}``
  ("Authentication failed: ...") and is closed with code 1008 and the same reason; a connected one
  is closed the same way when its token expires (service clock). Origins follow ``cors_origins``
  (a forbidden origin is refused with HTTP 403 before the upgrade).
* A dashboard that does not read (``visitor_feed_max_queued_messages`` queued) is closed with 1008
  "slow consumer: too many messages queued": it gets nothing more and its queue is dropped; the
  close frame goes out once the socket accepts it again (on the ``/ws/visitors`` route the writer
  waits in Hypercorn's send until then, as the core's ASGI Engine.IO route does). A graceful stop
  closes every dashboard with 1001 "server shutdown" (and stops the separate port's listener).

Decisions where the seed is silent:

* Definitions of sessions, journeys (consecutive repeats collapse), duration (first event to last
  activity), filters and every detailed figure: :mod:`actors.visitors.model`.
* The ingest refuses an event with neither ``session_id`` nor ``userId`` (400 naming
  ``session_id``): it would count in ``total_today`` and reach the feed as a ``visitor_update``
  nobody can attribute.
* Ingest counts every accepted event: ``total_today`` counts all events, ``pages_visited`` those
  with a ``page`` (whatever their ``type``); a product event with only ``userId`` (no
  ``session_id``) makes no session but counts as a visitor for the alert and the per-minute chart.
* A session's expiry is exact at every answer (REST and feed); the cleanup task (every
  ``cleanup_interval_minutes``) makes sure the feed hears of expired sessions (``sessions_expired``)
  even when no traffic comes.
* The alert level is ``info`` and its message the seed's; ``details`` also gives the threshold. The
  alert is global (not filtered), checked after each committed batch (so only arriving events can
  raise it) and sent at most once per 60 s of the service clock.
* ``GET /api/status`` is open like ``/health`` (it shows counts, never data); the analytics reads
  need a token as ``GET /api/metrics/*`` do.
* ``limit`` absent means ``visitor_sessions_page_max`` (1000): the seed has no default.
* Feed messages the seed does not name, added because a dashboard needs them: ``user_disconnected``
  (the dashboard count drops), ``sessions_expired`` (``total_active`` drops without traffic),
  ``dashboard_action_recorded`` (the acknowledgement of ``track_dashboard_action``).
* ``user_connected`` goes to every dashboard of both listeners, the new one included;
  ``total_dashboards`` counts the visitor feed's dashboards (both listeners).
* Sessions and today's counters are rebuilt from the log on start (events stamped since midnight
  UTC yesterday); dashboard actions are kept in the database (:mod:`actors.visitors.actions`).
* Events are applied at the time the server received them (a request's events share it), so
  every node of a cluster, following the same log, computes the same sessions, feed messages and
  alert decisions; ``total_dashboards`` and the ``/api/status`` figures are the node's own.

The package: :mod:`~web.apps.visitors.rest` (the REST reads and ``/api/status``),
:mod:`~web.apps.visitors.feed` (both listeners of the raw feed), :mod:`~web.apps.visitors.schemas`
(the shapes at its doors; the feed's messages are in :mod:`actors.visitors.feed`).
"""

from __future__ import annotations

import logging

import msgspec
import trio

from actors.eventlog.events import Event
from actors.eventlog.log import EventLog
from actors.eventlog.views import CurrentStats
from actors.runtime import supervise
from actors.visitors import actions
from actors.visitors.aggregator import (
    Cleanup,
    FeedStatus,
    GetFeedStatus,
    GetStats,
    Ingest,
    VisitorAggregator,
)
from web.apps.visitors import rest
from web.apps.visitors.feed import FEED_PATH, PORT_FEED, VisitorFeed
from web.apps.visitors.schemas import FeedFigures, SessionFigures, VisitorStatus
from web.platform.runtime import Runtime
from web.platform.status import server_status

log = logging.getLogger("switchboard.visitors")

METRICS_FEED = "/ws/metrics"


class VisitorAnalytics:
    """The visitor analytics application: built by the composition root, started with the
    server; a :class:`~actors.eventlog.views.LogFollower` and the ingest's
    :class:`~actors.eventlog.views.StatsSource`."""

    def __init__(self, runtime: Runtime, log: EventLog) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.settings = s
        self.clock = runtime.clock
        self.log = log
        self.max_chars = s.ingest_max_string_chars
        feeds = (FEED_PATH, PORT_FEED) if s.visitor_ws_port else (FEED_PATH,)
        self.aggregator = VisitorAggregator(
            self.clock.now,
            session_timeout_minutes=s.session_timeout_minutes,
            alert_threshold=s.alert_threshold,
            journey_max_pages=s.visitor_journey_max_pages,
            feeds=feeds,
        )
        self.feed = VisitorFeed(runtime, self.aggregator)
        runtime.store.add_schema(*actions.SCHEMA)
        runtime.add_blueprint(rest.blueprint(self))
        runtime.add_blueprint(self.feed.blueprint())
        runtime.on_start(self.start)
        runtime.on_stop(self.feed.stop)
        runtime.add_actor(self.aggregator.kind, self.aggregator)

    # --- life cycle ----------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        loaded = await self.aggregator.load(self.log)
        log.info("visitors: rebuilt the sessions from %d logged events", loaded)
        await self.feed.count_actions()
        nursery.start_soon(supervise, self.aggregator)
        nursery.start_soon(self._cleanup_loop)
        port = self.settings.visitor_ws_port
        if port:
            await nursery.start(self.feed.serve_port, nursery)
            log.info("visitors: the raw feed also listens on ws://%s:%d/", self.settings.host, port)

    async def _cleanup_loop(self) -> None:
        await self.clock.every(
            self.settings.cleanup_interval_minutes * 60.0, lambda: self.aggregator.tell(Cleanup())
        )

    # --- the ingest seam (a LogFollower and the StatsSource) ------------------------------------
    async def committed(self, events: tuple[Event, ...]) -> None:
        await self.aggregator.tell(Ingest(events))

    async def current_stats(self) -> CurrentStats:
        result: CurrentStats = await self.aggregator.ask(GetStats)
        return result

    # --- /api/status -----------------------------------------------------------------------------
    async def status(self) -> VisitorStatus:
        """The platform's server status and the feeds' figures (``GET /api/status``)."""
        feed: FeedStatus = await self.aggregator.ask(GetFeedStatus)
        dashboards = dict(feed.dashboards)
        dashboards.setdefault(PORT_FEED, 0)
        dashboards[METRICS_FEED] = self.runtime.sio.connected_count().get(METRICS_FEED, 0)
        websocket = FeedFigures(
            dashboards=dashboards,
            total_dashboards=sum(dashboards.values()),
            visitor_ws_port=self.settings.visitor_ws_port or None,
            alerts_sent=feed.alerts,
            slow_consumer_disconnects=feed.slow_consumers,
            dashboard_actions=self.feed.actions_recorded,
        )
        server = msgspec.structs.asdict(server_status(self.runtime))
        return VisitorStatus(
            **server, websocket=websocket, sessions=SessionFigures(feed.active_sessions)
        )
