"""The analytics tests' helpers: ``switchboard serve`` with its REST calls, tokens, and a
python-socketio client recording every event it receives.

:class:`Switchboard` is a :class:`~tests.support.processes.ProductServer` (stdout watched for the
ready line, stderr kept for failure reports) with the test clock on, so tests move time with
``server.advance(seconds)`` instead of waiting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import socketio

from tests.support.processes import ProductServer
from tests.support.tokens import ANALYTICS_SECRET, DAY, Tokens
from tests.support.waiting import Changes

WAIT = 10.0

token = Tokens(ANALYTICS_SECRET, sub="admin", role="admin", ttl=90 * DAY)  # outlives clock moves


class Switchboard(ProductServer):
    """``switchboard serve`` with a data folder, the analytics JWT secret and the test clock."""

    def __init__(self, data_dir: Path, *flags: str, port: int | None = None) -> None:
        super().__init__(
            *flags, secret=ANALYTICS_SECRET, data_dir=data_dir, test_clock=True, port=port
        )

    # --- REST helpers --------------------------------------------------------------------------
    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=WAIT, **kw)

    def event(self, body: Any, **kw: Any) -> httpx.Response:
        return self.post("/api/events", body, **kw)

    def batch(self, body: Any, **kw: Any) -> httpx.Response:
        return self.post("/api/events/batch", body, **kw)

    def dashboard(self) -> dict[str, Any]:
        answer = httpx.get(
            self.url + "/api/metrics/dashboard",
            headers={"Authorization": f"Bearer {token()}"},
            timeout=WAIT,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


async def metrics_refusal(base: str, /, **kw: Any) -> str | None:
    """Connect to ``/ws/metrics`` at ``base`` (or ``kw["url"]``); None when accepted, else the
    ``connect_error`` message."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace="/ws/metrics")
    try:
        await client.connect(
            kw.pop("url", base),
            namespaces=["/ws/metrics"],
            transports=["websocket"],
            wait_timeout=5,
            **kw,
        )
    except socketio.exceptions.ConnectionError:
        return str(errors[0]["message"]) if errors else "no connect_error"
    await client.disconnect()
    return None


class Client:
    """A python-socketio AsyncClient recording every event per (namespace, name) in order."""

    def __init__(self, url: str, namespace: str = "/") -> None:
        self.url = url
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._changes = Changes()
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        self.received[event].append(args[0] if len(args) == 1 else list(args))
        self._changes.changed()

    async def connect(self, **kw: Any) -> Client:
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            transports=kw.pop("transports", ["websocket"]),
            wait_timeout=WAIT,
            **kw,
        )
        return self

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, *args, namespace=self.namespace, timeout=WAIT)

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, *args, namespace=self.namespace)

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool] = lambda _: True, after: int = 0
    ) -> Any:
        """The first ``event`` payload (from index ``after``) satisfying ``predicate``."""
        items = self.received[event]
        found: list[Any] = []
        seen = after

        def matched() -> bool:
            nonlocal seen
            while seen < len(items):
                if predicate(items[seen]):
                    found.append(items[seen])
                    return True
                seen += 1
            return False

        await self._changes.until(
            matched, WAIT, lambda: f"no matching {event!r} within {WAIT}s: {items[-3:]!r}"
        )
        return found[0]

    async def disconnect(self) -> None:
        await self.sio.disconnect()
