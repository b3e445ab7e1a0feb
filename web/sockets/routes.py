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

from actors.cluster.broker import ClusterBroker
from actors.cluster.registry import NodeInfo
from actors.sockets.session import Handshake
from protocol import engineio
from web.sockets.asgi_ws import serve_asgi_websocket
from web.sockets.body import read_limited
from web.sockets.client import BUNDLES, CLIENT_DIR
from web.sockets.documented import text_response
from web.sockets.engineio_server import EngineServer
from web.sockets.forward import PollingForwarder, owner_of, relay_websocket
from web.sockets.proxies import TrustedProxies


class EngineError(msgspec.Struct):
    """An Engine.IO refusal, as Node's engine.io words it."""

    code: int  # 0 unknown transport, 1 unknown sid, 2 bad handshake method, 3 bad request,
    # 4 forbidden, 5 unsupported protocol version
    message: str


class EngineHost(Protocol):
    """What the routes need from the server that runs them."""

    engine: EngineServer
    cluster: ClusterBroker | None
    forwarder: PollingForwarder | None
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


async def _foreign_owner(host: EngineHost, sid: str | None, headers: object) -> NodeInfo | None:
    """The live node that owns ``sid`` when that is not this one (see web.sockets.forward)."""
    if host.cluster is None or not sid or sid in host.engine.sockets:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}  # type: ignore[attr-defined]
    return await owner_of(host.cluster, sid, lowered)


async def _forward(
    host: EngineHost, owner: NodeInfo, body: bytes, cors: dict[str, str]
) -> Response:
    """Relay this polling request to the node that owns its session."""
    assert host.forwarder is not None
    headers = {k.lower(): v for k, v in request.headers.items()}
    client = host.proxies.client_of(request)
    answer = await host.forwarder.forward(
        owner, request.method, request.full_path, headers, body, client
    )
    if answer is None:  # the owner is gone: so is the session
        return _error(engineio.RequestError(engineio.ErrorCode.UNKNOWN_SID), cors)
    return Response(answer.body, status=answer.status, headers={**answer.headers, **cors})


def engineio_blueprint(path: str, host: EngineHost, max_payload_bytes: int) -> Blueprint:
    bp = Blueprint("engineio", __name__)

    @bp.route(path, methods=["GET", "POST", "PUT", "OPTIONS"])
    @text_response(200, "text/plain; charset=UTF-8", "An Engine.IO payload, or `ok`.")
    @document_response(EngineError, 400)
    @document_response(EngineError, 403)
    @text_response(413, "text/plain", "The POST body is over max_http_buffer_size_bytes.")
    async def engineio_polling() -> Response:
        """Engine.IO long-polling: handshake, GET (receive) and POST (send)."""
        return await _polling(host, max_payload_bytes)

    @bp.websocket(path)
    async def engineio_websocket() -> Response | None:
        """Engine.IO over WebSocket (the ASGI route; ``switchboard serve`` has a faster one)."""
        return await _websocket(host, max_payload_bytes)

    @bp.get(f"{path}<any({', '.join(BUNDLES)}):bundle>")
    @text_response(200, "text/javascript", "The bundle (socket.io-client, pinned).")
    async def socketio_client(bundle: str) -> Response:
        """The Socket.IO browser client (socket.io-client's bundle, as Node's serveClient)."""
        response = await send_file(CLIENT_DIR / bundle, mimetype="text/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    return bp


async def _polling(host: EngineHost, max_payload_bytes: int) -> Response:
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
    owner = await _foreign_owner(host, request.args.get("sid"), request.headers)
    if owner is not None and body is not None:
        return await _forward(host, owner, body, cors)
    answer = await host.engine.polling(request.method, request.args.to_dict(), handshake, body)
    if body is None:  # the rest of an oversize body is not read: this connection is done
        cors["Connection"] = "close"
    return Response(
        answer.body, status=answer.status, content_type=answer.content_type, headers=cors
    )


async def _websocket(host: EngineHost, max_payload_bytes: int) -> Response | None:
    headers = {k.lower(): v for k, v in websocket.headers.items()}
    if not host.origin_allowed(headers.get("origin"), websocket.host):
        host.engine.refuse("forbidden")
        return _error(engineio.RequestError(engineio.ErrorCode.FORBIDDEN))
    query = websocket.args.to_dict()
    remote_addr = host.proxies.client_of(websocket)
    owner = await _foreign_owner(host, query.get("sid"), websocket.headers)
    if owner is not None:
        await websocket.accept()
        ws = websocket._get_current_object()  # type: ignore[attr-defined]
        assert host.cluster is not None
        relayed = await relay_websocket(
            ws, owner, websocket.full_path, host.cluster, remote_addr, headers
        )
        if not relayed:
            await websocket.close(1011)
        return None
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
        version=target.protocol,
    )
    return None
