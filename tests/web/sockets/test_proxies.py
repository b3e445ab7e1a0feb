"""Client addresses behind reverse proxies: the rule (no sockets), then on a live server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.clients.raw import PATH, WAIT, raw_conn, upgrade_head
from tests.support.processes import interop
from web.sockets.proxies import TrustedProxies, parse_networks

PROXIES = TrustedProxies(["10.0.0.1", "192.168.0.0/16", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", None, "203.0.113.9"),  # no header: the peer
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.1", "198.51.100.7", "198.51.100.7"),  # trusted proxy names the client
        ("10.0.0.1", "198.51.100.7, 192.168.4.4", "198.51.100.7"),  # two trusted hops
        ("10.0.0.1", "1.1.1.1, 198.51.100.7", "198.51.100.7"),  # spoofed left part ignored
        ("10.0.0.1", "garbage, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.1", "198.51.100.7, garbage", "10.0.0.1"),  # nothing trusted vouches further
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("10.0.0.2", "198.51.100.7", "10.0.0.2"),
    ],
)
def test_the_client_is_the_first_hop_no_trusted_proxy_added(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert PROXIES.client_address(peer, forwarded_for) == client


def test_nothing_is_trusted_by_default() -> None:
    assert TrustedProxies().client_address("127.0.0.1", "198.51.100.7") == "127.0.0.1"


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError) as refused:
        parse_networks(["10.0.0.1", "10.0.0.300"])
    assert str(refused.value) == "'10.0.0.300' is not an IP address or CIDR network"


async def _handshake(
    server: Any, forwarded_for: str, transport: str, held: contextlib.AsyncExitStack
) -> int:
    """Open an Engine.IO session from a client that claims ``forwarded_for`` and keep it open
    until ``held`` closes; returns the HTTP status."""
    if transport == "polling":  # a polling session stays open until its heartbeat lapses
        http = await held.enter_async_context(httpx.AsyncClient(timeout=WAIT))
        params = {"EIO": "4", "transport": "polling"}
        headers = {"X-Forwarded-For": forwarded_for}
        return (await http.get(server.url + PATH, params=params, headers=headers)).status_code
    conn = await held.enter_async_context(raw_conn(server))
    asgi = transport == "websocket-asgi"  # an upgrade after a first request: the ASGI route
    if asgi:
        await conn.send(f"GET /health HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        assert (await conn.response())[0] == 200
    extra = f"X-Forwarded-For: {forwarded_for}\r\n"
    head = upgrade_head(server, "EIO=4&transport=websocket", extra=extra, keep_alive=asgi)
    await conn.send(head)
    return (await conn.response())[0]


@pytest.mark.parametrize("transport", ["polling", "websocket", "websocket-asgi"])
async def test_per_address_limits_count_clients_behind_a_trusted_proxy(
    server_factory: Callable[..., Any], transport: str
) -> None:
    """Every test connection comes from 127.0.0.1: trusted, it is a proxy for many clients
    (each gets its own session allowance); untrusted, the header changes nothing."""
    opened = 200 if transport == "polling" else 101
    behind = interop(server_factory, "max_connections_per_ip=1", "trusted_proxies=127.0.0.1")
    exposed = interop(server_factory, "max_connections_per_ip=1")
    async with contextlib.AsyncExitStack() as held:
        assert await _handshake(behind, "198.51.100.1", transport, held) == opened
        assert await _handshake(behind, "198.51.100.2", transport, held) == opened
        assert await _handshake(behind, "198.51.100.1", transport, held) == 403

        assert await _handshake(exposed, "198.51.100.1", transport, held) == opened
        assert await _handshake(exposed, "198.51.100.2", transport, held) == 403
