"""``anonymous_dashboards`` has one meaning: without a token a dashboard is let in, but a token
that is given must be valid, on ``GET /api/metrics/*`` and ``/ws/metrics`` alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import socketio

from tests.web.apps.analytics.conftest import WAIT, Switchboard, run, token


def test_a_bad_token_is_refused_even_with_anonymous_dashboards(
    switchboard: Callable[..., Switchboard],
) -> None:
    server = switchboard("--anonymous-dashboards", "true")
    for path in ("/api/metrics/dashboard", "/api/metrics/live"):
        anonymous = httpx.get(server.url + path, timeout=WAIT)
        assert anonymous.status_code == 200, anonymous.text
        bad = httpx.get(server.url + path, headers={"Authorization": "Bearer x.y.z"}, timeout=WAIT)
        assert bad.status_code == 401
        assert bad.json() == {"success": False, "message": "Authentication failed: invalid token"}
        assert bad.headers["access-control-allow-origin"] == "*"
        good = httpx.get(
            server.url + path, headers={"Authorization": f"Bearer {token()}"}, timeout=WAIT
        )
        assert good.status_code == 200, good.text

    async def attempt(**kw: Any) -> str | None:
        client = socketio.AsyncClient(reconnection=False)
        errors: list[Any] = []
        client.on("connect_error", errors.append, namespace="/ws/metrics")
        try:
            await client.connect(
                server.url,
                namespaces=["/ws/metrics"],
                transports=["websocket"],
                wait_timeout=5,
                **kw,
            )
        except socketio.exceptions.ConnectionError:
            return str(errors[0]["message"]) if errors else "no connect_error"
        await client.disconnect()
        return None

    async def scenario() -> None:
        assert await attempt() is None
        assert await attempt(auth={"token": "nope"}) == "Authentication failed: invalid token"
        assert await attempt(auth={"token": token()}) is None

    run(scenario())
