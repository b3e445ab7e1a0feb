"""The event analytics' Socket.IO events: ``analytics:*`` on ``/`` and the ``/ws/metrics``
dashboards (who may connect, what they get at once, and the periodic pushes).

``analytics:*`` take their arguments raw, so a malformed dashboard id gets the dashboard id
message; a refusal is ``analytics:error`` ``{message}`` (and the ack, when asked for, a Failure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.analytics.metrics import FeedEvent
from actors.sockets.rooms import RoomLimitReached
from actors.sockets.session import Session
from web.apps.analytics.schemas import AnalyticsError, Answered, DashboardRoom, LiveSubscription
from web.platform.auth import TokenError, token_of
from web.platform.http import NO_TOKEN, Failure
from web.sockets.namespace import Ack, ConnectRefused

if TYPE_CHECKING:
    from web.apps.analytics import Analytics

LIVE_ROOM = "analytics:live"
DASHBOARD_ROOM = "analytics:dashboard:"
LIVE_METRICS = "analytics:liveMetrics"


def register(app: Analytics) -> None:
    """The event tables: ``analytics:*`` on ``/``, the connect hooks of ``/ws/metrics``."""
    ns = app.default_ns

    @ns.on("analytics:subscribeLiveMetrics")
    async def subscribe_live_metrics(session: Session, args: list[object], ack: Ack | None) -> None:
        """Join the subscribers; the current metrics come at once."""
        try:
            await ns.rooms.join(session, LIVE_ROOM)
        except RoomLimitReached as refusal:
            refuse(session, ack, f"analytics:subscribeLiveMetrics: {refusal}")
            return
        session.emit(LIVE_METRICS, await app.live_metrics())
        if ack is not None:
            ack(LiveSubscription(success=True, subscribed=True))

    @ns.on("analytics:unsubscribeLiveMetrics")
    async def unsubscribe_live_metrics(
        session: Session, args: list[object], ack: Ack | None
    ) -> None:
        await ns.rooms.leave(session, LIVE_ROOM)
        if ack is not None:
            ack(LiveSubscription(success=True, subscribed=False))

    @ns.on("analytics:requestLiveMetrics")
    async def request_live_metrics(session: Session, args: list[object], ack: Ack | None) -> None:
        """The metrics once, to the asker only."""
        session.emit(LIVE_METRICS, await app.live_metrics())
        if ack is not None:
            ack(Answered(success=True))

    @ns.on("analytics:joinDashboard")
    async def join_dashboard(session: Session, args: list[object], ack: Ack | None) -> None:
        dashboard = dashboard_id(app, session, "analytics:joinDashboard", args, ack)
        if dashboard is None:
            return
        room = DASHBOARD_ROOM + dashboard
        try:
            await ns.rooms.join(session, room)
        except RoomLimitReached as refusal:
            refuse(session, ack, f"analytics:joinDashboard: {refusal}")
            return
        app.dashboard_rooms.add(room)
        if ack is not None:
            ack(DashboardRoom(success=True, dashboard_id=dashboard))

    @ns.on("analytics:leaveDashboard")
    async def leave_dashboard(session: Session, args: list[object], ack: Ack | None) -> None:
        dashboard = dashboard_id(app, session, "analytics:leaveDashboard", args, ack)
        if dashboard is None:
            return
        await ns.rooms.leave(session, DASHBOARD_ROOM + dashboard)
        if ack is not None:
            ack(DashboardRoom(success=True, dashboard_id=dashboard))

    _register_metrics_namespace(app)


def _register_metrics_namespace(app: Analytics) -> None:
    metrics = app.metrics_ns

    @metrics.use
    async def authorize_dashboard(session: Session) -> None:
        """``anonymous_dashboards`` as everywhere (:func:`web.platform.http.caller`): without a
        token a dashboard is let in (when the setting is on); a token that is given must be
        valid, even then."""
        token = token_of(session)
        if token is None:
            if app.settings.anonymous_dashboards:
                return
            raise ConnectRefused(NO_TOKEN)
        try:
            session.identity = app.runtime.authenticator.verify(token)
        except TokenError as err:
            raise ConnectRefused(str(err)) from None

    @metrics.connect
    async def dashboard_connected(session: Session) -> None:
        """A new dashboard gets ``dashboard_data`` at once."""
        session.emit("dashboard_data", await app.dashboard())


# --- pushes --------------------------------------------------------------------------------------
async def push_dashboards(app: Analytics) -> None:
    """``dashboard_data`` to every ``/ws/metrics`` dashboard of this node (every push interval;
    each node of a cluster pushes its own, computed from the same log)."""
    if app.metrics_ns.rooms.sessions:
        await app.metrics_ns.emit_here("dashboard_data", await app.dashboard())


async def publish_events(app: Analytics, events: list[FeedEvent]) -> None:
    """``events``: one packet of committed events (the live event feed calls this; in a
    cluster each node's feed follows the log for its own dashboards)."""
    await app.metrics_ns.emit_here("events", events)


async def push_live_metrics(app: Analytics) -> None:
    """One ``analytics:liveMetrics`` to the subscribers and every dashboard room (a client in
    several gets it once); without listeners only the sampler's baseline moves on."""
    registry = app.default_ns.rooms.registry
    app.dashboard_rooms = {r for r in app.dashboard_rooms if registry.get(r) is not None}
    rooms = [LIVE_ROOM, *sorted(app.dashboard_rooms)]
    if all(registry.get(r) is None for r in rooms):
        app.sampler.sample()
        return
    await app.default_ns.emit_here(LIVE_METRICS, await app.live_metrics(), to=rooms)


# --- arguments -----------------------------------------------------------------------------------
def dashboard_id(
    app: Analytics, session: Session, event: str, args: list[object], ack: Ack | None
) -> str | None:
    """The dashboard id argument: a string of 1 to ``ingest_max_string_chars``; otherwise None,
    after ``analytics:error`` (and the ack) said why."""
    value = args[0] if args else None
    cap = app.limits.max_string_chars
    if isinstance(value, str) and 0 < len(value) <= cap:
        return value
    if not isinstance(value, str):
        got = "nothing" if not args else json_type(value)
        message = f"{event}: dashboardId must be a string, got {got}"
    else:
        message = f"{event}: dashboardId must be 1 to {cap} characters"
    refuse(session, ack, message)
    return None


def refuse(session: Session, ack: Ack | None, message: str) -> None:
    """``analytics:error`` and the ack say why the request was refused."""
    session.emit("analytics:error", AnalyticsError(message))
    if ack is not None:
        ack(Failure(False, message))


def json_type(value: object) -> str:
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
