"""The OpenAPI 3.1 document of every REST endpoint, served at ``GET /openapi.json``.

Request and response bodies that have a msgspec model in the code (events, sessions, detailed
stats, the metrics dashboard, guild events) get their JSON Schema generated from that model, so the
document cannot drift from what the server decodes and encodes; the rest is written here. WebSocket
endpoints (``/socket.io/``, ``/ws/visitors``) appear as ``GET`` with a ``101`` answer and point to
the protocol descriptions; Socket.IO events are not REST and are described in the README.
A test checks that every route of the app appears here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from quart import Blueprint, Response

from actors.analytics.events import BatchIn, EventIn
from actors.analytics.metrics import CurrentStats, MetricsDashboard
from actors.guild.model import EventIn as GuildEventIn
from actors.visitors.model import Detailed, SessionView

REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


def _json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _success(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "data": data},
        "required": ["success", "data"],
    }


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
STAMP = {"type": "string", "format": "date-time"}
COUNTS = {"type": "object", "additionalProperties": INT}
FAILURE = _ref("Failure")

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
BEARER_OR_OPEN: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None) -> Any:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or STR,
    }


FILTERS = [
    _param("country", "query", "Only sessions/events of this country (empty: no filter)."),
    _param("page", "query", "Only sessions currently on / events of this page (empty: none)."),
]


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "Invalid request (the message names the field).",
        401: "No token, or an invalid or expired one.",
        403: "The token's role or guilds do not allow this.",
        404: "Not found (or no access).",
        413: "Request body too large.",
        429: "Rate limit exceeded (see Retry-After).",
        500: "The data could not be stored.",
        503: "Shutting down, or the store could not commit.",
    }
    return {str(c): _answer(meaning[c], FAILURE) for c in codes}


def _schemas() -> dict[str, Any]:
    (guild_event, *_), components = msgspec.json.schema_components(
        [GuildEventIn, EventIn, BatchIn, CurrentStats, SessionView, Detailed, MetricsDashboard],
        ref_template=REF,
    )
    components["GuildEvent"] = guild_event
    components["Failure"] = _obj(
        {
            "success": {"const": False},
            "message": STR,
            "field": {"type": "string", "description": "JSON path of the culprit (ingest)."},
            "error": {"type": "string", "description": "What was wrong (chat)."},
        },
        ["success", "message"],
    )
    components["LiveMetric"] = _obj({"name": STR, "value": NUM, "timestamp": STAMP})
    components["Chat"] = _obj(
        {
            "chatId": STR,
            "name": STR,
            "description": STR,
            "participants": {"type": "array", "items": STR},
            "participantCount": INT,
            "createdBy": STR,
            "createdAt": STAMP,
            "lastActivity": STAMP,
        }
    )
    components["ChatMessage"] = _obj(
        {
            "id": STR,
            "content": STR,
            "type": {"enum": ["text", "image", "file", "system"]},
            "chatId": STR,
            "userId": STR,
            "createdAt": STAMP,
            "user": _obj({"id": STR, "username": STR}),
        }
    )
    return components


def _ingest_answer(batch: bool) -> dict[str, Any]:
    data: dict[str, Any]
    if batch:
        data = _obj(
            {
                "accepted": INT,
                "stored": INT,
                "duplicates": INT,
                "current_stats": _ref("CurrentStats"),
            }
        )
    else:
        data = _obj(
            {
                "session_id": {"type": ["string", "null"]},
                "event_id": STR,
                "duplicate": BOOL,
                "current_stats": _ref("CurrentStats"),
            }
        )
    schema = _success(data)
    schema["properties"]["message"] = STR
    return schema


def _paths(engineio_path: str, test_clock: bool) -> dict[str, Any]:
    idem = _param(
        "Idempotency-Key", "header", "A retried request with the same key stores nothing again."
    )
    paths: dict[str, Any] = {
        "/api/events": {
            "post": {
                "tags": ["analytics"],
                "summary": "Post one event (visitor or product spelling); answers after commit.",
                "security": [{}],
                "parameters": [idem],
                "requestBody": _json_body(_ref("EventIn")),
                "responses": {
                    "200": _answer("Stored (or a duplicate).", _ingest_answer(False)),
                    **_errors(400, 413, 429, 500, 503),
                },
            },
            "options": {
                "tags": ["analytics"],
                "summary": "CORS preflight.",
                "security": [{}],
                "responses": {"204": _answer("Allowed.")},
            },
        },
        "/api/events/batch": {
            "post": {
                "tags": ["analytics"],
                "summary": "Post many events at once (all or nothing); answers after commit.",
                "security": [{}],
                "parameters": [idem],
                "requestBody": _json_body(
                    {"anyOf": [{"type": "array", "items": _ref("EventIn")}, _ref("BatchIn")]}
                ),
                "responses": {
                    "200": _answer("Stored.", _ingest_answer(True)),
                    **_errors(400, 413, 429, 500, 503),
                },
            },
            "options": {
                "tags": ["analytics"],
                "summary": "CORS preflight.",
                "security": [{}],
                "responses": {"204": _answer("Allowed.")},
            },
        },
        "/api/metrics/dashboard": {
            "get": {
                "tags": ["analytics"],
                "summary": "The metrics dashboard (as pushed on /ws/metrics).",
                "security": BEARER_OR_OPEN,
                "responses": {
                    "200": _answer("The dashboard.", _ref("MetricsDashboard")),
                    **_errors(401),
                },
            }
        },
        "/api/metrics/live": {
            "get": {
                "tags": ["analytics"],
                "summary": "The live metrics (as analytics:liveMetrics).",
                "security": BEARER_OR_OPEN,
                "responses": {
                    "200": _answer("The metrics.", {"type": "array", "items": _ref("LiveMetric")}),
                    **_errors(401),
                },
            }
        },
        "/api/analytics/summary": {
            "get": {
                "tags": ["visitors"],
                "summary": "Active sessions, events today and page views today.",
                "security": BEARER_OR_OPEN,
                "parameters": FILTERS,
                "responses": {
                    "200": _answer(
                        "The summary.",
                        _success(_obj({"summary": _ref("CurrentStats"), "generated_at": STAMP})),
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/analytics/sessions": {
            "get": {
                "tags": ["visitors"],
                "summary": "Active sessions with their journeys, most recent activity first.",
                "security": BEARER_OR_OPEN,
                "parameters": [
                    *FILTERS,
                    _param(
                        "limit",
                        "query",
                        "How many sessions to list (1 to visitor_sessions_page_max, the default).",
                        {"type": "integer", "minimum": 1},
                    ),
                ],
                "responses": {
                    "200": _answer(
                        "The sessions; total_count counts every matching one.",
                        _success(
                            _obj(
                                {
                                    "sessions": {"type": "array", "items": _ref("SessionView")},
                                    "total_count": INT,
                                }
                            )
                        ),
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/analytics/detailed": {
            "get": {
                "tags": ["visitors"],
                "summary": "Everything a dashboard needs in one call (today's sessions).",
                "security": BEARER_OR_OPEN,
                "parameters": FILTERS,
                "responses": {
                    "200": _answer("The detailed stats.", _success(_ref("Detailed"))),
                    **_errors(400, 401),
                },
            }
        },
        "/api/status": {
            "get": {
                "tags": ["operations"],
                "summary": "Server and WebSocket status: dashboards per feed, uptime, version.",
                "security": [{}],
                "responses": {
                    "200": _answer(
                        "The status.",
                        _success(
                            _obj(
                                {
                                    "status": STR,
                                    "version": STR,
                                    "uptime_seconds": NUM,
                                    "started_at": STAMP,
                                    "server": _obj(
                                        {
                                            "connections": INT,
                                            "by_transport": COUNTS,
                                            "namespaces": COUNTS,
                                        }
                                    ),
                                    "websocket": _obj(
                                        {
                                            "dashboards": COUNTS,
                                            "total_dashboards": INT,
                                            "visitor_ws_port": {"type": ["integer", "null"]},
                                            "alerts_sent": INT,
                                            "slow_consumer_disconnects": INT,
                                            "dashboard_actions": INT,
                                        }
                                    ),
                                    "sessions": _obj({"active": INT}),
                                }
                            )
                        ),
                    )
                },
            }
        },
        "/health": {
            "get": {
                "tags": ["operations"],
                "summary": "Health check.",
                "security": [{}],
                "responses": {
                    "200": _answer(
                        "Up.",
                        _obj(
                            {
                                "status": {"const": "ok"},
                                "version": STR,
                                "uptime_seconds": NUM,
                                "connections": INT,
                                "by_transport": COUNTS,
                                "namespaces": COUNTS,
                            }
                        ),
                    )
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics (metrics_token, an admin JWT, or metrics_public).",
                "security": [{"bearerAuth": []}, {"metricsToken": []}, {}],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": STR}},
                    },
                    "401": _answer("A token is needed."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "summary": "This document.",
                "security": [{}],
                "responses": {"200": _answer("The OpenAPI document.", {"type": "object"})},
            }
        },
        "/api/chats": {
            "post": {
                "tags": ["chat"],
                "summary": "Create a chat (the caller is a participant).",
                "security": BEARER,
                "requestBody": _json_body(
                    _obj(
                        {
                            "name": {"type": "string", "minLength": 1, "maxLength": 200},
                            "description": {"type": "string", "maxLength": 2000},
                            "participants": {"type": "array", "items": STR},
                        },
                        ["name"],
                    )
                ),
                "responses": {
                    "201": _answer(
                        "Created.",
                        _obj({"success": {"const": True}, "message": STR, "chat": _ref("Chat")}),
                    ),
                    **_errors(400, 401),
                },
            },
            "get": {
                "tags": ["chat"],
                "summary": "The caller's chats.",
                "security": BEARER,
                "responses": {
                    "200": _answer(
                        "The chats.",
                        _obj(
                            {
                                "success": {"const": True},
                                "message": STR,
                                "chats": {"type": "array", "items": _ref("Chat")},
                            }
                        ),
                    ),
                    **_errors(401),
                },
            },
        },
        "/api/chats/{chatId}/messages": {
            "get": {
                "tags": ["chat"],
                "summary": "A chat's history, newest first, a page at a time.",
                "security": BEARER,
                "parameters": [
                    _param("chatId", "path", "The chat."),
                    _param("before", "query", "A message id: the page ends before it."),
                    _param(
                        "limit",
                        "query",
                        "Messages per page (1 to chat_history_page_max; default 50).",
                        {"type": "integer", "minimum": 1},
                    ),
                ],
                "responses": {
                    "200": _answer(
                        "A page.",
                        _obj(
                            {
                                "success": {"const": True},
                                "message": STR,
                                "messages": {"type": "array", "items": _ref("ChatMessage")},
                                "hasMore": BOOL,
                                "nextBefore": {"type": ["string", "null"]},
                            }
                        ),
                    ),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/guilds/{guildId}/events": {
            "post": {
                "tags": ["guild"],
                "summary": "A bot reports guild events (role bot or admin); answers after commit.",
                "security": BEARER,
                "parameters": [_param("guildId", "path", "1-64 letters, digits, '_' or '-'.")],
                "requestBody": _json_body(
                    {
                        "anyOf": [
                            _ref("GuildEvent"),
                            {"type": "array", "items": _ref("GuildEvent")},
                            _obj(
                                {"events": {"type": "array", "items": _ref("GuildEvent")}},
                                ["events"],
                            ),
                        ]
                    }
                ),
                "responses": {
                    "200": _answer(
                        "Stored.",
                        _obj(
                            {
                                "success": {"const": True},
                                "guildId": STR,
                                "accepted": INT,
                                "stored": INT,
                                "duplicates": INT,
                            }
                        ),
                    ),
                    **_errors(400, 401, 403, 413, 429, 503),
                },
            }
        },
        engineio_path: {
            "get": {
                "tags": ["socket.io"],
                "summary": "Engine.IO v4: long-polling GET, or the WebSocket upgrade (101).",
                "security": [{}],
                "parameters": [
                    _param("EIO", "query", "Engine.IO protocol version (4)."),
                    _param("transport", "query", "polling or websocket."),
                    _param("sid", "query", "The session id (after the handshake)."),
                ],
                "responses": {
                    "200": _answer("Polling payload (text/plain)."),
                    "101": _answer("Switched to WebSocket."),
                    "400": _answer("Engine.IO error {code, message}."),
                    "403": _answer("Origin not allowed."),
                },
            },
            "post": {
                "tags": ["socket.io"],
                "summary": "Engine.IO v4 long-polling: send packets.",
                "security": [{}],
                "responses": {"200": _answer("ok"), "400": _answer("Engine.IO error.")},
            },
            "put": {
                "tags": ["socket.io"],
                "summary": "As POST (some clients send PUT).",
                "security": [{}],
                "responses": {"200": _answer("ok"), "400": _answer("Engine.IO error.")},
            },
            "options": {
                "tags": ["socket.io"],
                "summary": "CORS preflight.",
                "security": [{}],
                "responses": {"204": _answer("Allowed."), "403": _answer("Origin not allowed.")},
            },
        },
        "/ws/visitors": {
            "get": {
                "tags": ["visitors"],
                "summary": "The raw JSON visitor feed (WebSocket upgrade; see the README).",
                "security": BEARER_OR_OPEN,
                "parameters": [_param("token", "query", "The JWT (or Authorization: Bearer).")],
                "responses": {
                    "101": _answer("Switched to WebSocket: JSON text frames {type, data}."),
                    "403": _answer("Origin not allowed."),
                },
            }
        },
        "/": {
            "get": {
                "tags": ["dashboard"],
                "summary": "The live dashboard page (token in the URL fragment).",
                "security": [{}],
                "responses": {"200": {"description": "HTML.", "content": {"text/html": {}}}},
            }
        },
        "/static/{name}": {
            "get": {
                "tags": ["dashboard"],
                "summary": "The page's own files (dashboard.css, dashboard.js, screenshot.png).",
                "security": [{}],
                "parameters": [_param("name", "path", "File name.")],
                "responses": {"200": _answer("The file."), "404": _answer("Not found.")},
            }
        },
        "/static/{filename}": {
            "get": {
                "tags": ["dashboard"],
                "summary": "Quart's static route (files of web/static).",
                "security": [{}],
                "parameters": [_param("filename", "path", "Path inside web/static.")],
                "responses": {"200": _answer("The file."), "404": _answer("Not found.")},
            }
        },
        "/static/vendor/{name}": {
            "get": {
                "tags": ["dashboard"],
                "summary": "Pinned browser libraries (socket.io.min.js, chart.umd.min.js).",
                "security": [{}],
                "parameters": [_param("name", "path", "File name.")],
                "responses": {"200": _answer("The file."), "404": _answer("Not installed.")},
            }
        },
        "/static/vendor-src/{rest}": {
            "get": {
                "tags": ["dashboard"],
                "summary": "Never served (the npm folder): always 404.",
                "security": [{}],
                "parameters": [_param("rest", "path", "Any path.")],
                "responses": {"404": _answer("Not found.")},
            }
        },
    }
    if test_clock:
        paths["/api/test/clock"] = {
            "post": {
                "tags": ["operations"],
                "summary": "Tests only (--test-clock true): move the service clock forward.",
                "security": [{}],
                "requestBody": _json_body(
                    _obj({"advance_seconds": {"type": "number", "minimum": 0}}, ["advance_seconds"])
                ),
                "responses": {
                    "200": _answer("The new offset.", _obj({"offset_seconds": NUM})),
                    "400": _answer("Bad advance_seconds."),
                },
            }
        }
    return paths


@cache
def document(engineio_path: str = "/socket.io/", test_clock: bool = False) -> bytes:
    """The document, encoded (it depends only on these two settings)."""
    from web.app import VERSION  # (web.app imports the applications)

    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard",
            "version": VERSION,
            "description": (
                "REST endpoints of Switchboard. Real-time APIs: Socket.IO namespaces /ws/metrics, "
                "/ and /chat, and the raw JSON visitor feed /ws/visitors (see the README)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": _paths(engineio_path, test_clock),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "metricsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
    return msgspec.json.encode(doc)


def blueprint(settings: Any) -> Blueprint:
    bp = Blueprint("openapi", __name__)

    @bp.get("/openapi.json")
    async def openapi_json() -> Response:
        body = document(settings.engineio_path, bool(settings.test_clock))
        return Response(
            body,
            status=200,
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": "*"},
        )

    return bp
