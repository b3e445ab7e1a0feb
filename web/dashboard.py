"""The live dashboard page: ``GET /`` and its static files (``web/static/``).

The page is plain HTML, CSS and JavaScript (no build step). It talks to the server only through
the public contracts: ``/ws/metrics`` (``dashboard_data``, ``events``), ``analytics:*`` on ``/``,
the visitor analytics REST API (``/api/analytics/sessions``), ``/chat`` and ``subscribe:guild``.
The token comes from the URL fragment (``/#token=...``), which browsers never send to a server.

Browser libraries are pinned npm packages (``web/static/vendor-src/package.json``), installed by
``make`` with ``npm ci`` into ``web/static/vendor-src/node_modules`` (git-ignored) and served from
``/static/vendor/<name>``: only the files listed in :data:`VENDOR_FILES`, never the whole folder.
Without them the page still loads and says how to install them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, send_file

from web import demo

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor-src" / "node_modules"

PAGE_FILES: dict[str, str] = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "screenshot.png": "image/png",
}
VENDOR_FILES: dict[str, Path] = {
    "socket.io.min.js": VENDOR_DIR / "socket.io-client" / "dist" / "socket.io.min.js",
    "chart.umd.min.js": VENDOR_DIR / "chart.js" / "dist" / "chart.umd.min.js",
}
# The page's own scripts come from this origin only; the sockets connect to it too.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def missing_vendor_files() -> list[str]:
    """Names of vendored libraries that are not installed (``make run`` installs them)."""
    return [name for name, path in VENDOR_FILES.items() if not path.is_file()]


async def _file(path: Path, content_type: str) -> Response:
    response = await send_file(path, mimetype=content_type)
    response.headers.update(SECURITY_HEADERS)
    return response


def page_html(engineio_path: str) -> bytes:
    """The page, told where the Engine.IO endpoint is (``engineio_path`` is configurable)."""
    text = (STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    meta = f'<meta name="switchboard-engineio-path" content="{html.escape(engineio_path)}">'
    return text.replace("<!-- switchboard-settings -->", meta, 1).encode()


def blueprint(engineio_path: str = "/socket.io/") -> Blueprint:
    bp = Blueprint("dashboard", __name__)

    @bp.get("/")
    async def page() -> Any:
        body = page_html(engineio_path)
        return Response(body, content_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @bp.get("/static/<name>")
    async def static_file(name: str) -> Any:
        content_type = PAGE_FILES.get(name)
        if content_type is None:
            return {"error": "not found"}, 404
        return await _file(STATIC_DIR / name, content_type)

    @bp.get("/static/vendor/<name>")
    async def vendor_file(name: str) -> Any:
        path = VENDOR_FILES.get(name)
        if path is None:
            return {"error": "not found"}, 404
        if not path.is_file():
            message = (
                f"{name} is not installed: run `make run` (or `cd web/static/vendor-src && npm ci`)"
            )
            return {"error": message}, 404
        return await _file(path, "text/javascript; charset=utf-8")

    @bp.get("/static/vendor-src/<path:rest>")
    async def vendor_sources(rest: str) -> Any:
        # Quart's default static route would serve all of web/static; not the npm folder
        return {"error": "not found"}, 404

    return bp


def check_settings(settings: Any) -> None:
    demo.check_settings(settings)


def install(runtime: Any) -> None:
    """Serve the dashboard page on ``runtime``, and with ``--demo`` make traffic for it."""
    runtime.add_blueprint(blueprint(runtime.settings.engineio_path))
    demo.install(runtime)
