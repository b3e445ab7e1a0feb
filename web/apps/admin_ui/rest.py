"""The Admin UI's pages: its pinned static build, served at ``/admin/`` by this server.

The build (``static/``, from ``@socket.io/admin-ui``'s ``ui/dist``, pinned in
``web/vendor/package.json`` and copied by ``make vendor``) is served as it ships, with two
changes to its page so that it needs nothing from the internet: its icon font comes from here
(``static/mdi/``), and the web font it links (Roboto) is left out (the system's sans-serif is
used). A small script of ours, loaded first, fills the UI's connection form with this server's
address, Engine.IO path and admin namespace. Only the files of the build are served, never a
folder listing.
"""

from __future__ import annotations

import json
import mimetypes
import re
from pathlib import Path

from quart import Blueprint, Response, redirect, send_file
from quart_schema import document_response

from web.platform.http import ApiError, Failure
from web.sockets.documented import text_response

STATIC_DIR = Path(__file__).resolve().parent / "static"
WEB_FONT = re.compile(r'<link rel="stylesheet" href="https://fonts\.googleapis\.com[^>]*>')
ICON_FONT_CDN = "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"
ICON_FONT_HERE = "mdi/css/materialdesignicons.min.css"
FIRST_SCRIPT = '<script src="js/'
CONTENT_TYPES = {".woff2": "font/woff2", ".js": "text/javascript; charset=utf-8"}
FILES: dict[str, Path] = {
    path.relative_to(STATIC_DIR).as_posix(): path
    for path in sorted(STATIC_DIR.rglob("*"))
    if path.is_file() and path.name not in ("index.html", "LICENSE")
}
# Vuetify and the charts set inline styles; scripts come from this origin only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_html() -> bytes:
    """The UI's page, with its fonts from here and our form-filling script first."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    text = WEB_FONT.sub("", text).replace(ICON_FONT_CDN, ICON_FONT_HERE)
    text = text.replace(FIRST_SCRIPT, '<script src="switchboard.js"></script>' + FIRST_SCRIPT, 1)
    return text.encode()


def prefill_script(engineio_path: str, namespace: str) -> bytes:
    """Fill the connection form the first time (the UI keeps it in localStorage)."""
    values = {
        "server_url": None,  # location.origin, set in the browser
        "path": engineio_path.rstrip("/") or "/",
        "namespace": namespace,
    }
    return (
        "(function () {\n"
        "  var store = window.localStorage, values = " + json.dumps(values) + ";\n"
        "  values.server_url = window.location.origin;\n"
        "  for (var key in values) {\n"
        "    if (!store.getItem(key)) store.setItem(key, values[key]);\n"
        "  }\n"
        "})();\n"
    ).encode()


def blueprint(engineio_path: str, namespace: str) -> Blueprint:
    bp = Blueprint("admin_ui", __name__)
    page = page_html()
    script = prefill_script(engineio_path, namespace)

    @bp.get("/admin")
    @text_response(308, "text/html", "Redirects to /admin/ (the UI's files are relative).")
    async def admin_redirect() -> Response:
        """The Admin UI, without its trailing slash."""
        return redirect("/admin/", 308)  # type: ignore[return-value]

    @bp.get("/admin/")
    @text_response(200, "text/html", "The Admin UI's page.")
    async def admin_page() -> Response:
        """The Socket.IO Admin UI."""
        return Response(page, content_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @bp.get("/admin/switchboard.js")
    @text_response(200, "text/javascript", "Fills the UI's connection form.")
    async def admin_prefill() -> Response:
        """The script that points the UI at this server."""
        return Response(
            script, content_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS
        )

    @bp.get("/admin/<path:name>")
    @text_response(200, "application/octet-stream", "The file (script, style, font, image).")
    @document_response(Failure, 404)
    async def admin_file(name: str) -> Response:
        """One file of the Admin UI's build."""
        path = FILES.get(name)
        if path is None:
            raise ApiError(404, "Not found")
        kind = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        response = await send_file(path, mimetype=kind or "application/octet-stream")
        response.headers.update(SECURITY_HEADERS)
        return response

    return bp
