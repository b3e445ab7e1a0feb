"""Auth attacks against the product server (``switchboard serve``) with ``--jwt-issuer`` and
``--jwt-audience`` configured, and the logs: tokens never reach them.

Already covered elsewhere (not repeated here): no token, a garbage token, a wrong-key signature
and an expired token with python-socketio and Node clients (tests/web/sockets/interop/), and a
token that expires during a session (tests/web/sockets/test_token_expiry.py).

Expected outcome of every refused token: exactly ``44{"message":"Authentication failed: ..."}``
with the reason and nothing more (no claims, no stack), and the Engine.IO connection stays open
for another CONNECT (as in Node).
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.clients.raw import PATH, WAIT, Polling, dumps, raw_conn, sio_ws, upgrade_head
from tests.support.processes import ProductServer
from tests.support.tokens import AUTH_ATTACKS_SECRET as SECRET

ISSUER = "switchboard-tests"
AUDIENCE = "switchboard-clients"


def product(factory: Callable[..., Any], data_dir: Path, *flags: str) -> Any:
    return factory(
        ProductServer(
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
            *flags,
            secret=SECRET,
            data_dir=data_dir,
            test_clock=True,
        )
    )


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any], tmp_path_factory: Any) -> Any:
    return product(module_server_factory, tmp_path_factory.mktemp("auth"))


def claims(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "mallory",
        "name": "Mallory",
        "role": "user",
        "guilds": [],
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    for key, value in override.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def sign(payload: dict[str, Any], key: Any = SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(payload, key, algorithm=alg)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def alg_none(payload: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def tampered() -> str:
    """A valid user token whose payload was edited to role admin (signature kept)."""
    header, _, signature = sign(claims()).split(".")
    return f"{header}.{b64(json.dumps(claims(role='admin')).encode())}.{signature}"


def header_swapped(alg: str) -> str:
    """A valid HS256 token with only its header's ``alg`` changed."""
    _, payload, signature = sign(claims()).split(".")
    return f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{payload}.{signature}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FAILED = "Authentication failed: "


def attacks() -> dict[str, tuple[Any, str]]:
    """Every bad token and the reason it must be refused with. Built when a test runs, not at
    import: a token signed at collection time expires while a long suite is still running."""
    now = int(time.time())
    return {
        "alg-none": (alg_none(claims()), "invalid token"),
        "alg-none-uppercase": (
            b64(b'{"alg":"NONE"}') + "." + b64(json.dumps(claims()).encode()) + ".",
            "invalid token",
        ),
        "hs512-right-key": (sign(claims(), alg="HS512"), "invalid token"),
        "hs384-right-key": (sign(claims(), alg="HS384"), "invalid token"),
        "rs256": (sign(claims(), RSA_KEY, "RS256"), "invalid token"),
        "header-says-rs256": (header_swapped("RS256"), "invalid token"),
        "header-says-hs512": (header_swapped("HS512"), "invalid token"),
        "wrong-key": (
            sign(claims(), "not-the-server-secret-but-long-enough-012345"),
            "invalid token",
        ),
        "short-key": (sign(claims(), "k"), "invalid token"),
        "tampered-role": (tampered(), "invalid token"),
        "signature-stripped": (sign(claims()).rsplit(".", 1)[0] + ".", "invalid token"),
        "expired": (sign(claims(iat=now - 7200, exp=now - 3600)), "token expired"),
        "not-yet-valid-nbf": (sign(claims(nbf=now + 3600)), "token not yet valid"),
        "issued-in-future": (sign(claims(iat=now + 3600)), "token not yet valid"),
        "missing-exp": (sign(claims(exp=...)), "token has no 'exp' claim"),
        "missing-sub": (sign(claims(sub=...)), "token has no 'sub' claim"),
        "missing-iss": (sign(claims(iss=...)), "token has no 'iss' claim"),
        "missing-aud": (sign(claims(aud=...)), "token has no 'aud' claim"),
        "wrong-iss": (sign(claims(iss="evil")), "wrong token issuer"),
        "wrong-aud": (sign(claims(aud="someone-else")), "wrong token audience"),
        "exp-not-a-number": (sign(claims(exp="tomorrow")), "invalid token"),
        "unknown-role": (sign(claims(role="superuser")), "invalid token claims"),
        "guilds-not-a-list": (sign(claims(guilds="g1,g2")), "invalid token claims"),
        "huge-token": ("eyJ" + "A" * 8000 + ".e30.x", "invalid token"),
        "not-a-jwt": ("Bearer abc", "invalid token"),
        "token-not-a-string": (12345, "no token provided"),
        "token-empty-string": ("", "no token provided"),
    }


ATTACK_NAMES = list(attacks())


@pytest.mark.parametrize("token", ATTACK_NAMES, ids=ATTACK_NAMES)
async def test_bad_token_is_refused_with_its_reason(server: Any, token: str) -> None:
    """Attack: a CONNECT to ``/`` whose ``auth.token`` is forged, of the wrong algorithm, out of
    date, missing a required claim, or for another issuer/audience (see the id). Expected:
    exactly ``44{"message":"Authentication failed: <reason>"}``; then a valid token on the same
    Engine.IO connection connects (the connection was not poisoned)."""
    value, reason = attacks()[token]
    async with sio_ws(server, connect=False, token=None) as client:
        await client.send("40" + dumps({"token": value}))
        assert await client.recv() == "44" + dumps({"message": FAILED + reason})
        await client.send("40" + dumps({"token": sign(claims())}))
        assert (await client.recv()).startswith('40{"sid":')


async def test_bad_tokens_in_query_and_bearer_header_are_refused(server: Any) -> None:
    """Attack: an ``alg: none`` token in ``?token=`` and a wrong-audience token in
    ``Authorization: Bearer``. Expected: the same refusals as in ``auth.token``."""
    async with sio_ws(server, connect=False, token=alg_none(claims())) as client:
        await client.send("40")
        assert await client.recv() == "44" + dumps({"message": FAILED + "invalid token"})
    async with httpx.AsyncClient(timeout=WAIT) as http:
        poll = Polling(http, server, token=None)
        http.headers["Authorization"] = "Bearer " + sign(claims(aud="x"))
        await poll.handshake()
        assert (await poll.post("40")).text == "ok"
        r = await poll.get()
        assert r.text == "44" + dumps({"message": FAILED + "wrong token audience"})


async def test_metrics_refuse_non_admin_and_forged_tokens(server: Any) -> None:
    """Attack: /metrics with a user token, a tampered (role admin) token, an ``alg: none``
    admin token, an expired admin token. Expected: 401 each; a valid admin token gets 200."""
    now = int(time.time())
    async with httpx.AsyncClient(timeout=WAIT) as http:
        url = server.url + "/metrics"
        for token in (
            sign(claims()),
            tampered(),
            alg_none(claims(role="admin")),
            sign(claims(role="admin", iat=now - 7200, exp=now - 3600)),
        ):
            r = await http.get(url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, token
        r = await http.get(url, headers={"Authorization": "Bearer " + sign(claims(role="admin"))})
        assert r.status_code == 200


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_tokens_never_reach_the_logs(
    server_factory: Callable[..., Any], tmp_path: Path, log_format: str
) -> None:
    """Attack surface: tokens sent in ``?token=`` (polling and both WebSocket paths), in
    ``Authorization: Bearer``, in ``auth.token``, refused and accepted, with the server at
    ``--log-level debug``, in JSON and text logs; plus requests that make the server log
    (malformed packets, a refused upgrade). Expected: the server logged those requests, and
    no token string appears anywhere in its stderr."""
    srv = product(server_factory, tmp_path, "--log-level", "debug", "--log-format", log_format)
    good = sign(claims(sub="logged-user"))
    bad = sign(claims(aud="nobody"))
    opaque = "opaque-secret-token-value-7f3a9c"  # not JWT-shaped: only the query rule hides it
    tokens = [good, bad, opaque]
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for token in tokens:
            poll = Polling(http, srv, token=token)
            await poll.handshake()
            if token == good:
                await poll.connect()
            await poll.post('42["x",')  # malformed: logged by the server
            r = await http.get(srv.url + PATH, params={"EIO": "9", "token": token})
            assert r.status_code == 400
            r = await http.get(
                srv.url + "/api/does-not-exist", headers={"Authorization": f"Bearer {token}"}
            )
        for token in tokens:
            for path in ("native", "asgi"):
                async with raw_conn(srv) as conn:
                    if path == "asgi":
                        await conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        assert (await conn.response())[0] == 200
                    query = f"EIO=4&transport=websocket&token={token}"
                    await conn.send(upgrade_head(srv, query, keep_alive=path == "asgi"))
                    assert (await conn.response())[0] == 101
                    await conn.text()
                    await conn.send_text("40" + dumps({"token": token}))
                    await conn.text()
                    await conn.send_text("4abc")  # malformed: logged, connection closed
                    await conn.close_code()
    srv.stop()
    logged = srv.stderr()
    assert "closing" in logged or "parse" in logged, logged[-2000:]  # the attacks were logged
    for token in tokens:
        assert token not in logged
        for part in token.split("."):
            if len(part) > 20:
                assert part not in logged, part
