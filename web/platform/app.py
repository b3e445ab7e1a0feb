"""The Quart-Trio app: the platform's routes, the Engine.IO endpoint and the applications' routes.

``create_app(settings, applications)`` builds a complete ASGI app. ``applications`` installs
what the server serves on its :class:`~web.platform.runtime.Runtime` (the product's is
:func:`web.apps.install`); the runtime starts in the app's lifespan, in ``app.nursery``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import count

from quart import request
from quart_trio import QuartTrio

from web.platform import openapi, status
from web.platform.http import ApiError, install_error_handlers
from web.platform.metrics import Metrics
from web.platform.runtime import EngineHandler, Runtime
from web.platform.settings import Settings
from web.sockets.log_context import connection_id
from web.sockets.namespace import Namespace
from web.sockets.routes import engineio_blueprint

Install = Callable[[Runtime], None]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SwitchboardApp(QuartTrio):
    runtime: Runtime


def no_applications(runtime: Runtime) -> None:
    """Serve only the platform (and the namespaces given to :func:`create_app`)."""


def create_app(
    settings: Settings,
    applications: Install = no_applications,
    *,
    namespaces: Iterable[Namespace] = (),
    engine_handler: EngineHandler | None = None,
) -> SwitchboardApp:
    """The app for ``settings``: ``applications`` installs what it serves; ``namespaces`` adds
    ready-made event tables (tests, benchmarks); ``engine_handler`` replaces the Socket.IO layer
    (a bare Engine.IO server)."""
    app = SwitchboardApp(__name__, static_folder=None)  # the dashboard serves its own files
    app.config["MAX_CONTENT_LENGTH"] = None  # each route enforces its own limit
    app.config["RESPONSE_TIMEOUT"] = None  # a long-poll waits up to a ping interval
    app.config["BODY_TIMEOUT"] = 30
    runtime = Runtime(settings, engine_handler)
    app.runtime = runtime
    for ns in namespaces:
        runtime.add_namespace(ns)
    applications(runtime)
    metrics = Metrics(runtime)
    app.register_blueprint(
        engineio_blueprint(settings.engineio_path, runtime, settings.max_http_buffer_size_bytes)
    )
    app.register_blueprint(status.blueprint(runtime, metrics))
    for blueprint in runtime.blueprints:
        app.register_blueprint(blueprint)
    install_error_handlers(app)
    openapi.install(app, status.VERSION)

    @app.before_serving
    async def start_runtime() -> None:
        await runtime.start(app.nursery)

    request_ids = count(1)

    @app.before_request
    async def tag_and_guard() -> None:
        connection_id.set(request.args.get("sid") or f"req-{next(request_ids)}")
        if runtime.draining and request.method in WRITE_METHODS:
            raise ApiError(503, "Server is shutting down")

    return app
