"""Fixtures for the Engine.IO v4 / Socket.IO v5 protocol conformance suite.

The suite talks to a *conformance server* (see docs/protocol.md, "The conformance server")
over raw HTTP and raw WebSocket frames.  By default the server is the project's own
``tests/support/servers/conformance_server.py``; set ``CONFORMANCE_SERVER_CMD`` to run the suite
against another implementation, e.g. the Node.js reference::

    CONFORMANCE_SERVER_CMD="node /tmp/refserver/server.js" .venv/bin/pytest -q tests/conformance

``--mode engineio|socketio --port N`` are appended to the command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.processes import REPO_ROOT, free_port, wait_for_port
from tests.support.servers import CONFORMANCE_SERVER

STARTUP_TIMEOUT = 15.0


def _server_command(mode: str, port: int, websocket_path: str) -> list[str]:
    override = os.environ.get("CONFORMANCE_SERVER_CMD", "").strip()
    if override:
        base = shlex.split(override)
    else:
        base = [sys.executable, CONFORMANCE_SERVER]
        if websocket_path == "asgi":
            base.append("--asgi-only")
    return [*base, "--mode", mode, "--port", str(port)]


def _run_server(mode: str, websocket_path: str) -> Iterator[str]:
    port = free_port()
    cmd = _server_command(mode, port, websocket_path)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(
            port, STARTUP_TIMEOUT, alive=lambda: proc.poll() is None, what="the conformance server"
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Every test runs against both WebSocket paths of the server: the native trio path (the default)
# and the ASGI route through Quart/Hypercorn (``--asgi-only``). Against an external server
# (CONFORMANCE_SERVER_CMD) the two runs are the same server twice.
WEBSOCKET_PATHS = ["native", "asgi"]


@pytest.fixture(scope="session", params=WEBSOCKET_PATHS)
def engineio_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a conformance server in ``--mode engineio`` (echo at /engine.io/)."""
    yield from _run_server("engineio", request.param)


@pytest.fixture(scope="session", params=WEBSOCKET_PATHS)
def socketio_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a conformance server in ``--mode socketio`` (at /socket.io/)."""
    yield from _run_server("socketio", request.param)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A fresh HTTP client per test (no connection reuse across tests)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client
