"""The conformance suite's settings and raw clients (tests/support/clients/raw.py, bounded by
the suite's ``WAIT``).

Nothing here implements the protocol "for" the tests: the helpers only move exact strings and
bytes over HTTP long-polling and WebSocket frames, answer server PINGs where asked to, and enforce
timeouts so that every wait is bounded (``trio.fail_after``), never a bare sleep.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.clients import raw
from tests.support.clients.raw import parse_open_packet

# Conformance server configuration (docs/protocol.md, "Conformance server").
PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT = 1.0

EIO_PATH = "/engine.io/"
SIO_PATH = "/socket.io/"

# "At once": far below pingInterval + pingTimeout (500 ms), so a close caused by the offending
# packet cannot be confused with a close caused by the heartbeat.
AT_ONCE = 0.1
# Slack allowed for timers: a timer may fire a little early (clock granularity) or late (load).
EARLY = 0.03
LATE = 0.1
# Upper bound for waiting for something that should come promptly.
WAIT = 2.0

_cmd = shlex.split(os.environ.get("CONFORMANCE_SERVER_CMD", ""))
#: True when the suite runs against the Node.js reference (CONFORMANCE_SERVER_CMD="node ...").
IS_NODE_REFERENCE = bool(_cmd) and os.path.basename(_cmd[0]).startswith("node")


def node_deviation(reason: str) -> pytest.MarkDecorator:
    """docs/protocol.md is the contract; where the Node reference disagrees, the test follows
    docs/protocol.md and is expected to fail only when run against Node."""
    return pytest.mark.xfail(
        IS_NODE_REFERENCE,
        reason=f"Node reference deviates from docs/protocol.md: {reason}",
        strict=False,
    )


def ws_url(base: str, path: str, query: str) -> str:
    assert base.startswith("http://")
    return "ws://" + base[len("http://") :] + path + "?" + query


def check_handshake(info: dict[str, Any], upgrades: list[str]) -> None:
    assert set(info) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}, info
    assert isinstance(info["sid"], str) and info["sid"], info
    assert info["upgrades"] == upgrades, info
    # exact values; ``type is int`` rejects 300.0 / "300" / True
    assert type(info["pingInterval"]) is int and info["pingInterval"] == 300, info
    assert type(info["pingTimeout"]) is int and info["pingTimeout"] == 200, info
    assert type(info["maxPayload"]) is int and info["maxPayload"] == MAX_PAYLOAD, info


# --------------------------------------------------------------------------------------------
# HTTP long-polling


class Polling(raw.Polling):
    """One Engine.IO session over HTTP long-polling, driven with exact request bodies."""

    wait = WAIT


# --------------------------------------------------------------------------------------------
# WebSocket


class WS(raw.WebSocketClient):
    """A raw WebSocket: one Engine.IO packet per frame, text as ``str``, binary as ``bytes``."""

    wait = WAIT

    async def recv_n(self, count: int, timeout: float = WAIT) -> list[str | bytes]:
        with trio.fail_after(timeout):
            return [await self.recv() for _ in range(count)]

    async def expect_closed(self, within: float) -> list[str | bytes]:
        """Wait until the server closes the connection; returns the non-PING frames received
        meanwhile.  Fails if the connection is still open after ``within`` seconds."""
        got: list[str | bytes] = []
        with trio.fail_after(within):
            try:
                while True:
                    message = await self.conn.get_message()
                    self.frames.append(message)
                    if message != "2":
                        got.append(message)
            except ConnectionClosed:
                return got

    async def expect_open_and_quiet(self, duration: float) -> list[str | bytes]:
        """For ``duration`` seconds answer PINGs and collect other frames; fails if closed."""
        got: list[str | bytes] = []
        with trio.move_on_after(duration):
            while True:
                message = await self.conn.get_message()  # ConnectionClosed propagates: a failure
                self.frames.append(message)
                if message == "2":
                    await self.send("3")
                else:
                    got.append(message)
        return got


@asynccontextmanager
async def ws_connect(url: str) -> AsyncIterator[WS]:
    async with open_websocket_url(url, connect_timeout=5, disconnect_timeout=1) as conn:
        yield WS(conn)


@asynccontextmanager
async def eio_ws(base: str, path: str = EIO_PATH, sid: str | None = None) -> AsyncIterator[WS]:
    """WebSocket to the Engine.IO endpoint.  Without ``sid`` the OPEN packet is read and checked
    and kept in ``ws.open_info``; with ``sid`` (an upgrade) nothing is read."""
    query = "EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")
    # ``ws.requested_at``: when the connection was asked for; the server arms its timers after
    # it, so "not earlier than" checks measure from here (OPEN's arrival may lag behind)
    requested_at = trio.current_time()
    async with ws_connect(ws_url(base, path, query)) as ws:
        ws.requested_at = requested_at  # type: ignore[attr-defined]
        if sid is None:
            first = await ws.recv_raw()
            ws.open_info = parse_open_packet(first)  # type: ignore[attr-defined]
        yield ws


def sio_ws(base: str) -> Any:
    return eio_ws(base, SIO_PATH)


async def sio_connect(ws: WS, nsp: str = "/", auth: str = "") -> tuple[str, str]:
    """Send a Socket.IO CONNECT and return (the CONNECT ack, the "auth" event that follows)."""
    prefix = "" if nsp == "/" else nsp + ","
    await ws.send("40" + prefix + auth)
    ack = await ws.recv()
    assert isinstance(ack, str) and ack.startswith("40" + prefix + '{"sid":'), ack
    event = await ws.recv()
    return ack, event


def placeholders(n: int) -> str:
    return ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(n))
