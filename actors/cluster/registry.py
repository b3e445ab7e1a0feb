"""The nodes of a cluster: each holds a lease in Redis, renewed while it lives.

A node writes ``<prefix>-node#<tag>`` with its :class:`NodeInfo` and an expiry of
``lease_seconds``, and renews it three times per lease; a node that dies (SIGKILL, a lost
machine) stops renewing and drops out within one lease. Every node keeps a copy of the list,
refreshed as often as it renews, so a lookup (whom to wait for, where to forward a session) is a
dictionary read.
"""

from __future__ import annotations

import logging
import time

import coredis
import msgspec

log = logging.getLogger("switchboard.cluster")


class NodeInfo(msgspec.Struct, frozen=True):
    tag: str
    node_id: str
    advertise_url: str
    started_at: float
    pid: int


class NodeRegistry:
    def __init__(self, prefix: str, me: NodeInfo, lease_seconds: float) -> None:
        self.prefix = prefix
        self.me = me
        self.lease_ms = int(lease_seconds * 1000)
        self.nodes: dict[str, NodeInfo] = {me.tag: me}
        self.refreshed_at = 0.0  # time.monotonic() of the last good refresh
        self.renewals = 0
        self.lost_leases = 0  # times our lease had expired when we came to renew it

    def key(self, tag: str) -> str:
        return f"{self.prefix}-node#{tag}"

    def alive(self, tag: str) -> NodeInfo | None:
        return self.nodes.get(tag)

    def others(self) -> list[NodeInfo]:
        return [n for tag, n in self.nodes.items() if tag != self.me.tag]

    async def renew(self, client: coredis.Redis[bytes]) -> None:
        kept = await client.set(
            self.key(self.me.tag),
            msgspec.json.encode(self.me),
            px=self.lease_ms,
            condition=coredis.PureToken.XX,
        )
        if not kept:  # expired (a long pause, a Redis restart): register again
            if self.renewals:
                self.lost_leases += 1
                log.warning("cluster: our lease had lapsed; registering again")
            await client.set(self.key(self.me.tag), msgspec.json.encode(self.me), px=self.lease_ms)
        self.renewals += 1

    async def refresh(self, client: coredis.Redis[bytes]) -> None:
        keys = [key async for key in client.scan_iter(match=self.key("*"), count=1000)]
        values = await client.mget(keys) if keys else ()
        nodes = {self.me.tag: self.me}
        for raw in values:
            if raw is None:
                continue
            try:
                info = msgspec.json.decode(raw, type=NodeInfo)
            except msgspec.MsgspecError:
                log.warning("cluster: a registry entry is not a node; ignored")
                continue
            nodes[info.tag] = info
        gone = set(self.nodes) - set(nodes)
        joined = set(nodes) - set(self.nodes)
        if gone or joined:
            log.info("cluster: nodes joined %s, gone %s", sorted(joined), sorted(gone))
        self.nodes = nodes
        self.refreshed_at = time.monotonic()

    async def withdraw(self, client: coredis.Redis[bytes]) -> None:
        """A graceful stop: leave the registry at once instead of at the lease's end."""
        await client.delete([self.key(self.me.tag)])
