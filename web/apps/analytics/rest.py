"""The event analytics' REST door: ingest (``POST /api/events``, ``/api/events/batch``, open to
websites with CORS ``*``) and the dashboard reads (``GET /api/metrics/dashboard``, ``/live``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response, security_scheme

from actors.analytics.metrics import MetricsDashboard, RequestDone
from actors.eventlog.events import Event, EventError, EventIn, normalise, validation_error
from actors.eventlog.log import Appended
from actors.eventlog.views import CurrentStats
from web.apps.analytics.schemas import (
    BatchAccepted,
    BatchBody,
    BatchStored,
    EventAccepted,
    EventStored,
    LiveMetric,
    TrackedBatch,
    TrackedEvent,
)
from web.platform.http import ApiError, Failure, caller, error_response, json_response, read_body
from web.platform.openapi import BEARER
from web.sockets.documented import text_response

if TYPE_CHECKING:
    from web.apps.analytics import Analytics

CORS = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, idempotency-key",
    "Access-Control-Max-Age": "86400",
}
PREFLIGHT_ANSWER = "CORS preflight: any origin may post (no body)."

_single_decoder = msgspec.json.Decoder(TrackedEvent)
_batch_decoder = msgspec.json.Decoder(BatchBody)


def blueprint(app: Analytics) -> Blueprint:
    bp = Blueprint("analytics", __name__)
    _ingest_routes(bp, app)
    _dashboard_routes(bp, app)

    @bp.errorhandler(ApiError)
    async def refused(err: ApiError) -> Response:
        return error_response(err, CORS)  # trackers post from any origin: errors too

    return bp


def _ingest_routes(bp: Blueprint, app: Analytics) -> None:
    @bp.route("/api/events", methods=["POST"], provide_automatic_options=False)
    @document_request(TrackedEvent)
    @document_response(EventAccepted, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 413)
    @document_response(Failure, 429)
    @document_response(Failure, 500)
    async def post_event() -> Response:
        """Track one event; the answer comes once it is committed to the log.

        400: invalid JSON or event (``field`` is the JSON path of the culprit); 413: body over
        ``ingest_max_body_bytes``; 429: over ``ingest_rate_per_ip_per_minute`` (with
        ``Retry-After``); 500: the log could not commit. An event ``id`` already in the log, or an
        ``Idempotency-Key`` header seen before, stores nothing and answers ``duplicate``.
        """
        return await ingest(app, batch=False)

    @bp.route("/api/events", methods=["OPTIONS"])
    @text_response(204, "text/plain", PREFLIGHT_ANSWER)
    async def preflight_event() -> Response:
        """CORS preflight of ``POST /api/events``."""
        return preflight()

    @bp.route("/api/events/batch", methods=["POST"], provide_automatic_options=False)
    @document_request(BatchBody)
    @document_response(BatchAccepted, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 413)
    @document_response(Failure, 429)
    @document_response(Failure, 500)
    async def post_batch() -> Response:
        """Track up to ``ingest_max_batch_events`` events (an array or ``{"events": [...]}``).

        All or nothing: one invalid event refuses the request (``field`` names it, e.g.
        ``events[3].timestamp``) and nothing is stored. The statuses are those of
        ``POST /api/events``.
        """
        return await ingest(app, batch=True)

    @bp.route("/api/events/batch", methods=["OPTIONS"])
    @text_response(204, "text/plain", PREFLIGHT_ANSWER)
    async def preflight_batch() -> Response:
        """CORS preflight of ``POST /api/events/batch``."""
        return preflight()


def _dashboard_routes(bp: Blueprint, app: Analytics) -> None:
    @bp.get("/api/metrics/dashboard")
    @security_scheme(BEARER)
    @document_response(MetricsDashboard, 200)
    @document_response(Failure, 401)
    async def get_dashboard() -> Response:
        """The metrics dashboard (as ``dashboard_data`` on ``/ws/metrics``).

        ``Authorization: Bearer <JWT>``; with ``anonymous_dashboards`` a request without a token
        is let in too, but a token that is given must be valid (401 otherwise).
        """
        authorize(app)
        return json_response(200, await app.dashboard())

    @bp.get("/api/metrics/live")
    @security_scheme(BEARER)
    @document_response(list[LiveMetric], 200)
    @document_response(Failure, 401)
    async def get_live() -> Response:
        """The live metrics (as ``analytics:liveMetrics``); the token rule of the dashboard."""
        authorize(app)
        return json_response(200, await app.live_metrics())


def authorize(app: Analytics) -> None:
    """``anonymous_dashboards`` as everywhere: no token is let in, a given one must be valid."""
    caller(app.runtime.authenticator, anonymous=app.settings.anonymous_dashboards)


def preflight() -> Response:
    return Response(b"", status=204, headers=PREFLIGHT, content_type="text/plain")


# --- ingest --------------------------------------------------------------------------------------
async def ingest(app: Analytics, *, batch: bool) -> Response:
    """Read, validate, commit, then tell the views; every request counts in the performance
    metrics (a refusal as an error)."""
    started = time.perf_counter()
    accepted = committed = 0
    ok = False
    try:
        events, key = await read_events(app, batch)
        accepted = len(events)
        appended = await app.append(events, key)
        committed = accepted
        stats = await app.after_commit(appended)
        ok = True
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        await app.request_done(RequestDone(elapsed_ms, ok, accepted, committed))
    answer = _batch_answer(events, appended, stats) if batch else _answer(events, appended, stats)
    return json_response(200, answer, CORS)


def _answer(events: list[Event], appended: Appended, stats: CurrentStats) -> EventAccepted:
    event = events[0]
    stored = EventStored(event.session_id, event.id, not appended.events, stats)
    return EventAccepted(True, "Event processed successfully", stored)


def _batch_answer(events: list[Event], appended: Appended, stats: CurrentStats) -> BatchAccepted:
    accepted = len(events)
    stored = BatchStored(accepted, len(appended.events), appended.duplicates, stats)
    return BatchAccepted(True, f"{accepted} events processed successfully", stored)


async def read_events(app: Analytics, batch: bool) -> tuple[list[Event], str | None]:
    """The request's events, validated (400, 413 or 429 otherwise), and its Idempotency-Key."""
    key = _admit(app)
    limit = app.settings.ingest_max_body_bytes
    body = await read_body(limit, f"Request body larger than {limit} bytes")
    raw = _decode(app, body, batch)
    now = app.clock.now()
    try:
        events = [
            normalise(item, now=now, limits=app.limits, where=f"events[{i}]." if batch else "")
            for i, item in enumerate(raw)
        ]
    except EventError as err:
        raise ApiError(400, f"Invalid event: {err}", field=err.field) from None
    return events, key


def _admit(app: Analytics) -> str | None:
    """The per-address rate limit (429), then the Idempotency-Key header (400 when malformed)."""
    ip = app.runtime.proxies.client_of(request)
    limiter = app.limiter
    if not limiter.allow(ip):
        raise ApiError(
            429,
            f"Too many requests: at most {limiter.limit} per minute per address",
            headers={"Retry-After": str(max(1, round(limiter.retry_after(ip))))},
        )
    key = request.headers.get("Idempotency-Key")
    cap = app.limits.max_string_chars
    if key is not None and not 0 < len(key) <= cap:
        raise ApiError(
            400, f"Idempotency-Key: must be 1 to {cap} characters", field="Idempotency-Key"
        )
    return key


def _decode(app: Analytics, body: bytes, batch: bool) -> Sequence[EventIn]:
    """The posted events, as decoded (shape errors name the JSON path: ``events[1].type``)."""
    try:
        if not batch:
            return [_single_decoder.decode(body)]
        decoded = _batch_decoder.decode(body)
    except msgspec.ValidationError as err:
        e = validation_error(err)
        field = "events" + e.field if batch and e.field.startswith("[") else e.field
        where = f"{field}: " if field else ""
        raise ApiError(400, f"Invalid event: {where}{e.problem}", field=field or None) from None
    except RecursionError:
        raise ApiError(400, "Invalid JSON body: nested too deeply") from None
    except msgspec.DecodeError:
        raise ApiError(400, "Invalid JSON body") from None
    raw = decoded.events if isinstance(decoded, TrackedBatch) else decoded
    if not raw:
        raise ApiError(400, "Invalid batch: events: at least one event is needed", field="events")
    cap = app.settings.ingest_max_batch_events
    if len(raw) > cap:
        raise ApiError(
            400, f"Invalid batch: events: at most {cap} events per request", field="events"
        )
    return raw
