"""What the Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5) reads: its events' payloads.

Field names are the UI's (camelCase on the wire). Timestamps travel as ISO 8601 text, which is
what ``new Date()`` becomes in JSON on a Node server.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.sockets.broker import SocketInfo

# The UI's feature flags: which of its screens and buttons work against this server.
COMMANDS = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
AGGREGATED_EVENTS = "AGGREGATED_EVENTS"
ALL_EVENTS = "ALL_EVENTS"


class AdminHandshake(msgspec.Struct):
    address: str
    headers: dict[str, str]
    query: dict[str, str]
    issued: int  # epoch milliseconds
    secure: bool
    time: str
    url: str
    xdomain: bool


class AdminSocket(msgspec.Struct, rename="camel"):
    """One socket as the UI lists it (``SerializedSocket``)."""

    id: str
    client_id: str
    transport: str
    nsp: str
    data: dict[str, Any]
    handshake: AdminHandshake
    rooms: list[str]


class SocketUpdate(msgspec.Struct):
    """``socket_updated``: the fields of a socket that changed (its transport, on upgrade)."""

    id: str
    nsp: str
    transport: str


class NamespaceDetails(msgspec.Struct, rename="camel"):
    name: str
    sockets_count: int


class AggregatedEvent(msgspec.Struct, rename="camel", omit_defaults=True):
    """A count of one kind of traffic over one interval (``rawConnection``, ``bytesIn``...)."""

    timestamp: int  # epoch milliseconds
    type: str
    count: int
    sub_type: str | None = None


class ServerStats(msgspec.Struct, rename="camel"):
    """``server_stats``: one node's figures, sent every interval (the UI's Servers screen)."""

    server_id: str
    hostname: str
    pid: int
    uptime: float  # seconds
    clients_count: int
    polling_clients_count: int
    aggregated_events: list[AggregatedEvent]
    namespaces: list[NamespaceDetails]


class AdminConfig(msgspec.Struct, rename="camel"):
    supported_features: list[str]


def admin_socket(info: SocketInfo, namespace: str) -> AdminSocket:
    """The UI's view of a socket fetched from any node (its ``data._admin`` names the
    connection and transport; the rest of ``data`` is the application's)."""
    data = dict(info.data)
    extra = data.pop("_admin", None)
    client_id = transport = ""
    if isinstance(extra, dict):
        client_id = str(extra.get("clientId", ""))
        transport = str(extra.get("transport", ""))
    hs = info.handshake
    handshake = AdminHandshake(
        hs.address, hs.headers, hs.query, hs.issued, hs.secure, hs.time, hs.url, hs.xdomain
    )
    return AdminSocket(info.id, client_id, transport, namespace, data, handshake, info.rooms)
