"""The visitor analytics' REST reads (``/api/analytics/summary``, ``/sessions``, ``/detailed``)
and ``GET /api/status``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_response, security_scheme

from actors.eventlog.events import iso
from actors.eventlog.views import CurrentStats
from actors.visitors.aggregator import GetDetailed, GetSessions, GetSummary
from actors.visitors.model import Detailed, Filter, SessionView
from web.apps.visitors.schemas import (
    DetailedAnswer,
    FilterQuery,
    SessionList,
    SessionsAnswer,
    SessionsQuery,
    StatusAnswer,
    SummaryAnswer,
    SummaryData,
)
from web.platform.http import ApiError, Failure, caller, json_response
from web.platform.openapi import BEARER

if TYPE_CHECKING:
    from web.apps.visitors import VisitorAnalytics


def blueprint(app: VisitorAnalytics) -> Blueprint:
    bp = Blueprint("visitors", __name__)

    @bp.get("/api/analytics/summary")
    @security_scheme(BEARER)
    @document_querystring(FilterQuery)
    @document_response(SummaryAnswer, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    async def summary() -> Response:
        """The visitor counters: active sessions, today's events and pages.

        400: a ``country`` or ``page`` longer than ``ingest_max_string_chars``. 401: no valid
        ``Authorization: Bearer <JWT>``; with ``anonymous_dashboards`` a request without a token
        is let in too, but a token that is given must be valid.
        """
        authorize(app)
        f = _filter(app)
        stats: CurrentStats = await app.aggregator.ask(lambda r: GetSummary(f, r))
        data = SummaryData(summary=stats, generated_at=iso(app.clock.now()))
        return json_response(200, SummaryAnswer(success=True, data=data))

    @bp.get("/api/analytics/sessions")
    @security_scheme(BEARER)
    @document_querystring(SessionsQuery)
    @document_response(SessionsAnswer, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    async def sessions() -> Response:
        """The active sessions, most recent activity first, and how many match.

        400: ``limit`` not an integer from 1 to ``visitor_sessions_page_max``, or a filter too
        long. 401: the token rule of ``GET /api/analytics/summary`` (``anonymous_dashboards``
        lets in a request without a token, never one with a bad token).
        """
        authorize(app)
        f = _filter(app)
        limit = _limit(app)
        found: tuple[list[SessionView], int] = await app.aggregator.ask(
            lambda r: GetSessions(f, limit, r)
        )
        data = SessionList(sessions=found[0], total_count=found[1])
        return json_response(200, SessionsAnswer(success=True, data=data))

    @bp.get("/api/analytics/detailed")
    @security_scheme(BEARER)
    @document_querystring(FilterQuery)
    @document_response(DetailedAnswer, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    async def detailed() -> Response:
        """Today's sessions in detail: countries, devices, referrers, pages, entry and exit
        pages, duration, bounce rate and visitors per minute.

        400: a filter too long. 401: the token rule of ``GET /api/analytics/summary``
        (``anonymous_dashboards`` lets in a request without a token, never one with a bad token).
        """
        authorize(app)
        f = _filter(app)
        result: Detailed = await app.aggregator.ask(lambda r: GetDetailed(f, r))
        return json_response(200, DetailedAnswer(success=True, data=result))

    @bp.get("/api/status")
    @document_response(StatusAnswer, 200)
    async def status() -> Response:
        """Server and WebSocket status (open, like ``/health``: counts, never data)."""
        return json_response(200, StatusAnswer(success=True, data=await app.status()))

    return bp


def authorize(app: VisitorAnalytics) -> None:
    """``anonymous_dashboards`` as everywhere: no token is let in, a given one must be valid."""
    caller(app.runtime.authenticator, anonymous=app.settings.anonymous_dashboards)


def _filter(app: VisitorAnalytics) -> Filter:
    """``country`` and ``page`` (empty means no filter); 400 when one is too long."""
    values: dict[str, str | None] = {}
    cap = app.max_chars
    for name in ("country", "page"):
        value = request.args.get(name) or None
        if value is not None and len(value) > cap:
            raise ApiError(400, f"{name}: longer than {cap} characters")
        values[name] = value
    return Filter(values["country"], values["page"])


def _limit(app: VisitorAnalytics) -> int:
    """``limit``: 1 to ``visitor_sessions_page_max``, which is also the default; 400 otherwise."""
    cap = int(app.settings.visitor_sessions_page_max)
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
