"""Fixtures for the Engine.IO v4 / Socket.IO v5 protocol conformance suite.

The suite talks to a *conformance server* (see docs/protocol.md, "The conformance server")
over raw HTTP and raw WebSocket frames.  By default the server is the project's own
``tests/conformance_server.py``; set ``CONFORMANCE_SERVER_CMD`` to run the suite against another
implementation, e.g. the Node.js reference::

    CONFORMANCE_SERVER_CMD="node /tmp/refserver/server.js" .venv/bin/pytest -q tests/conformance

``--mode engineio|socketio --port N`` are appended to the command.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.waiting import POLL_INTERVAL_SECONDS


def _repo_root() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise RuntimeError("cannot find the repository root (no pyproject.toml above tests/)")


REPO_ROOT = _repo_root()
STARTUP_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(mode: str, port: int, websocket_path: str) -> list[str]:
    override = os.environ.get("CONFORMANCE_SERVER_CMD", "").strip()
    if override:
        base = shlex.split(override)
    else:
        base = [sys.executable, "tests/conformance_server.py"]
        if websocket_path == "asgi":
            base.append("--asgi-only")
    return [*base, "--mode", mode, "--port", str(port)]


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"conformance server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"conformance server did not accept TCP connections on port {port} "
                    f"within {timeout}s"
                ) from None
            time.sleep(POLL_INTERVAL_SECONDS)  # retry interval of the bounded readiness poll


def _run_server(mode: str, websocket_path: str) -> Iterator[str]:
    port = _free_port()
    cmd = _server_command(mode, port, websocket_path)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_until_listening(proc, port, STARTUP_TIMEOUT)
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
