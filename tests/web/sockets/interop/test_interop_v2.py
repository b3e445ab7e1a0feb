"""Stock socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4) against the interop server:
the same namespaces, handlers and rooms as 4.x clients, the JWT in the query string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.processes import ServerProcess, node_client
from tests.support.servers import INTEROP_SERVER
from tests.support.tokens import interop_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_a_v2_client_uses_the_same_handlers(native_server: ServerProcess, mode: str) -> None:
    token = interop_token("vera", name="Vera", ttl=600)
    result: dict[str, Any] = node_client(
        "v2_client.js", {"url": native_server.url, "token": token, "transports": TRANSPORTS[mode]}
    )
    assert result["ok"], result
    assert result["echo"] == [1, "two", {"three": [3]}]
    assert result["binaryAck"] == ["010203"]
    assert result["binaryEvent"] == "010203"
    assert result["answer"] == 42
    assert result["mainWho"] == {
        "user_id": "vera",
        "name": "Vera",
        "role": "user",
        "namespace": "/",
    }
    assert result["adminWho"]["namespace"] == "/admin"
    assert result["news"] == "hi"
    # a v2 client computes its socket ids from the Engine.IO id; the server uses the same
    assert result["mainId"] == result["mainEngineId"]
    assert result["adminId"] == f"/admin#{result['adminEngineId']}"
    assert result["transport"] == ("polling" if mode == "polling" else "websocket")


def test_a_v2_client_without_a_token_gets_the_reason(native_server: ServerProcess) -> None:
    result = node_client("v2_client.js", {"url": native_server.url, "transports": ["websocket"]})
    assert result == {
        "ok": True,
        "refused": "Authentication failed: no token provided",
        "_exit_code": 0,
    }


def test_engine_io_v3_can_be_turned_off(server_factory: Callable[..., ServerProcess]) -> None:
    off = server_factory(INTEROP_SERVER, "--set", "allow_eio3=false")
    answer = httpx.get(f"{off.url}/socket.io/?EIO=3&transport=polling")
    assert (answer.status_code, answer.json()) == (
        400,
        {"code": 5, "message": "Unsupported protocol version"},
    )
