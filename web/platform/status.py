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


class ClusterHealth(msgspec.Struct):
    """This node's view of the cluster (present only with redis_url)."""

    node_id: str
    tag: str  # the prefix of this node's Engine.IO sids
    redis: Literal["connected", "disconnected"]
    nodes_alive: list[str]  # node ids in the registry, this one included
    seconds_since_last_message: float | None
    reconnects: int
    subscriber_crashes: int
    wedged_restarts: int
    dropped_while_disconnected: int
    dropped_queue_full: int
    bad_messages: int
    forwarded_polling: int
    forwarded_upgrades: int
    owner_unreachable: int


class StorageReport(msgspec.Struct):
    """The database as the Store last found it (see the README's storage faults)."""

    status: Literal["ok", "degraded", "failed"]
    fault: str | None  # disk full, read-only, locked, corrupt, I/O error, unreachable, unavailable
    last_error: str | None
    last_error_at: str | None
    write_failures: int
    write_failures_last_minute: int
    read_failures: int
    backend: Literal["sqlite", "postgresql"] = "sqlite"


class Health(msgspec.Struct, omit_defaults=True):
    status: Literal["ok", "degraded", "failed"]
    version: str
    uptime_seconds: float
    connections: int
    by_transport: dict[str, int]
    namespaces: dict[str, int]
    storage: StorageReport | None = None
    cluster: ClusterHealth | None = None


class ClockAdvance(msgspec.Struct):
    advance_seconds: float


class ClockOffset(msgspec.Struct):
    offset_seconds: float


def figures(runtime: Runtime) -> ServerFigures:
    engine = runtime.engine
    return ServerFigures(len(engine.sockets), engine.by_transport(), runtime.sio.connected_count())


def cluster_health(runtime: Runtime) -> ClusterHealth | None:
    cluster = runtime.cluster
    if cluster is None:
        return None
    link = cluster.link.stats
    since = link.seconds_since_last_message()
    return ClusterHealth(
        cluster.config.node_id,
        cluster.tag,
        "connected" if link.connected else "disconnected",
        sorted(node.node_id for node in cluster.registry.nodes.values()),
        None if since is None else round(since, 3),
        link.disconnects,
        link.subscriber_crashes,
        link.wedged_restarts,
        link.dropped_while_disconnected,
        link.dropped_queue_full,
        cluster.stats.bad_messages,
        cluster.stats.forwarded_polling,
        cluster.stats.forwarded_upgrades,
        cluster.stats.owner_unreachable,
    )


def storage_report(runtime: Runtime) -> StorageReport:
    h = runtime.store.health
    return StorageReport(
        h.state,
        h.fault,
        h.last_error,
        iso(h.last_error_at) if h.last_error_at is not None else None,
        h.write_failures,
        h.failures_last_minute(),
        h.read_failures,
        "postgresql" if runtime.store.backend.name == "postgresql" else "sqlite",
    )


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
    @document_response(Health, 503)
    async def health() -> Response:
        """Liveness, the connection counts of this process, the database's state and, in a
        cluster, its state.

        ``degraded`` (still 200: what can be served is) while the Redis link is down or the
        database refuses writes for a reason that passes (disk full, read-only, locked);
        ``failed`` (503) when the database is corrupt or the Store has failed."""
        f = figures(runtime)
        uptime = round(time.time() - runtime.started_at, 3)
        cluster = cluster_health(runtime)
        storage = storage_report(runtime)
        state: Literal["ok", "degraded", "failed"] = storage.status
        if state == "ok" and cluster is not None and cluster.redis != "connected":
            state = "degraded"
        health = Health(
            state, VERSION, uptime, f.connections, f.by_transport, f.namespaces, storage, cluster
        )
        return json_response(503 if state == "failed" else 200, health)

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
            """Tests only (``--test-clock``): move the service's clock forward (in a cluster, every
            node's: the answer comes once the live nodes have moved theirs)."""
            body = decode_json(
                await read_body(CLOCK_BODY_MAX_BYTES, "Body too large"), ClockAdvance
            )
            if body.advance_seconds < 0:
                raise ApiError(400, "advance_seconds must be a non-negative number")
            offset = await runtime.advance_clock(body.advance_seconds)
            return json_response(200, ClockOffset(offset))

    return bp
