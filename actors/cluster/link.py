"""The Redis connections of a node: a publisher that never blocks its callers, and a subscriber
that is loud when it fails and comes back by itself.

* Publishing: callers queue ``(channel, payload)`` without waiting (a bounded queue; a message
  that does not fit is dropped and counted); one task sends them in order. While Redis is
  unreachable, what cannot be sent is dropped and counted: local clients are served all along.
* Subscribing: one connection, supervised here. When it fails (Redis down or restarted, the
  connection killed) the failure is logged and counted, and the subscriber reconnects with an
  exponential backoff with jitter; every reconnect calls ``on_connected`` so that what is
  durable can be resynchronised. A probe message to itself every ``probe_interval_seconds``
  proves the subscription is alive; three intervals without one and it is restarted (a wedged
  connection that still looks open).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import coredis
import coredis.exceptions
import trio

from actors.cluster.config import ClusterConfig

log = logging.getLogger("switchboard.cluster")

REDIS_ERRORS = (coredis.exceptions.RedisError, OSError, trio.BrokenResourceError, EOFError)
PROBES_MISSED_BEFORE_RESTART = 3
CONNECT_TIMEOUT_SECONDS = 2.0

MessageHandler = Callable[[str, bytes], Awaitable[None]]  # (channel, data)


@dataclass
class LinkStats:
    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    subscriber_crashes: int = 0  # failures that were not Redis going away: bugs, loud
    wedged_restarts: int = 0
    last_message_at: float = 0.0  # time.monotonic() of the last message received
    received: int = 0
    published: int = 0
    publish_failures: int = 0
    dropped_queue_full: int = 0
    dropped_while_disconnected: int = 0

    def seconds_since_last_message(self) -> float | None:
        return None if not self.last_message_at else time.monotonic() - self.last_message_at


def client_for(url: str) -> coredis.Redis[bytes]:
    client: coredis.Redis[bytes] = coredis.Redis.from_url(
        url,
        decode_responses=False,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        stream_timeout=CONNECT_TIMEOUT_SECONDS * 2,
    )
    return client


class RedisLink:
    def __init__(
        self,
        config: ClusterConfig,
        channels: list[str],
        patterns: list[str],
        probe_channel: str,
        on_message: MessageHandler,
        on_connected: Callable[[], Awaitable[None]],
    ) -> None:
        self.config = config
        self.channels = channels
        self.patterns = patterns
        self.probe_channel = probe_channel
        self.on_message = on_message
        self.on_connected = on_connected
        self.stats = LinkStats()
        self._queue_send, self._queue_receive = trio.open_memory_channel[tuple[str, bytes]](
            config.publish_queue_max_messages
        )
        self._probe_sent = 0
        self._probe_seen_at = 0.0
        self.subscribed = trio.Event()  # set on the first successful subscription

    # --- publishing ------------------------------------------------------------------------------
    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message for Redis; never waits (a full queue drops it, counted)."""
        try:
            self._queue_send.send_nowait((channel, payload))
        except trio.WouldBlock:
            self.stats.dropped_queue_full += 1

    async def run_publisher(self, client: coredis.Redis[bytes]) -> None:
        async for channel, payload in self._queue_receive:
            try:
                await client.publish(channel, payload)
                self.stats.published += 1
            except REDIS_ERRORS as err:
                self.stats.publish_failures += 1
                if not self.stats.connected:
                    self.stats.dropped_while_disconnected += 1
                log.debug("cluster: publish to %s failed: %r", channel, err)

    # --- subscribing -----------------------------------------------------------------------------
    async def run_subscriber(self) -> None:
        backoff = 0.05
        while True:
            started = time.monotonic()
            try:
                await self._subscribe_once()
            except Exception as err:  # task groups here and in coredis wrap what failed
                if all(isinstance(leaf, REDIS_ERRORS) for leaf in leaves(err)):
                    self.stats.disconnects += 1
                    log.warning("cluster: Redis subscription lost (%r); reconnecting", err)
                else:
                    self.stats.subscriber_crashes += 1
                    log.exception("cluster: the subscriber crashed; restarting it")
            finally:
                self.stats.connected = False
            if time.monotonic() - started > 10 * backoff:  # it had been up a while
                backoff = 0.05
            await trio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, self.config.reconnect_max_seconds)

    async def _subscribe_once(self) -> None:
        client = client_for(self.config.redis_url)
        async with client:
            pubsub = client.pubsub(retry_policy=None, ignore_subscribe_messages=True)
            async with pubsub:
                if self.patterns:
                    await pubsub.psubscribe(*self.patterns)
                await pubsub.subscribe(*self.channels, self.probe_channel)
                self.stats.connected = True
                self.stats.connects += 1
                self._probe_seen_at = time.monotonic()
                self.subscribed.set()
                log.info("cluster: subscribed to Redis (%d channels)", len(self.channels) + 1)
                await self.on_connected()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._send_probes, client)
                    nursery.start_soon(self._watch_probes)
                    async for message in pubsub:
                        await self._received(message)
                raise coredis.exceptions.ConnectionError("subscription ended")

    async def _received(self, message: object) -> None:
        if not isinstance(message, dict) or message.get("type") not in ("message", "pmessage"):
            return
        channel, data = message.get("channel"), message.get("data")
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        self.stats.received += 1
        self.stats.last_message_at = time.monotonic()
        name = channel.decode("utf-8", "replace")
        if name == self.probe_channel:
            self._probe_seen_at = self.stats.last_message_at
            return
        await self.on_message(name, data)

    async def _send_probes(self, client: coredis.Redis[bytes]) -> None:
        while True:
            self._probe_sent += 1
            with trio.move_on_after(self.config.probe_interval_seconds):
                try:
                    await client.publish(self.probe_channel, b"probe:%d" % self._probe_sent)
                except REDIS_ERRORS:
                    pass  # the subscription's own failure will say what happened
            await trio.sleep(self.config.probe_interval_seconds)

    async def _watch_probes(self) -> None:
        """Apart from the sending (which a stuck Redis may hold up): probes must keep coming."""
        interval = self.config.probe_interval_seconds
        while True:
            await trio.sleep(interval)
            silent = time.monotonic() - self._probe_seen_at
            if silent > PROBES_MISSED_BEFORE_RESTART * interval:
                self.stats.wedged_restarts += 1
                log.error("cluster: no probe for %.1fs: restarting the subscription", silent)
                raise coredis.exceptions.ConnectionError("subscription wedged")


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or the error itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]
