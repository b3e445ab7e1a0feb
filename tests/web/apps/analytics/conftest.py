"""Fixtures for the analytics end-to-end tests: a real ``switchboard serve`` on a free port.

:class:`Switchboard` reuses the generic :class:`tests.conftest.ServerProcess` (stdout watched for
the ready line, stderr kept for failure reports) with the real CLI as its command. The test clock
is on, so tests move time with ``POST /api/test/clock`` instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.conftest import ServerProcess, server_pool
from web.platform.auth import Authenticator

SECRET = "analytics-test-secret-0123456789abcdef"
AUTH = Authenticator(SECRET)
WAIT = 10.0
SERVE = ["-m", "web.cli"]


def token(sub: str = "admin", role: str = "admin") -> str:
    return AUTH.issue(sub, role=role, ttl_seconds=90 * 86400)  # outlives clock moves


def iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Switchboard(ServerProcess):
    """``python -m web.cli serve`` with a data folder, a fixed JWT secret and the test clock."""

    def __init__(self, data_dir: Path, *flags: str, port: int | None = None) -> None:
        super().__init__("web.cli", *flags, port=port, ready_marker="Switchboard listening on")
        self.data_dir = data_dir

    @property
    def command(self) -> list[str]:
        return [
            self.python,
            *SERVE,
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--jwt-secret",
            SECRET,
            "--test-clock",
            "true",
            *self.args,
        ]

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

    def advance(self, seconds: float) -> float:
        """Move the server's clock forward; returns its offset from real time."""
        answer = httpx.post(
            self.url + "/api/test/clock", json={"advance_seconds": seconds}, timeout=WAIT
        )
        assert answer.status_code == 200, answer.text
        return float(answer.json()["offset_seconds"])

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def _servers(folder: Path) -> contextlib.AbstractContextManager[Callable[..., Switchboard]]:
    numbers = itertools.count()

    def build(*flags: str, data_dir: Path | None = None) -> Switchboard:
        return Switchboard(data_dir or folder / f"data{next(numbers)}", *flags)

    return server_pool(build)


@pytest.fixture
def switchboard(tmp_path: Path) -> Iterator[Callable[..., Switchboard]]:
    """``switchboard(*flags, data_dir=None)`` -> a started server, stopped after the test."""
    with _servers(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_switchboard(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Switchboard]]:
    """Like ``switchboard``, for servers shared by a module's tests."""
    with _servers(tmp_path_factory.mktemp("analytics")) as start:
        yield start


class Client:
    """A python-socketio AsyncClient recording every event per (namespace, name) in order."""

    def __init__(self, url: str, namespace: str = "/") -> None:
        self.url = url
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._changed = asyncio.Event()
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        self.received[event].append(args[0] if len(args) == 1 else list(args))
        self._changed.set()

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
        deadline = time.monotonic() + WAIT
        seen = after
        while True:
            items = self.received[event]
            while seen < len(items):
                if predicate(items[seen]):
                    return items[seen]
                seen += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching {event!r} within {WAIT}s: {items[-3:]!r}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def disconnect(self) -> None:
        await self.sio.disconnect()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
