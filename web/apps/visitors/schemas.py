"""The visitor analytics' shapes at its doors: the REST queries and answers, ``/api/status``, and
what a dashboard may send on the feed. (What the feed sends is in :mod:`actors.visitors.feed`;
the sessions and detailed stats are views of :mod:`actors.visitors.model`.)"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from actors.eventlog.views import CurrentStats
from actors.visitors.model import Detailed, SessionView
from web.platform.status import ServerStatus

# Query parameters, for the document (the routes read them themselves, to name what is wrong).
Country = Annotated[str, msgspec.Meta(description="Only this country (empty: any).")]
Page = Annotated[str, msgspec.Meta(description="Only this page (empty: any).")]
Limit = Annotated[
    int,
    msgspec.Meta(
        ge=1, description="How many to list: at most (and by default) visitor_sessions_page_max."
    ),
]


# --- REST queries --------------------------------------------------------------------------------
class FilterQuery(msgspec.Struct):
    country: Country | UnsetType = UNSET
    page: Page | UnsetType = UNSET


class SessionsQuery(msgspec.Struct):
    country: Country | UnsetType = UNSET
    page: Page | UnsetType = UNSET
    limit: Limit | UnsetType = UNSET


# --- REST answers --------------------------------------------------------------------------------
class SummaryData(msgspec.Struct):
    summary: CurrentStats
    generated_at: str


class SummaryAnswer(msgspec.Struct):
    """The visitor counters (for the filter)."""

    success: bool
    data: SummaryData


class SessionList(msgspec.Struct):
    sessions: list[SessionView]
    total_count: int  # every matching session; ``limit`` bounds only the list


class SessionsAnswer(msgspec.Struct):
    """The active sessions (for the filter), most recent activity first."""

    success: bool
    data: SessionList


class DetailedAnswer(msgspec.Struct):
    """Today's detailed visitor stats (for the filter)."""

    success: bool
    data: Detailed


class FeedFigures(msgspec.Struct):
    dashboards: dict[str, int]  # per feed: /ws/visitors, visitor_ws_port, /ws/metrics
    total_dashboards: int
    visitor_ws_port: int | None
    alerts_sent: int
    slow_consumer_disconnects: int
    dashboard_actions: int


class SessionFigures(msgspec.Struct):
    active: int


class VisitorStatus(ServerStatus):
    """The server's status (:func:`web.platform.status.server_status`) and the feeds'."""

    websocket: FeedFigures
    sessions: SessionFigures


class StatusAnswer(msgspec.Struct):
    """Server and WebSocket status: connections, dashboards per feed, uptime, version."""

    success: bool
    data: VisitorStatus


# --- what a dashboard sends on the feed ----------------------------------------------------------
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
