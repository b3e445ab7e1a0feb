"""Node's socket.io-client (4.8.1, tests/node_modules) against the interop server.

Each test runs one scenario of ``tests/node/interop_client.js`` and checks the JSON it prints:
connect, auth failures (``err.message``), acks both ways, binary both ways, two namespaces on one
connection (Manager multiplexing), rooms; over WebSocket, long-polling and polling upgraded to
WebSocket, on the native path and on the ASGI-only server.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from dataclasses import replace
from typing import Any

import pytest
import socketio

from tests.support.clients.interop import Target
from tests.support.processes import NODE_DIR, TESTS_DIR, node_client
from tests.support.tokens import forged, interop_token

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (TESTS_DIR / "node_modules" / "socket.io-client").is_dir(),
        reason="socket.io-client not installed (cd tests && npm ci)",
    ),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

BLOB_HEX = bytes(i % 256 for i in range(300)).hex()
token = replace(interop_token, sub="nina")


PARSERS = ["json", "msgpack"]  # socket.io-parser, socket.io-msgpack-parser: one server, both


@pytest.fixture(params=PARSERS)
def cfg(target: Target, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each scenario against each target, with each parser."""
    return {**target.node_config(), "parser": request.param}


def run_node(cfg: dict[str, Any], scenario: str, **extra: Any) -> dict[str, Any]:
    result = node_client("interop_client.js", {**cfg, "scenario": scenario, **extra})
    assert result["ok"], result
    return result


def test_basic_acks_and_binary(cfg: dict[str, Any]) -> None:
    r = run_node(cfg, "basic", token=token("nina", "admin"))
    assert r["transport"] == cfg["expectTransport"]
    assert r["finalTransport"] == cfg["expectTransport"]
    assert isinstance(r["sid"], str) and r["sid"]
    assert r["echo"] == ["hello", 1, {"a": [True, None, 2.5]}, "ünïcødé ✓ 🚀"]
    assert r["whoami"] == {"user_id": "nina", "name": "nina", "role": "admin", "namespace": "/"}
    expected_binary = [{"$bin": BLOB_HEX}, {"nested": {"$bin": "00ff"}}]
    assert r["binaryAck"] == expected_binary
    assert r["binaryBack"] == expected_binary
    assert r["askAck"] == [{"ok": True}]
    assert r["answer"] == ["got", "ping?", 42]
    assert r["answerTimeouts"] == 0


def test_two_namespaces_share_one_connection(cfg: dict[str, Any]) -> None:
    r = run_node(cfg, "multiplex", token=token("max", "bot"))
    assert r["sameManager"] is True
    assert r["engineCount"] == 1
    assert r["sids"][0] != r["sids"][1]
    assert r["transport"] == cfg["expectTransport"]
    assert r["root"] == {"user_id": "max", "name": "max", "role": "bot", "namespace": "/"}
    assert r["admin"] == {**r["root"], "namespace": "/admin"}
    assert r["echoAfter"] == ["still here"]
    assert r["engineOpen"] == "open"


def test_rooms_broadcast(cfg: dict[str, Any]) -> None:
    """With MessagePack, the room holds a JSON client and MessagePack clients: one broadcast,
    encoded once per parser, reaches both kinds."""
    parsers = ["json", "msgpack", "msgpack"] if cfg["parser"] == "msgpack" else None
    r = run_node(cfg, "rooms", tokens=[token("a"), token("b"), token("c")], parsers=parsers)
    assert r["distinctEngines"] == 3
    assert r["joins"] == [
        {"ok": True, "room": "red"},
        {"ok": True, "room": "red"},
        {"ok": True, "room": "blue"},
    ]
    assert r["newsA"] == r["newsB"] == [1, "x", {"y": None}]
    assert r["markerC"] == ["m1"]
    assert r["newsAtC"] == 0, "a non-member received a room broadcast"
    assert r["othersB"] == ["o"]
    assert r["markerA"] == ["m2"]
    assert r["othersAtA"] == 0, "bcast-others reached the sender"
    assert r["blobA"] == r["blobB"] == [{"$bin": "010203"}]
    assert r["leave"] == {"ok": True, "room": "red"}
    assert r["lateA"] == []
    assert r["markerB"] == ["m3"]
    assert r["lateAtB"] == 0, "a client that left the room still received its broadcast"
    assert r["lateAtC"] == 0


@pytest.fixture
def auth_cfg(auth_target: Target) -> dict[str, Any]:
    return auth_target.node_config()


EXPIRED = token.expired("old")
FORGED = forged("mallory")


@pytest.mark.parametrize(
    ("tok", "message"),
    [
        (None, "Authentication failed: no token provided"),
        ("not.a.jwt", "Authentication failed: invalid token"),
        (FORGED, "Authentication failed: invalid token"),
        (EXPIRED, "Authentication failed: token expired"),
    ],
    ids=["no-token", "garbage-token", "bad-signature", "expired"],
)
def test_auth_failure(auth_cfg: dict[str, Any], tok: str | None, message: str) -> None:
    extra = {} if tok is None else {"token": tok}
    r = run_node(auth_cfg, "auth", **extra)
    assert r["root"] == {"message": message, "data": None}
    assert r["admin"] == {"message": message, "data": None}


def test_token_in_query_and_bearer_header(native_server: Any) -> None:
    base = {"url": native_server.url, "expectTransport": "websocket"}
    q = run_node(
        {**base, "transports": ["websocket"], "query": {"token": token("q")}}, "basic", token=None
    )
    assert q["whoami"]["user_id"] == "q"
    # extraHeaders work over polling in Node (and on the WebSocket upgrade request)
    h = run_node(
        {
            **base,
            "transports": ["polling"],
            "expectTransport": "polling",
            "extraHeaders": {"Authorization": f"Bearer {token('h')}"},
        },
        "basic",
        token=None,
    )
    assert h["whoami"]["user_id"] == "h"


class NodeMember:
    """A Node client kept running: joins a room, reports it, then waits for one event."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            ["node", str(NODE_DIR / "interop_client.js"), json.dumps(cfg)],
            cwd=TESTS_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the Node client printed nothing in time") from None
        assert line is not None, f"the Node client exited: {self.proc.stderr.read()}"  # type: ignore[union-attr]
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("node_transport", ["websocket", "polling"])
def test_python_client_broadcasts_to_node_client(native_server: Any, node_transport: str) -> None:
    """Cross-client interop: Python's AsyncClient sends binary to a room a Node client is in."""
    import asyncio

    member = NodeMember(
        {
            "scenario": "member",
            "url": native_server.url,
            "token": token("node"),
            "transports": [node_transport],
            "room": "mixed",
            "waitFor": "hello",
            "timeoutMs": 15000,
        }
    )
    try:
        joined = member.next_line()
        assert joined["joined"] == {"ok": True, "room": "mixed"}

        async def python_side() -> None:
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(
                native_server.url,
                auth={"token": token("py")},
                transports=["websocket"],
                wait_timeout=5,
            )
            try:
                ack = await sio.call(
                    "bcast",
                    {"room": "mixed", "event": "hello", "args": ["from python", b"\x00\x01"]},
                    timeout=5,
                )
                assert ack == {"ok": True}
            finally:
                await sio.disconnect()

        asyncio.run(asyncio.wait_for(python_side(), 15))
        final = member.next_line()
        assert final == {"ok": True, "received": ["from python", {"$bin": "0001"}]}
    finally:
        member.close()
