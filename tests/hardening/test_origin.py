"""The Origin policy (web/sockets/origin.py) on polling and both WebSocket paths, with the default
setting (no ``cors_origins``) and with ``--cors-origins https://good.example`` configured.

Policy: no Origin header (not a browser) and the same origin as the Host are always allowed;
listed origins are allowed; everything else, the literal ``null`` included, is refused with
HTTP 403 ``{"code":4,"message":"Forbidden"}`` before any session exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.raw import PATH, TOKEN, raw_conn, upgrade_head
from tests.support.clients.status import health
from tests.support.processes import interop

GOOD = "https://good.example"


@pytest.fixture(scope="module")
def default_server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(module_server_factory, "cors_origins=")


@pytest.fixture(scope="module")
def cors_server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(module_server_factory, f"cors_origins={GOOD}")


async def request(
    server: Any, transport: str, origin: str | None
) -> tuple[int, dict[str, str], bytes]:
    """One handshake with ``origin`` (None: no header) over ``polling``, the ``native``
    WebSocket path or the ``asgi`` WebSocket route."""
    header = "" if origin is None else f"Origin: {origin}\r\n"
    async with raw_conn(server) as conn:
        if transport == "polling":
            await conn.send(
                f"GET {PATH}?EIO=4&transport=polling&token={TOKEN} HTTP/1.1\r\n"
                f"Host: {server.host}:{server.port}\r\n{header}\r\n".encode()
            )
        else:
            if transport == "asgi":
                await conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await conn.response())[0] == 200
            query = f"EIO=4&transport=websocket&token={TOKEN}"
            await conn.send(
                upgrade_head(server, query, extra=header, keep_alive=transport == "asgi")
            )
        status, headers, body = await conn.response()
        if status in (101, 200):
            first = body if transport == "polling" else (await conn.text()).encode()
            assert first.startswith(b"0{"), first
        return status, headers, body


def same_origin(server: Any) -> str:
    return f"http://{server.host}:{server.port}"


CASES = [
    ("none", None, True, True),
    ("same-origin", "SAME", True, True),
    ("foreign", "https://evil.example", False, False),
    ("null", "null", False, False),
    ("same-host-other-port", "http://127.0.0.1:1", False, False),
    ("listed-as-prefix", "https://good.example.evil.com", False, False),
    ("listed-as-userinfo", "https://good.example@evil.com", False, False),
    ("listed-other-scheme", "http://good.example", False, False),
    ("listed", GOOD, False, True),
    ("listed-upper-case", "HTTPS://GOOD.EXAMPLE", False, True),
    ("listed-trailing-slash", GOOD + "/", False, False),  # not a serialized origin
]


@pytest.mark.parametrize("transport", ["polling", "native", "asgi"])
@pytest.mark.parametrize(
    ("origin", "by_default", "with_cors"),
    [(o, d, c) for _, o, d, c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_origin_policy(
    default_server: Any,
    cors_server: Any,
    transport: str,
    origin: str | None,
    by_default: bool,
    with_cors: bool,
) -> None:
    """Attack: a handshake from a foreign, ``null``, look-alike or missing Origin. Expected:
    allowed exactly as the policy says (200/101 and an OPEN packet), else 403
    ``{"code":4,"message":"Forbidden"}`` and no session is opened; allowed cross-origin polling
    answers carry ``Access-Control-Allow-Origin`` for that origin only."""
    for server, allowed in ((default_server, by_default), (cors_server, with_cors)):
        sent = same_origin(server) if origin == "SAME" else origin
        before = (await health(server))["connections"]
        status, headers, body = await request(server, transport, sent)
        if allowed:
            assert status == (200 if transport == "polling" else 101), (status, body)
            if transport == "polling" and sent is not None and origin != "SAME":
                assert headers.get("access-control-allow-origin") == sent
        else:
            assert status == 403, (status, body)
            assert json.loads(body) == {"code": 4, "message": "Forbidden"}
            assert "access-control-allow-origin" not in headers
            assert (await health(server))["connections"] == before


async def test_foreign_origin_cannot_post_into_an_open_session(cors_server: Any) -> None:
    """Attack: a page on a foreign origin that learned a session id POSTs into it (CSRF-like)
    or preflights it. Expected: 403 for the POST and for the OPTIONS preflight; a listed
    origin's preflight gets 204 with the CORS headers."""
    async with raw_conn(cors_server) as conn:
        await conn.send(
            f"GET {PATH}?EIO=4&transport=polling&token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        status, _, body = await conn.response()
        sid = json.loads(body[1:])["sid"]
        for method, origin, expected in (
            ("POST", "https://evil.example", 403),
            ("OPTIONS", "https://evil.example", 403),
            ("OPTIONS", GOOD, 204),
        ):
            extra = "Content-Length: 2\r\n" if method == "POST" else ""
            await conn.send(
                f"{method} {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                f"Origin: {origin}\r\n{extra}\r\n".encode()
                + (b"40" if method == "POST" else b"")
            )
            status, headers, _ = await conn.response()
            assert status == expected, (method, origin, status)
            if expected == 204:
                assert headers["access-control-allow-origin"] == GOOD
