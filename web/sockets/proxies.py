"""Which address a request comes from, when a reverse proxy may stand in front of us.

Every per-address limit (``max_connections_per_ip``, the chat handshake limits, the ingest rate)
and the chat monitoring use the *client* address. Behind nginx or a load balancer the TCP peer is
the proxy, so the client is in ``X-Forwarded-For``; but anyone can send that header, so it is
believed only from peers listed in ``trusted_proxies`` (addresses or CIDR networks; empty by
default: never). As in Express's ``trust proxy`` and uvicorn's ``forwarded_allow_ips``, the list
is walked from the right: each hop a trusted proxy added is skipped, and the first address no
trusted proxy vouches for is the client. A malformed entry ends the walk at the last trusted
hop, so a client cannot hide behind garbage.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Headers(Protocol):
    def get(self, key: str) -> str | None: ...


class HttpRequest(Protocol):
    """What a Quart ``request`` or ``websocket`` offers here."""

    @property
    def remote_addr(self) -> str | None: ...

    @property
    def headers(self) -> Headers: ...


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.1", "192.168.0.0/16", "::1"]`` -> networks; ValueError names a bad entry."""
    networks: list[Network] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR network") from None
    return tuple(networks)


class TrustedProxies:
    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks = parse_networks(entries)

    def trusts(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_of(self, request: HttpRequest) -> str:
        """The client address of a Quart request or WebSocket."""
        return self.client_address(
            request.remote_addr or "", request.headers.get("X-Forwarded-For")
        )

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client behind ``peer`` (the TCP peer address) given its ``X-Forwarded-For``."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break
            client = hop
            if not self.trusts(hop):
                break
        return client
