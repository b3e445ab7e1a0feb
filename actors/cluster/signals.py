"""The applications' own Redis channels: small notifications between nodes, and a command client.

The Socket.IO broker (:mod:`actors.cluster.broker`) speaks the adapter's format on its channels;
what the applications tell each other (the test clock moved, a log has new rows) goes on channels
of their own, ``<prefix>-app#<name>``, over a second subscription, so nothing here can be
mistaken for a Socket.IO packet by a Node peer. Handlers are registered before the node starts;
each one runs in the subscriber's task, so it must be quick (set a flag, wake a task).

Everything sent here is a hint or a copy: what is true is in PostgreSQL (the logs) or in a Redis
key read again on every reconnect (the clock), so a notification lost while Redis is away only
delays, never loses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from actors.cluster.config import ClusterConfig
from actors.cluster.link import REDIS_ERRORS, RedisLink, client_for

log = logging.getLogger("switchboard.cluster")

SignalHandler = Callable[[bytes], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


class ClusterSignals:
    """A node's application channels (one subscription) and its command client."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.tag = config.tag
        self._handlers: dict[str, SignalHandler] = {}
        self.on_connected: list[Hook] = []  # after every (re)subscription: re-read what is shared
        self.link = RedisLink(
            config,
            channels=[],
            patterns=[],
            probe_channel=f"{config.prefix}-app-probe#{config.tag}#",
            on_message=self._on_message,
            on_connected=self._connected,
        )
        self.client: Any = None  # coredis.Redis[bytes], while running
        self.failed_handlers = 0
        self.ready = trio.Event()  # set once the first subscription's hooks have run

    def key(self, name: str) -> str:
        """A Redis key of this cluster (under the cluster's prefix)."""
        return f"{self.config.prefix}-app#{name}"

    def channel(self, name: str) -> str:
        return f"{self.config.prefix}-app#{name}#"

    def on(self, name: str, handler: SignalHandler) -> None:
        """Call ``handler(payload)`` for each message on channel ``name`` (before :meth:`run`)."""
        channel = self.channel(name)
        self._handlers[channel] = handler
        self.link.channels.append(channel)

    def publish(self, name: str, payload: bytes) -> None:
        """Send ``payload`` on channel ``name`` to every node (this one too); never waits."""
        self.link.publish(self.channel(name), payload)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ready once subscribed and the reconnect hooks ran (or after one request timeout with
        Redis away: the node serves meanwhile and catches up when Redis is back)."""
        client = client_for(self.config.redis_url)
        async with client, trio.open_nursery() as nursery:
            self.client = client
            nursery.start_soon(self.link.run_publisher, client)
            nursery.start_soon(self.link.run_subscriber)
            with trio.move_on_after(self.config.request_timeout_seconds):
                await self.ready.wait()
            task_status.started()

    async def _connected(self) -> None:
        for hook in self.on_connected:
            try:
                with trio.move_on_after(self.config.request_timeout_seconds):
                    await hook()
            except REDIS_ERRORS as err:
                log.warning("cluster: resynchronising after a reconnect failed: %r", err)
            except Exception:
                log.exception("cluster: a resynchronisation after reconnecting failed")
        self.ready.set()

    async def _on_message(self, channel: str, data: bytes) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            await handler(data)
        except Exception:  # one bad message must not stop the subscription
            self.failed_handlers += 1
            log.exception("cluster: a handler of %s failed", channel)
