"""The HTTP edge every REST route shares.

One error type (:class:`ApiError`, answered as ``{"success": false, "message", ...}``), JSON
answers encoded by msgspec (Structs or plain values), request bodies read within a limit, and the
caller's identity from ``Authorization: Bearer``. Every error a route or the framework raises
leaves as the same JSON body, never an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from actors.identity import Identity
from actors.store.faults import OutcomeUnknown, ReadFailed, StoreError
from web.platform.auth import Authenticator, TokenError, bearer
from web.sockets.body import read_limited

log = logging.getLogger("switchboard.http")

T = TypeVar("T")

NO_TOKEN = "Authentication failed: no token provided"
INTERNAL = "Internal server error"

_encoder = msgspec.json.Encoder()


class Failure(msgspec.Struct, omit_defaults=True):
    """The body of every refusal."""

    success: bool
    message: str
    field: str | None = None  # the JSON path of the culprit (ingest)
    error: str | None = None  # what was wrong, in detail (chat)


class ApiError(Exception):
    """Raised anywhere in a route: the client gets ``status`` and a :class:`Failure` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.error = error
        self.headers = dict(headers or {})

    def body(self) -> Failure:
        return Failure(False, self.message, self.field, self.error)


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    """``body`` (a Struct, a list of them, or plain JSON values) as ``application/json``."""
    return Response(
        _encoder.encode(body),
        status=status,
        content_type="application/json",
        headers=dict(headers or {}),
    )


def error_response(err: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(err.status, err.body(), {**(headers or {}), **err.headers})


async def read_body(limit_bytes: int, too_large: str) -> bytes:
    """The request body; over ``limit_bytes``, 413 with ``too_large`` (and the connection is
    closed, since the rest of the body is left unread)."""
    body = await read_limited(request.body, request.content_length, limit_bytes)
    if body is None:
        raise ApiError(413, too_large, headers={"Connection": "close"})
    return body


def decode_json(body: bytes, kind: type[T]) -> T:
    """``body`` decoded into ``kind``; 400 naming what was wrong."""
    try:
        return msgspec.json.decode(body or b"null", type=kind)
    except RecursionError:
        raise ApiError(400, "Invalid JSON body: nested too deeply") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise ApiError(400, "Invalid request data", error=str(err)) from None


def caller(authenticator: Authenticator, *, anonymous: bool = False) -> Identity | None:
    """Who sent this request, from ``Authorization: Bearer <JWT>``; 401 without a valid token.

    With ``anonymous`` a request without any token is let in (None); a token that is given must
    still be valid."""
    token = bearer({k.lower(): v for k, v in request.headers.items()})
    if token is None:
        if anonymous:
            return None
        raise ApiError(401, NO_TOKEN)
    try:
        return authenticator.verify(token)
    except TokenError as err:
        raise ApiError(401, str(err)) from None


def required_caller(authenticator: Authenticator) -> Identity:
    identity = caller(authenticator)
    assert identity is not None
    return identity


def install_error_handlers(app: Quart) -> None:
    """Every error becomes the API's JSON body: ours, the framework's (404, 405...) and bugs."""

    @app.errorhandler(ApiError)
    async def api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(StoreError)
    async def storage_error(err: StoreError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, err)
        error = "outcome_unknown" if isinstance(err, OutcomeUnknown) else "not_stored"
        if isinstance(err, ReadFailed):
            error = "read_failed"
        body = Failure(False, f"Storage unavailable ({err.fault}): {err.what}", error=error)
        return json_response(503, body, {"Retry-After": "1"})

    @app.errorhandler(HTTPException)
    async def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        message = err.name if not err.description else f"{err.name}: {err.description}"
        return json_response(status, Failure(False, message))

    @app.errorhandler(Exception)
    async def bug(err: Exception) -> Any:
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=err)
        return json_response(500, Failure(False, INTERNAL))
