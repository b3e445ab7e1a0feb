"""The live dashboard page: ``GET /`` and its static files (``web/apps/dashboard/static/``).

The page is plain HTML, CSS and JavaScript (no build step). It talks to the server only through
the public contracts: ``/ws/metrics`` (``dashboard_data``, ``events``), ``analytics:*`` on ``/``,
the visitor analytics REST API (``/api/analytics/sessions``), ``/chat`` and ``subscribe:guild``.
The token comes from the URL fragment (``/#token=...``), which browsers never send to a server.

Its browser libraries ship inside the package, pinned (``web/vendor/package.json``, refreshed
with ``make vendor``) with their licences: Chart.js in ``static/vendor/``, and the Socket.IO
client, which the page loads from the Engine.IO endpoint as any Socket.IO page would
(``/socket.io/socket.io.min.js``, see :mod:`web.sockets.client`). Only the files listed here
are served, never a folder.
"""

from __future__ import annotations

import html
from pathlib import Path

from quart import Blueprint, Response, send_file
from quart_schema import document_response

from web.platform.http import ApiError, Failure
from web.platform.runtime import Runtime
from web.sockets.client import CLIENT_DIR
from web.sockets.documented import text_response

STATIC_DIR = Path(__file__).resolve().parent / "static"

PAGE_FILES: dict[str, str] = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "screenshot.png": "image/png",
}
VENDOR_FILES: dict[str, Path] = {
    "socket.io.min.js": CLIENT_DIR / "socket.io.min.js",
    "chart.umd.min.js": STATIC_DIR / "vendor" / "chart.umd.min.js",
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
CLIENT_SCRIPT = '<script src="/socket.io/socket.io.min.js" defer></script>'


async def _file(path: Path, content_type: str) -> Response:
    response = await send_file(path, mimetype=content_type)
    response.headers.update(SECURITY_HEADERS)
    return response


def page_html(engineio_path: str) -> bytes:
    """The page, told where the Engine.IO endpoint is (``engineio_path`` is configurable)."""
    text = (STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    path = html.escape(engineio_path)
    meta = f'<meta name="switchboard-engineio-path" content="{path}">'
    client = f'<script src="{path}socket.io.min.js" defer></script>'
    text = text.replace("<!-- switchboard-settings -->", meta, 1)
    return text.replace(CLIENT_SCRIPT, client, 1).encode()


def blueprint(engineio_path: str) -> Blueprint:
    bp = Blueprint("dashboard", __name__)

    @bp.get("/")
    @text_response(200, "text/html", "The dashboard page.")
    async def page() -> Response:
        """The live dashboard page (its token comes from the URL fragment ``#token=``)."""
        body = page_html(engineio_path)
        return Response(body, content_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @bp.get("/static/<name>")
    @text_response(200, "text/plain", "The file (CSS, JavaScript or PNG).")
    @document_response(Failure, 404)
    async def static_file(name: str) -> Response:
        """One of the page's own files."""
        content_type = PAGE_FILES.get(name)
        if content_type is None:
            raise ApiError(404, "Not found")
        return await _file(STATIC_DIR / name, content_type)

    @bp.get("/static/vendor/<name>")
    @text_response(200, "text/javascript", "The library.")
    @document_response(Failure, 404)
    async def vendor_file(name: str) -> Response:
        """One of the page's pinned browser libraries."""
        path = VENDOR_FILES.get(name)
        if path is None:
            raise ApiError(404, "Not found")
        return await _file(path, "text/javascript; charset=utf-8")

    return bp


class Dashboard:
    """The dashboard page application (its demo traffic is an application of its own)."""

    def __init__(self, runtime: Runtime) -> None:
        runtime.add_blueprint(blueprint(runtime.settings.engineio_path))
