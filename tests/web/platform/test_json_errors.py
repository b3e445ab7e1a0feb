"""Every HTTP error, on every route, is the API's JSON error body, never a framework page: a
method the route does not take, a malformed body, a path that does not exist, a static file that
does not exist. Checked against a running server, route by route from the app's own URL map."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import ProductServer
from tests.support.tokens import Tokens
from web import apps
from web.platform.app import create_app
from web.platform.settings import Settings

SECRET = "json-errors-secret-of-a-decent-length"
ALL_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _concrete(rule: str) -> str:
    """``/api/chats/<chat_id>/messages`` -> ``/api/chats/x/messages``."""
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "x", rule)


def _assert_json_error(answer: httpx.Response, what: str) -> None:
    assert answer.status_code >= 400, (what, answer.status_code)
    kind = answer.headers.get("content-type", "")
    assert kind.startswith("application/json"), (what, answer.status_code, kind, answer.text[:200])
    body: Any = answer.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str), (what, body)


def test_every_route_answers_errors_as_json(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    flags = ("--admin-ui", "true")
    server = server_factory(ProductServer(*flags, secret=SECRET, data_dir=tmp_path / "data"))
    app = create_app(Settings(data_dir=str(tmp_path / "probe"), admin_ui=True), apps.install)
    admin = Tokens(SECRET)("ops", "admin")
    taken: dict[str, set[str]] = {}  # path -> the methods some route takes there
    for rule in app.url_map.iter_rules():
        if not getattr(rule, "websocket", False):
            taken.setdefault(_concrete(rule.rule), set()).update(rule.methods or ())
    checked = 0
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for auth in ({}, {"Authorization": f"Bearer {admin}"}):
            for path, methods in taken.items():
                for method in sorted(ALL_METHODS - methods):
                    answer = http.request(method, path, headers=auth)
                    _assert_json_error(answer, f"{method} {path}")
                    checked += 1
                for method in sorted({"POST", "PUT", "PATCH"} & methods):
                    answer = http.request(
                        method,
                        path,
                        content=b"{not json",
                        headers={**auth, "Content-Type": "application/json"},
                    )
                    if answer.status_code >= 400:
                        _assert_json_error(answer, f"{method} {path} with a malformed body")
                        checked += 1
        for path in ("/no/such/route", "/api/nothing-here", "/static/missing.js", "/admin/x.js"):
            _assert_json_error(http.get(path), f"GET {path}")
    assert checked > 40  # every route was tried, not a handful
