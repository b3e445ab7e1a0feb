"""Who a cluster node is and how patient it is."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

TAG_ALPHABET = string.ascii_letters + string.digits
TAG_LENGTH = 6  # as Node's adapter uids; also the prefix of this node's Engine.IO sids


def new_tag() -> str:
    return "".join(secrets.choice(TAG_ALPHABET) for _ in range(TAG_LENGTH))


def owner_tag(sid: str) -> str:
    """The tag of the node that owns an Engine.IO session (its sid starts with it)."""
    return sid[:TAG_LENGTH]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    redis_url: str
    node_id: str  # for people: logs, /health
    tag: str  # for the wire: adapter uid, sid prefix, registry key
    advertise_url: str  # how the other nodes reach this one (forwarded polling, upgrades)
    prefix: str = "socket.io"  # the Node adapter's `key`
    request_timeout_seconds: float = 5.0
    lease_seconds: float = 10.0
    probe_interval_seconds: float = 2.0
    reconnect_max_seconds: float = 5.0
    publish_queue_max_messages: int = 10_000
    requests_in_flight_max: int = 256  # answers to other nodes being worked on at once
