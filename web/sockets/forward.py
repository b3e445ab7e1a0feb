"""Long-polling without sticky sessions: a request for another node's session goes to that node.

Behind a round-robin load balancer a polling client's requests land on any node, but its
Engine.IO session lives on one (the node whose tag starts the sid). A node that gets a request
for a session of another node alive in the registry forwards it there and relays the answer:
polling requests over HTTP (:class:`PollingForwarder`), WebSocket upgrades by splicing the
connection to the owner (:func:`splice_upgrade`) or, for an upgrade that arrived through the ASGI
route, by relaying its messages (:func:`relay_websocket`). A forwarded request carries
``X-Switchboard-Hop`` (it is never forwarded again: no loops) and the client's address in
``X-Forwarded-For``. An owner that is gone, or that cannot be reached, means the session is gone:
the client gets Engine.IO's ``400 {"code":1,"message":"Session ID unknown"}`` and starts over.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import trio
import trio_websocket

from actors.cluster.broker import ClusterBroker
from actors.cluster.config import owner_tag
from actors.cluster.registry import NodeInfo

log = logging.getLogger("switchboard.forward")

HOP_HEADER = "x-switchboard-hop"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
)
SPLICE_CHUNK_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Forwarded:
    status: int
    body: bytes
    headers: dict[str, str]


async def owner_of(
    cluster: ClusterBroker | None, sid: str | None, headers: Mapping[str, str]
) -> NodeInfo | None:
    """The node to forward to: another live node that owns ``sid``; None to serve it here (ours,
    no cluster, already forwarded once, or an owner that is gone)."""
    if cluster is None or not sid or HOP_HEADER in headers:
        return None
    tag = owner_tag(sid)
    if tag == cluster.tag:
        return None
    return await cluster.find_node(tag)


def forwarded_for(headers: Mapping[str, str], client: str) -> str:
    earlier = headers.get("x-forwarded-for")
    return f"{earlier}, {client}" if earlier else client


class PollingForwarder:
    """Relays polling requests to the nodes that own their sessions (one pooled client)."""

    def __init__(self, cluster: ClusterBroker, long_poll_seconds: float) -> None:
        self.cluster = cluster
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(long_poll_seconds + 10.0, connect=2.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )

    async def forward(
        self,
        owner: NodeInfo,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: bytes,
        client_address: str,
    ) -> Forwarded | None:
        """The owner's answer, or None when it cannot be reached (the session is gone)."""
        sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k != "content-length"}
        sent[HOP_HEADER] = self.cluster.tag
        sent["x-forwarded-for"] = forwarded_for(headers, client_address)
        self.cluster.stats.forwarded_polling += 1
        try:
            answer = await self.client.request(
                method, owner.advertise_url + path_and_query, headers=sent, content=body
            )
        except httpx.HTTPError as err:
            self.cluster.stats.owner_unreachable += 1
            log.info("forward to %s failed: %r", owner.node_id, err)
            return None
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        kept.pop("content-length", None)
        return Forwarded(answer.status_code, answer.content, kept)

    async def aclose(self) -> None:
        await self.client.aclose()


def add_headers(head: bytes, extra: Mapping[str, str]) -> bytes:
    """A request head (ending in CRLF CRLF) with ``extra`` header lines added."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in extra.items()).encode("latin-1")
    return head[:-2] + lines + b"\r\n"


async def splice_upgrade(
    sock: stdlib_socket.socket,
    head: bytes,
    rest: bytes,
    owner: NodeInfo,
    cluster: ClusterBroker,
    client_address: str,
    headers: Mapping[str, str],
) -> bool:
    """Hand a WebSocket upgrade (already read: ``head`` and ``rest``) to its owner and copy the
    bytes both ways until either side ends. False when the owner cannot be reached."""
    url = urlsplit(owner.advertise_url)
    try:
        upstream = await trio.open_tcp_stream(url.hostname or "127.0.0.1", url.port or 80)
    except OSError:
        cluster.stats.owner_unreachable += 1
        return False
    cluster.stats.forwarded_upgrades += 1
    extra = {HOP_HEADER: cluster.tag, "x-forwarded-for": forwarded_for(headers, client_address)}
    client = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    async with client, upstream:
        await upstream.send_all(add_headers(head, extra) + rest)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_copy, client, upstream, nursery.cancel_scope)
            nursery.start_soon(_copy, upstream, client, nursery.cancel_scope)
    return True


async def _copy(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        while data := await source.receive_some(SPLICE_CHUNK_BYTES):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        done.cancel()


class MessageSocket(Protocol):
    """What the relay needs of the accepted (Quart) WebSocket."""

    async def receive(self) -> str | bytes | None: ...

    async def send(self, data: str | bytes) -> None: ...


async def relay_websocket(
    ws: MessageSocket,
    owner: NodeInfo,
    path_and_query: str,
    cluster: ClusterBroker,
    client_address: str,
    headers: Mapping[str, str],
) -> bool:
    """Relay an accepted WebSocket's messages to and from its owner (an upgrade that came
    through the ASGI route). False when the owner cannot be reached."""
    url = urlsplit(owner.advertise_url)
    scheme = "wss" if url.scheme == "https" else "ws"
    target = f"{scheme}://{url.netloc}{path_and_query}"
    forwarded = forwarded_for(headers, client_address)
    extra = [(HOP_HEADER.encode(), cluster.tag.encode()), (b"x-forwarded-for", forwarded.encode())]
    cluster.stats.forwarded_upgrades += 1
    try:
        async with trio_websocket.open_websocket_url(target, extra_headers=extra) as upstream:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_to_owner, ws, upstream, nursery.cancel_scope)
                nursery.start_soon(_from_owner, upstream, ws, nursery.cancel_scope)
    except (OSError, trio_websocket.HandshakeError):
        cluster.stats.owner_unreachable += 1
        return False
    return True


async def _to_owner(
    ws: MessageSocket, upstream: trio_websocket.WebSocketConnection, done: trio.CancelScope
) -> None:
    try:
        while True:
            message = await ws.receive()
            await upstream.send_message(b"" if message is None else message)
    except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, OSError):
        pass
    finally:
        done.cancel()


async def _from_owner(
    upstream: trio_websocket.WebSocketConnection, ws: MessageSocket, done: trio.CancelScope
) -> None:
    try:
        while True:
            await ws.send(await upstream.get_message())
    except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, OSError):
        pass
    finally:
        done.cancel()
