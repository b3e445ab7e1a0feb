"""The OpenAPI document: every route of the app is in it, every reference resolves, and the
server serves it at /openapi.json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.clients.visitors import VisitorServer
from web import apps
from web.platform.app import create_app
from web.platform.openapi import document
from web.platform.settings import Settings


def _shape(path: str) -> str:
    """``/api/chats/<chat_id>/messages`` and ``/api/chats/{chatId}/messages`` -> one shape."""
    return re.sub(r"<(?:[^:>]+:)?[^>]+>|\{[^}]+\}", "{}", path)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_route_of_the_app_is_documented(tmp_path: Path) -> None:
    for test_clock, admin_ui in ((True, True), (False, False)):
        settings = Settings(data_dir=str(tmp_path), test_clock=test_clock, admin_ui=admin_ui)
        app = create_app(settings, apps.install)
        doc = document(app)
        assert doc["openapi"] == "3.1.0"
        documented = {_shape(path): ops for path, ops in doc["paths"].items()}
        missing = []
        for rule in app.url_map.iter_rules():
            ops = documented.get(_shape(rule.rule))
            if getattr(rule, "websocket", False):
                wanted = {"get"}
            else:
                methods = set(rule.methods or ()) - {"HEAD"}
                if getattr(rule, "provide_automatic_options", True):
                    methods.discard("OPTIONS")  # added by Quart, not by the route
                wanted = {m.lower() for m in methods}
            if ops is None or not wanted <= set(ops):
                missing.append(f"{sorted(wanted)} {rule.rule}")
        assert not missing, f"routes missing from the OpenAPI document: {missing}"
        assert ("/api/test/clock" in doc["paths"]) is test_clock
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rsplit("/", 1)[1] in schemas, ref
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                assert op["responses"], f"{method} {path} has no responses"
                assert op["summary"], f"{method} {path} has no summary"


async def test_the_server_serves_the_document(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(VisitorServer(tmp_path / "data0"))
    answer = await server.get("/openapi.json", auth=False)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    doc = answer.json()
    same = create_app(Settings(data_dir=str(tmp_path), test_clock=True), apps.install)
    assert doc == json.loads(json.dumps(document(same)))
    for path in (
        "/api/events",
        "/api/events/batch",
        "/api/analytics/summary",
        "/api/analytics/sessions",
        "/api/analytics/detailed",
        "/api/status",
        "/health",
        "/metrics",
        "/api/chats",
        "/api/chats/{chatId}/messages",
        "/api/guilds/{guildId}/events",
    ):
        assert path in doc["paths"], path
    status = await server.ok("/api/status")
    assert status["websocket"]["visitor_ws_port"] is None
    assert status["websocket"]["dashboards"] == {
        "/ws/visitors": 0,
        "visitor_ws_port": 0,
        "/ws/metrics": 0,
    }
