"""Connection limits per IP (failed/refused handshakes with a block, and the cap on all
handshakes), each on its own server since they block the loopback address; health from the
figures they produce."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support.clients.chat import Client, start_server, token
from tests.support.clients.scenarios import close_all, run

BLOCKED = "Too many connection attempts. Please try again later."
CAPPED = "Too many connections from this address. Please slow down."


async def refusal(server: Any, user: str, tok: str) -> Any:
    client = Client(server, user, tok=tok)
    try:
        await client.connect()
    except Exception:
        pass
    try:
        return await asyncio.wait_for(client.connect_errors.get(), 5)
    finally:
        await client.close()


def test_failed_handshakes_block_the_ip(server_factory: Callable[..., Any]) -> None:
    server = start_server(server_factory)  # defaults: 5 per 300 s, blocked 900 s

    async def scenario() -> None:
        for _ in range(5):
            assert await refusal(server, "eve", "forged") == {
                "message": "Authentication failed: invalid token"
            }
        # the 6th attempt is refused even with a valid token, for the whole block
        assert await refusal(server, "eve", token("eve")) == {"message": BLOCKED}
        server.advance(600)
        assert await refusal(server, "eve", token("eve")) == {"message": BLOCKED}
        server.advance(301)
        roles = ("admin", "user", "user", "user")  # the admin sees the refused IP address
        clients = [await Client(server, f"ok{i}", role=r).connect() for i, r in enumerate(roles)]
        try:
            ops = clients[0]
            events = (await ops.ok("monitoring:events", {"type": "rate_limit"}))["events"]
            assert len(events) == 2 and events[0]["details"]["reason"] == BLOCKED
            assert events[0]["ipAddress"] == "127.0.0.1" and events[0]["socketId"] is None
            metrics = (await ops.ok("monitoring:metrics"))["metrics"]
            assert metrics["failedConnections"] == 7 and metrics["totalConnections"] == 4
            # 7 of 11 attempts failed: critical, and it says why
            health = (await ops.ok("monitoring:health"))["health"]
            assert health["status"] == "critical"
            assert any("Error rate" in issue for issue in health["issues"])
            assert health["recommendations"]
        finally:
            await close_all(*clients)

    run(scenario)


def test_handshake_cap_per_ip(server_factory: Callable[..., Any]) -> None:
    server = start_server(server_factory, "--chat-handshakes-per-ip-per-minute", "3")

    async def scenario() -> None:
        clients = [await Client(server, f"u{i}").connect() for i in range(3)]
        try:
            assert await refusal(server, "u4", token("u4")) == {"message": CAPPED}
            server.advance(61)
            clients.append(await Client(server, "u5").connect())
            health = (await clients[0].ok("monitoring:health"))["health"]
            assert health["status"] == "healthy"  # 1 failure in 5 attempts: under the sample
        finally:
            await close_all(*clients)

    run(scenario)
