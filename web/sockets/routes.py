"""The Engine.IO endpoint as Quart routes: long-polling, and the ASGI WebSocket route.

Under the front door these serve everything but first-request WebSocket upgrades (those take the
native path); under any other ASGI server they serve everything. Both hand the request to the
same :class:`~web.sockets.engineio_server.EngineServer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec
from quart import Blueprint, Response, request, send_file, websocket
from quart_schema import document_response

from actors.sockets.session import Handshake
from protocol import engineio
from web.sockets.asgi_ws import serve_asgi_websocket
from web.sockets.body import read_limited
from web.sockets.client import BUNDLES, CLIENT_DIR
from web.sockets.documented import text_response
from web.sockets.engineio_server import EngineServer
from web.sockets.proxies import TrustedProxies


class EngineError(msgspec.Struct):
    """An Engine.IO refusal, as Node's engine.io words it."""

    code: int  # 0 unknown transport, 1 unknown sid, 2 bad handshake method, 3 bad request,
    # 4 forbidden, 5 unsupported protocol version
    message: str


class EngineHost(Protocol):
    """What the routes need from the server that runs them."""

    engine: EngineServer
    proxies: TrustedProxies
    origin_allowed: Callable[[str | None, str | None], bool]
    abort_connection: Callable[[object], bool]


def cors_headers(origin: str | None, allowed: bool) -> dict[str, str]:
    """Headers for a cross-origin polling answer (same-origin needs none)."""
    if origin is None or not allowed:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _error(err: engineio.RequestError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        err.body(), status=err.status, content_type="application/json", headers=headers or {}
    )


def engineio_blueprint(path: str, host: EngineHost, max_payload_bytes: int) -> Blueprint:
    bp = Blueprint("engineio", __name__)

    @bp.route(path, methods=["GET", "POST", "PUT", "OPTIONS"])
    @text_response(200, "text/plain; charset=UTF-8", "An Engine.IO payload, or `ok`.")
    @document_response(EngineError, 400)
    @document_response(EngineError, 403)
    @text_response(413, "text/plain", "The POST body is over max_http_buffer_size_bytes.")
    async def engineio_polling() -> Response:
        """Engine.IO long-polling: handshake, GET (receive) and POST (send)."""
        origin = request.headers.get("Origin")
        allowed = host.origin_allowed(origin, request.host)
        if not allowed:
            host.engine.refuse("forbidden")
            return _error(engineio.RequestError(engineio.ErrorCode.FORBIDDEN))
        cors = cors_headers(origin, allowed)
        if request.method == "OPTIONS":
            cors["Access-Control-Allow-Methods"] = "GET, POST"
            cors["Access-Control-Allow-Headers"] = "content-type, authorization"
            return Response(b"", status=204, headers=cors)

        def handshake() -> Handshake:
            return Handshake(
                request.args.to_dict(),
                {k.lower(): v for k, v in request.headers.items()},
                host.proxies.client_of(request),
                "polling",
            )

        body: bytes | None = b""
        if request.method in ("POST", "PUT"):
            body = await read_limited(request.body, request.content_length, max_payload_bytes)
        answer = await host.engine.polling(request.method, request.args.to_dict(), handshake, body)
        if body is None:  # the rest of an oversize body is not read: this connection is done
            cors["Connection"] = "close"
        return Response(
            answer.body, status=answer.status, content_type=answer.content_type, headers=cors
        )

    @bp.websocket(path)
    async def engineio_websocket() -> Response | None:
        """Engine.IO over WebSocket (the ASGI route; ``switchboard serve`` has a faster one)."""
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        if not host.origin_allowed(headers.get("origin"), websocket.host):
            host.engine.refuse("forbidden")
            return _error(engineio.RequestError(engineio.ErrorCode.FORBIDDEN))
        query = websocket.args.to_dict()
        remote_addr = host.proxies.client_of(websocket)
        target, error = host.engine.websocket_target(query, remote_addr)
        if error is not None or target is None:
            return _error(error or engineio.RequestError(engineio.ErrorCode.BAD_REQUEST))
        await websocket.accept()
        current = websocket._get_current_object()  # type: ignore[attr-defined]
        client = websocket.scope.get("client")
        await serve_asgi_websocket(
            host.engine,
            current,
            Handshake(query, headers, remote_addr, "websocket"),
            target.sid,
            max_payload_bytes,
            abort=lambda: host.abort_connection(client),
        )
        return None

    @bp.get(f"{path}<any({', '.join(BUNDLES)}):bundle>")
    @text_response(200, "text/javascript", "The bundle (socket.io-client, pinned).")
    async def socketio_client(bundle: str) -> Response:
        """The Socket.IO browser client (socket.io-client's bundle, as Node's serveClient)."""
        response = await send_file(CLIENT_DIR / bundle, mimetype="text/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    return bp
