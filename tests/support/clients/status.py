"""What a running server reports about itself: ``/health`` and ``/metrics`` (trio tests)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.tokens import interop_token
from tests.support.waiting import wait_until

WAIT = 5.0
#: an admin of the interop server, for its /metrics
ADMIN = interop_token("admin", "admin")


async def health(server: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        r = await http.get(server.url + "/health")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data


async def wait_connections(server: Any, expected: int, timeout: float = WAIT) -> None:
    """Until /health counts ``expected`` Engine.IO sessions (bounded poll of a condition)."""
    seen = None

    async def counted() -> bool:
        nonlocal seen
        seen = (await health(server))["connections"]
        return bool(seen == expected)

    await wait_until(
        counted, timeout, message=lambda: f"/health counts {seen} sessions, expected {expected}"
    )


_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


async def metrics(server: Any, token: str = ADMIN) -> dict[str, float]:
    """GET /metrics (admin JWT) as {'name{labels}': value}."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        r = await http.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in _SAMPLE.finditer(r.text)}
