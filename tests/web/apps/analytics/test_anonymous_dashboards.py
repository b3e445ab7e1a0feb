"""``anonymous_dashboards`` has one meaning: without a token a dashboard is let in, but a token
that is given must be valid, on ``GET /api/metrics/*`` and ``/ws/metrics`` alike."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import httpx

from tests.support.clients.analytics import WAIT, Switchboard, metrics_refusal, token
from tests.support.clients.scenarios import run


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

    attempt = partial(metrics_refusal, server.url)

    async def scenario() -> None:
        assert await attempt() is None
        assert await attempt(auth={"token": "nope"}) == "Authentication failed: invalid token"
        assert await attempt(auth={"token": token()}) is None

    run(scenario)
