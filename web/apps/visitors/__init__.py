"""Visitor analytics: REST reads, ``/api/status`` and the raw JSON WebSocket feed ``/ws/visitors``.

The contract is the visitor analytics API reference (``docs/api/visitors.md``: shapes and
message names verbatim). Events come in through the ingest API (``POST /api/events``,
``POST /api/events/batch``, served by the event analytics): one event log feeds the metrics
dashboard and this application, which follows it as a
:class:`~actors.eventlog.views.LogFollower` and answers the ingest's ``current_stats`` from its
session aggregator (:mod:`actors.visitors.aggregator`; definitions in
:mod:`actors.visitors.model`).

REST (``Authorization: Bearer <JWT>`` unless ``anonymous_dashboards`` is on; 401 otherwise):

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
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import parse_qs

import msgspec
import trio
import trio_websocket
from quart import Blueprint, Response, request, websocket

from actors.eventlog.events import Event, iso
from actors.eventlog.log import EventLog
from actors.eventlog.views import CurrentStats
from actors.runtime import supervise
from actors.visitors import actions
from actors.visitors.aggregator import (
    SLOW_CONSUMER,
    Cleanup,
    CloseAll,
    Dashboard,
    FeedStatus,
    GetDetailed,
    GetFeedStatus,
    GetSessions,
    GetStats,
    GetSummary,
    Ingest,
    Join,
    Leave,
    RequestDetailed,
    VisitorAggregator,
    feed_text,
)
from actors.visitors.model import Detailed, Filter, SessionView
from web.platform.auth import TokenError, bearer
from web.platform.http import ApiError, caller, json_response
from web.platform.runtime import Runtime
from web.platform.status import server_status

log = logging.getLogger("switchboard.visitors")

FEED_PATH = "/ws/visitors"
PORT_FEED = "visitor_ws_port"
METRICS_FEED = "/ws/metrics"
POLICY_VIOLATION = 1008
GOING_AWAY = 1001

_encode = msgspec.json.encode


class ClientError(Exception):
    """A dashboard's message that cannot be served; ``str()`` is sent back as ``error``."""


class FeedSocket(Protocol):
    """What the feed needs of a WebSocket (Quart's and trio-websocket's are adapted to it)."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...  # None: the client has gone

    async def close(self, code: int, reason: str) -> None: ...


class QuartSocket:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> str | bytes | None:
        received = await self.ws.receive()
        return b"" if received is None else received

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)


class TrioSocket:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send_message(text)

    async def receive(self) -> str | bytes | None:
        try:
            return await self.ws.get_message()
        except trio_websocket.ConnectionClosed:
            return None

    async def close(self, code: int, reason: str) -> None:
        await self.ws.aclose(code, reason)


# --- client messages -----------------------------------------------------------------------------
class FilterIn(msgspec.Struct):
    country: str | None = None
    page: str | None = None


class RequestDetailedIn(msgspec.Struct):
    type: str
    filter: FilterIn | None = None


class TrackActionIn(msgspec.Struct):
    type: str
    action: str
    details: dict[str, Any] | None = None


def _problem(err: msgspec.ValidationError) -> str:
    text = str(err)
    if " - at `$." in text:
        problem, _, path = text.partition(" - at `$.")
        return f"{path.rstrip('`')}: {problem}"
    return text


class VisitorAnalytics:
    """The visitor analytics application: built by :func:`install`, started with the server."""

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
        self.actions_recorded = 0
        self.port_scope = trio.CancelScope()
        runtime.store.add_schema(*actions.SCHEMA)
        runtime.add_blueprint(self.blueprint())
        runtime.on_start(self.start)
        runtime.on_stop(self.stop)
        runtime.add_actor(self.aggregator.kind, self.aggregator)

    # --- life cycle ----------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        loaded = await self.aggregator.load(self.log)
        log.info("visitors: rebuilt the sessions from %d logged events", loaded)
        self.actions_recorded = await self.runtime.store.read(actions.count)
        nursery.start_soon(supervise, self.aggregator)
        nursery.start_soon(self._cleanup_loop)
        port = self.settings.visitor_ws_port
        if port:
            await nursery.start(self._serve_port, nursery)
            log.info("visitors: the raw feed also listens on ws://%s:%d/", self.settings.host, port)

    async def _serve_port(
        self, handlers: trio.Nursery, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The separate feed listener (until a graceful stop; its dashboards live in the
        server's nursery)."""
        s = self.settings
        with self.port_scope:
            await trio_websocket.serve_websocket(
                self._port_handler,
                s.host,
                s.visitor_ws_port,
                None,
                handler_nursery=handlers,
                max_message_size=max(
                    s.visitor_feed_max_message_bytes, s.max_http_buffer_size_bytes
                ),
                task_status=task_status,
            )

    async def stop(self) -> None:
        """A graceful stop: every dashboard is closed with 1001 (at most 2 s are spent here)."""
        self.port_scope.cancel()  # no new dashboards on the separate port
        with trio.move_on_after(2.0):
            closing: list[Dashboard] = await self.aggregator.ask(
                lambda r: CloseAll(GOING_AWAY, "server shutdown", r)
            )
            for d in closing:
                await d.finished.wait()

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

    # --- REST ----------------------------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        bp = Blueprint("visitors", __name__)

        @bp.get("/api/analytics/summary")
        async def summary() -> Response:
            self._authorize()
            f = self._filter()
            stats: CurrentStats = await self.aggregator.ask(lambda r: GetSummary(f, r))
            data = {"summary": stats, "generated_at": iso(self.clock.now())}
            return json_response(200, {"success": True, "data": data})

        @bp.get("/api/analytics/sessions")
        async def sessions() -> Response:
            self._authorize()
            f = self._filter()
            limit = self._limit()
            found: tuple[list[SessionView], int] = await self.aggregator.ask(
                lambda r: GetSessions(f, limit, r)
            )
            data = {"sessions": found[0], "total_count": found[1]}
            return json_response(200, {"success": True, "data": data})

        @bp.get("/api/analytics/detailed")
        async def detailed() -> Response:
            self._authorize()
            f = self._filter()
            result: Detailed = await self.aggregator.ask(lambda r: GetDetailed(f, r))
            return json_response(200, {"success": True, "data": result})

        @bp.get("/api/status")
        async def status() -> Response:
            return json_response(200, {"success": True, "data": await self.status()})

        @bp.websocket(FEED_PATH)
        async def feed() -> Any:
            headers = {k.lower(): v for k, v in websocket.headers.items()}
            if not self.runtime.origin_allowed(headers.get("origin"), websocket.host):
                raise ApiError(403, "Origin not allowed")
            token = websocket.args.get("token") or bearer(headers)
            await websocket.accept()
            ws = websocket._get_current_object()  # type: ignore[attr-defined]
            await self.serve_dashboard(QuartSocket(ws), FEED_PATH, token)
            return None

        return bp

    def _authorize(self) -> None:
        caller(self.runtime.authenticator, anonymous=self.settings.anonymous_dashboards)

    def _filter(self) -> Filter:
        values: dict[str, str | None] = {}
        for name in ("country", "page"):
            value = request.args.get(name) or None
            if value is not None and len(value) > self.max_chars:
                raise ApiError(400, f"{name}: longer than {self.max_chars} characters")
            values[name] = value
        return Filter(values["country"], values["page"])

    def _limit(self) -> int:
        cap = int(self.settings.visitor_sessions_page_max)
        raw = request.args.get("limit")
        if raw is None or raw == "":
            return cap
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= cap:
            raise ApiError(400, f"limit: must be an integer from 1 to {cap}")
        return limit

    async def status(self) -> dict[str, Any]:
        feed: FeedStatus = await self.aggregator.ask(GetFeedStatus)
        dashboards = dict(feed.dashboards)
        dashboards.setdefault(PORT_FEED, 0)
        dashboards[METRICS_FEED] = self.runtime.sio.connected_count().get(METRICS_FEED, 0)
        server = msgspec.to_builtins(server_status(self.runtime))
        return {
            **server,
            "websocket": {
                "dashboards": dashboards,
                "total_dashboards": sum(dashboards.values()),
                "visitor_ws_port": self.settings.visitor_ws_port or None,
                "alerts_sent": feed.alerts,
                "slow_consumer_disconnects": feed.slow_consumers,
                "dashboard_actions": self.actions_recorded,
            },
            "sessions": {"active": feed.active_sessions},
        }

    # --- the feed ------------------------------------------------------------------------------
    async def _port_handler(self, req: trio_websocket.WebSocketRequest) -> None:
        path, _, query = req.path.partition("?")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
        if path != "/":
            await req.reject(404, body=_encode({"success": False, "message": "Not found"}))
            return
        if not self.runtime.origin_allowed(headers.get("origin"), headers.get("host", "")):
            await req.reject(403, body=_encode({"success": False, "message": "Origin not allowed"}))
            return
        token = (parse_qs(query).get("token") or [""])[0] or bearer(headers)
        try:
            conn = await req.accept()
        except trio_websocket.ConnectionClosed:
            return
        await self.serve_dashboard(TrioSocket(conn), PORT_FEED, token)

    async def serve_dashboard(self, sock: FeedSocket, feed: str, token: str | None) -> None:
        """Run one accepted feed connection until the client or the server ends it."""
        identity = None
        if token is not None or not self.settings.anonymous_dashboards:
            try:
                if token is None:
                    raise TokenError("Authentication failed: no token provided")
                identity = self.runtime.authenticator.verify(token)
            except TokenError as err:
                await _refuse(sock, str(err))
                return
        dashboard = Dashboard(
            feed,
            self.settings.visitor_feed_max_queued_messages,
            identity.user_id if identity is not None else None,
        )
        await self.aggregator.tell(Join(dashboard))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, sock, dashboard, nursery.cancel_scope)
                if identity is not None and identity.expires_at is not None:
                    nursery.start_soon(self._expire_at, dashboard, identity.expires_at)
                await self._read(sock, dashboard)
                nursery.cancel_scope.cancel()
        finally:
            dashboard.close(GOING_AWAY, "gone")
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                await self.aggregator.tell(Leave(dashboard))

    async def _write(self, sock: FeedSocket, d: Dashboard, scope: trio.CancelScope) -> None:
        try:
            async for text in d.outbox:
                if d.close_reason == SLOW_CONSUMER:  # what is queued no longer matters
                    break
                await sock.send(text)
            d.outbox.close()  # (frees what a slow consumer left queued)
            if d.close_code is not None and d.close_reason != "gone":
                await sock.close(d.close_code, d.close_reason)
        except Exception as err:  # the client went away while we wrote: the reader notices too
            log.debug("visitors: feed write ended: %r", err)
        finally:
            d.finished.set()
        scope.cancel()

    async def _expire_at(self, d: Dashboard, expires_at: float) -> None:
        while (remaining := expires_at - self.clock.now()) > 0:
            await self.clock.sleep(remaining)
        message = "Authentication failed: token expired"
        d.offer(feed_text("error", {"message": message}))
        d.close(POLICY_VIOLATION, message)

    async def _read(self, sock: FeedSocket, d: Dashboard) -> None:
        while not d.closed:
            received = await sock.receive()
            if received is None:
                return
            try:
                await self._client_message(d, received)
            except ClientError as err:
                d.offer(feed_text("error", {"message": str(err)}))

    async def _client_message(self, d: Dashboard, received: str | bytes) -> None:
        if isinstance(received, bytes):
            raise ClientError("Binary messages are not supported: send JSON text")
        cap = self.settings.visitor_feed_max_message_bytes
        if len(received) > cap:
            raise ClientError(f"Message too large: at most {cap} bytes")
        try:
            message = msgspec.json.decode(received)
        except RecursionError:
            raise ClientError("Invalid JSON: nested too deeply") from None
        except msgspec.DecodeError:
            raise ClientError("Invalid JSON") from None
        if not isinstance(message, dict):
            raise ClientError("A message must be a JSON object with a string `type`")
        kind = message.get("type")
        if not isinstance(kind, str):
            raise ClientError("A message must be a JSON object with a string `type`")
        if kind == "request_detailed_stats":
            detailed = self._convert(message, RequestDetailedIn, kind)
            f = detailed.filter or FilterIn()
            for name, value in (("country", f.country), ("page", f.page)):
                if value is not None and len(value) > self.max_chars:
                    raise ClientError(
                        f"{kind}: filter.{name}: longer than {self.max_chars} characters"
                    )
            await self.aggregator.tell(
                RequestDetailed(d, Filter(f.country or None, f.page or None))
            )
        elif kind == "track_dashboard_action":
            track = self._convert(message, TrackActionIn, kind)
            if not 0 < len(track.action) <= self.max_chars:
                raise ClientError(f"{kind}: action: must be 1 to {self.max_chars} characters")
            now = self.clock.now()
            op = actions.record(now, d.feed, d.user, track.action, track.details)
            try:
                action_id = await self.runtime.store.write(op)
            except Exception:
                log.exception("visitors: a dashboard action could not be stored")
                raise ClientError(f"{kind}: the action could not be recorded") from None
            self.actions_recorded += 1
            d.offer(
                feed_text(
                    "dashboard_action_recorded",
                    {"id": action_id, "action": track.action, "recorded_at": iso(now)},
                )
            )
        else:
            shown = kind if len(kind) <= 64 else kind[:64] + "..."
            raise ClientError(
                f"Unknown message type {shown!r}: expected request_detailed_stats or "
                "track_dashboard_action"
            )

    @staticmethod
    def _convert(message: dict[str, Any], kind: type[Any], name: str) -> Any:
        try:
            return msgspec.convert(message, kind)
        except msgspec.ValidationError as err:
            raise ClientError(f"{name}: {_problem(err)}") from None


async def _refuse(sock: FeedSocket, message: str) -> None:
    try:
        await sock.send(feed_text("error", {"message": message}))
        await sock.close(POLICY_VIOLATION, message)
    except Exception as err:  # the client did not wait for the reason
        log.debug("visitors: refusal not delivered: %r", err)
