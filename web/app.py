"""The Quart-Trio app: long-polling, the ASGI WebSocket route, health, and the REST blueprints.

``create_app(settings, namespaces)`` builds a complete ASGI app: under the front door it serves
everything but first-request WebSocket upgrades; under any ASGI server it serves everything.
The runtime (Engine.IO, Socket.IO, actors) starts in the app's lifespan, in ``app.nursery``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio
from quart import Blueprint, Response, request, websocket
from quart_trio import QuartTrio

from actors.clock import Clock
from actors.housekeeping import Housekeeping
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import Actor, supervise
from actors.store import Store
from protocol import engineio, socketio
from web.applications import APPLICATIONS
from web.auth import Authenticator, jwt_middleware, load_or_create_secret
from web.engineio_server import EngineConfig, EngineServer, EngineSocket, Handshake, MessageHandler
from web.logs import connection_id
from web.metrics import CONTENT_TYPE, Metrics
from web.metrics import allowed as metrics_allowed
from web.namespace import Namespace
from web.native_ws import NativeEndpoint
from web.origin import cors_headers, origin_policy
from web.proxies import TrustedProxies
from web.settings import Settings
from web.socketio_server import SocketIOServer

VERSION = "0.1.0"


class Runtime:
    """Everything the server runs: built with the app, started once in the app's nursery.

    Applications extend it before start: ``namespace(name)`` gives the (shared) event table of a
    namespace, ``add_blueprint`` adds REST routes, ``store.add_schema`` adds tables, ``on_start``
    adds actors to start in the server's nursery.
    """

    def __init__(
        self,
        settings: Settings,
        attach: Callable[[EngineSocket], MessageHandler] | None = None,
    ) -> None:
        self.settings = settings
        self.attach = attach
        self.authenticator = Authenticator(
            load_or_create_secret(settings.data_path, settings.jwt_secret),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        self.origin_allowed = origin_policy(settings.cors_origins)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.clock = Clock()
        self.store = Store(
            settings.data_path / "switchboard.sqlite3",
            max_batch=settings.store_max_batch,
            synchronous=settings.store_synchronous,
        )
        self.namespaces: dict[str, Namespace] = {}
        self.named_actors: dict[str, Actor] = {}  # singleton actors, shown in /metrics by kind
        self.rate_limiters: dict[str, SlidingWindowLimiter] = {}
        self.housekeeping = Housekeeping(self.clock, settings.housekeeping_interval_seconds)
        self.draining = False  # shutting down: no new writes are accepted
        # hangs up a Hypercorn-served connection by its ASGI client address (set by the front
        # door; a plain ASGI server offers no such thing)
        self.abort_connection: Callable[[Any], bool] = lambda client: False
        self.blueprints: list[Blueprint] = []
        self.starters: list[Callable[[trio.Nursery], Awaitable[None]]] = []
        self.stoppers: list[Callable[[], Awaitable[None]]] = []
        self.started_at = time.time()
        self.sio: SocketIOServer
        self.engine: EngineServer
        self.native: NativeEndpoint

    # --- extension, before start -----------------------------------------------------------------
    def namespace(self, name: str, *, authenticated: bool = True) -> Namespace:
        """The event table of ``name``, created on first use (with JWT auth unless told not)."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name)
            if authenticated:
                ns.use(jwt_middleware(self.authenticator))
            self.namespaces[name] = ns
        return ns

    def add_namespace(self, ns: Namespace) -> None:
        if ns.name in self.namespaces:
            raise ValueError(f"namespace {ns.name} is already registered")
        self.namespaces[ns.name] = ns

    def add_blueprint(self, blueprint: Blueprint) -> None:
        self.blueprints.append(blueprint)

    def on_start(self, starter: Callable[[trio.Nursery], Awaitable[None]]) -> None:
        self.starters.append(starter)

    def on_stop(self, stopper: Callable[[], Awaitable[None]]) -> None:
        """Run during a graceful stop, after clients are closed, before the store is flushed."""
        self.stoppers.append(stopper)

    def add_actor(self, kind: str, actor: Actor) -> None:
        """Name a long-lived actor so /metrics shows its mailbox depth and restarts."""
        self.named_actors[kind] = actor

    def add_rate_limiter(self, name: str, limiter: SlidingWindowLimiter) -> SlidingWindowLimiter:
        """Name a limiter: its refusals show in /metrics, housekeeping prunes its idle keys."""
        self.rate_limiters[name] = limiter
        self.housekeeping.add(f"rate limit {name}", limiter.prune)
        return limiter

    # --- start -----------------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        s = self.settings
        nursery.start_soon(supervise, self.store)
        self.sio = SocketIOServer(
            self.namespaces.values(),
            limits=socketio.Limits(max_depth=s.max_json_depth),
            room_idle_seconds=s.room_idle_seconds,
            room_mailbox_size=s.room_mailbox_size,
            clock=self.clock,
        )
        await self.sio.start(nursery)
        self.engine = EngineServer(
            EngineConfig(
                ping_interval_ms=s.ping_interval_ms,
                ping_timeout_ms=s.ping_timeout_ms,
                connect_timeout_ms=s.connect_timeout_ms,
                max_payload_bytes=s.max_http_buffer_size_bytes,
                max_packets_per_payload=s.max_packets_per_payload,
                max_outbox_bytes=s.max_outbox_bytes,
                max_connections_per_ip=s.max_connections_per_ip,
            ),
            self.attach or self.sio.attach,
            nursery,
        )
        self.native = NativeEndpoint(
            self.engine,
            max_message_bytes=s.max_http_buffer_size_bytes,
            origin_allowed=self.origin_allowed,
            client_address=self.proxies.client_address,
            nursery=nursery,
        )
        self.metrics = Metrics(self)
        nursery.start_soon(self.housekeeping.run)
        for starter in self.starters:
            await starter(nursery)

    async def drain(self, timeout: float) -> None:
        """Graceful stop, step by step: refuse new writes, close every client with an Engine.IO
        close (stock clients reconnect elsewhere), let in-flight work reach the store, and wait
        until the store has committed all of it."""
        self.draining = True
        with trio.move_on_after(timeout):
            self.engine.close_all("server shutdown")
            await trio.sleep(0)  # let closing transports flush (their tasks run next)
            for stopper in self.stoppers:
                await stopper()
            while self.store.mailbox_depth or self.store.busy:
                await trio.sleep(0.005)


class SwitchboardApp(QuartTrio):
    runtime: Runtime


def create_app(
    settings: Settings | None = None,
    namespaces: Iterable[Namespace] | None = None,
    *,
    applications: Iterable[Callable[[Runtime], None]] | None = None,
    engine_handler: Callable[[EngineSocket], MessageHandler] | None = None,
) -> SwitchboardApp:
    """Build the app with the product's applications (``web.applications``), or with exactly
    ``namespaces`` (plus ``applications`` if given) for tests and benchmarks; ``engine_handler``
    replaces the Socket.IO layer (a bare Engine.IO server)."""
    settings = settings or Settings()
    app = SwitchboardApp(__name__, static_folder=None)  # the dashboard serves its own files
    app.config["MAX_CONTENT_LENGTH"] = None  # the polling endpoint enforces its own limit
    app.config["RESPONSE_TIMEOUT"] = None  # a long-poll waits up to a ping interval
    app.config["BODY_TIMEOUT"] = 30
    runtime = Runtime(settings, engine_handler)
    app.runtime = runtime
    if namespaces is None:
        runtime.namespace("/")  # the default namespace, JWT-protected
        for install in applications if applications is not None else APPLICATIONS:
            install(runtime)
    else:
        for ns in namespaces:
            runtime.add_namespace(ns)
        for install in applications or ():
            install(runtime)
    for blueprint in runtime.blueprints:
        app.register_blueprint(blueprint)

    @app.before_serving
    async def start_runtime() -> None:
        await runtime.start(app.nursery)

    @app.route(settings.engineio_path, methods=["GET", "POST", "PUT", "OPTIONS"])
    async def engineio_polling() -> Response:
        origin = request.headers.get("Origin")
        allowed = runtime.origin_allowed(origin, request.host)
        if not allowed:
            runtime.engine.refuse("forbidden")
            return _answer(403, engineio.RequestError(engineio.ErrorCode.FORBIDDEN).body(), {})
        cors = cors_headers(origin, allowed)
        if request.method == "OPTIONS":
            cors["Access-Control-Allow-Methods"] = "GET, POST"
            cors["Access-Control-Allow-Headers"] = "content-type, authorization"
            return Response(b"", status=204, headers=cors)

        def handshake() -> Handshake:
            return Handshake(
                request.args.to_dict(),
                {k.lower(): v for k, v in request.headers.items()},
                runtime.proxies.client_of(request),
                "polling",
            )

        async def read_body(limit: int) -> bytes | None:
            length = request.content_length
            if length is not None and length > limit:
                return None
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.body:
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)

        body: bytes | None = b""
        if request.method in ("POST", "PUT"):
            body = await read_body(settings.max_http_buffer_size_bytes)
        answer = await runtime.engine.polling(
            request.method, request.args.to_dict(), handshake, body
        )
        headers = dict(cors)
        if body is None:  # the rest of an oversize body is not read: this connection is done
            headers["Connection"] = "close"
        return Response(
            answer.body, status=answer.status, content_type=answer.content_type, headers=headers
        )

    @app.websocket(settings.engineio_path)
    async def engineio_websocket() -> Any:
        from web.asgi_ws import serve_asgi_websocket

        headers = {k.lower(): v for k, v in websocket.headers.items()}
        if not runtime.origin_allowed(headers.get("origin"), websocket.host):
            runtime.engine.refuse("forbidden")
            err = engineio.RequestError(engineio.ErrorCode.FORBIDDEN)
            return Response(err.body(), status=err.status, content_type="application/json")
        query = websocket.args.to_dict()
        remote_addr = runtime.proxies.client_of(websocket)
        target, error = runtime.engine.websocket_target(query, remote_addr)
        if error is not None or target is None:
            err = error or engineio.RequestError(engineio.ErrorCode.BAD_REQUEST)
            return Response(err.body(), status=err.status, content_type="application/json")
        await websocket.accept()
        hs = Handshake(query, headers, remote_addr, "websocket")
        current = websocket._get_current_object()  # type: ignore[attr-defined]
        client = websocket.scope.get("client")
        await serve_asgi_websocket(
            runtime.engine,
            current,
            hs,
            target.sid,
            settings.max_http_buffer_size_bytes,
            abort=lambda: runtime.abort_connection(client),
        )
        return None

    if settings.test_clock:

        @app.post("/api/test/clock")
        async def advance_clock() -> Any:
            """Test-only (``--test-clock``): move the service's clock forward."""
            body = await request.get_json(force=True, silent=True) or {}
            seconds = body.get("advance_seconds") if isinstance(body, dict) else None
            if not isinstance(seconds, int | float) or seconds < 0:
                return {"error": "advance_seconds must be a non-negative number"}, 400
            runtime.clock.advance(float(seconds))
            return {"offset_seconds": runtime.clock.offset_seconds}

    request_ids = iter(range(1, 1 << 62))

    @app.before_request
    async def tag_and_guard() -> Any:
        connection_id.set(request.args.get("sid") or f"req-{next(request_ids)}")
        if runtime.draining and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            return {"success": False, "message": "Server is shutting down"}, 503
        return None

    @app.get("/metrics")
    async def metrics() -> Any:
        if not metrics_allowed(runtime, request.headers.get("Authorization")):
            return Response(
                b'{"error":"metrics need a token"}',
                status=401,
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(runtime.metrics.render(), status=200, content_type=CONTENT_TYPE)

    @app.get("/health")
    async def health() -> Any:
        return {
            "status": "ok",
            "version": VERSION,
            "uptime_seconds": round(time.time() - runtime.started_at, 3),
            **runtime.engine.describe(),
            "namespaces": runtime.sio.connected_count(),
        }

    return app


def _answer(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status=status, content_type="application/json", headers=headers)
