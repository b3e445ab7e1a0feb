"""The server's own routes: ``/health``, ``/metrics`` and (tests only) ``/api/test/clock``.

:func:`server_status` is the server-wide part of every status answer: the visitor analytics'
``/api/status`` adds its feed figures to it.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Literal

import msgspec
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response

from actors.eventlog.events import iso
from web.platform.http import ApiError, Failure, decode_json, json_response, read_body
from web.platform.metrics import CONTENT_TYPE, Metrics, allowed
from web.platform.runtime import Runtime
from web.sockets.documented import text_response

try:
    VERSION = metadata.version("switchboard")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"

CLOCK_BODY_MAX_BYTES = 4096


class ServerFigures(msgspec.Struct):
    connections: int  # open Engine.IO connections
    by_transport: dict[str, int]
    namespaces: dict[str, int]  # connected Socket.IO sessions per namespace


class ServerStatus(msgspec.Struct):
    status: Literal["ok"]
    version: str
    uptime_seconds: float
    started_at: str
    server: ServerFigures


class Health(msgspec.Struct):
    status: Literal["ok"]
    version: str
    uptime_seconds: float
    connections: int
    by_transport: dict[str, int]
    namespaces: dict[str, int]


class ClockAdvance(msgspec.Struct):
    advance_seconds: float


class ClockOffset(msgspec.Struct):
    offset_seconds: float


def figures(runtime: Runtime) -> ServerFigures:
    engine = runtime.engine
    return ServerFigures(len(engine.sockets), engine.by_transport(), runtime.sio.connected_count())


def server_status(runtime: Runtime) -> ServerStatus:
    return ServerStatus(
        "ok",
        VERSION,
        round(time.time() - runtime.started_at, 3),
        iso(runtime.started_at),
        figures(runtime),
    )


def blueprint(runtime: Runtime, metrics: Metrics) -> Blueprint:
    bp = Blueprint("status", __name__)

    @bp.get("/health")
    @document_response(Health, 200)
    async def health() -> Response:
        """Liveness and the connection counts of this process."""
        f = figures(runtime)
        uptime = round(time.time() - runtime.started_at, 3)
        return json_response(
            200, Health("ok", VERSION, uptime, f.connections, f.by_transport, f.namespaces)
        )

    @bp.get("/metrics")
    @text_response(200, CONTENT_TYPE, "The figures, in Prometheus text format.")
    @document_response(Failure, 401)
    async def prometheus() -> Response:
        """Prometheus text format (a metrics token, an admin JWT, or none with metrics_public)."""
        if not allowed(runtime, request.headers.get("Authorization")):
            raise ApiError(401, "metrics need a token", headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.render(), status=200, content_type=CONTENT_TYPE)

    if runtime.settings.test_clock:

        @bp.post("/api/test/clock")
        @document_request(ClockAdvance)
        @document_response(ClockOffset, 200)
        @document_response(Failure, 400)
        async def advance_clock() -> Response:
            """Tests only (``--test-clock``): move the service's clock forward."""
            body = decode_json(
                await read_body(CLOCK_BODY_MAX_BYTES, "Body too large"), ClockAdvance
            )
            if body.advance_seconds < 0:
                raise ApiError(400, "advance_seconds must be a non-negative number")
            runtime.clock.advance(body.advance_seconds)
            return json_response(200, ClockOffset(runtime.clock.offset_seconds))

    return bp
