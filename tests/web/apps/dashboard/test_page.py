"""The dashboard page and its files, as the server serves them (no browser: the page in
Chromium is tests/browser/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.processes import ProductServer, ServerProcess
from tests.support.tokens import BROWSER_SECRET


def test_page_and_vendored_files_are_served(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer("--engineio-path", "/rt/", secret=BROWSER_SECRET, data_dir=tmp_path)
    )
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<meta name="switchboard-engineio-path" content="/rt/">' in page.text
    assert "cdn" not in page.text.lower()  # no CDN: every script is served by the server
    for path, kind in [
        ("/static/dashboard.js", "text/javascript"),
        ("/static/dashboard.css", "text/css"),
        ("/static/vendor/socket.io.min.js", "text/javascript"),
        ("/static/vendor/chart.umd.min.js", "text/javascript"),
    ]:
        answer = httpx.get(server.url + path, timeout=10)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith(kind), path
    for path in ["/static/vendor/ws.js", "/static/../cli.py", "/static/vendor-src/package.json"]:
        assert httpx.get(server.url + path, timeout=10).status_code == 404, path
