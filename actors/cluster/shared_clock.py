"""The service clock shared by the nodes of a cluster (tests move it; TTLs and windows follow).

The offset from real time lives in one Redis key. Advancing (``POST /api/test/clock`` on any
node) adds to it with ``INCRBYFLOAT`` (so two nodes advancing at once add up), moves this node's
clock to the new total and announces the total on the ``clock`` channel; each node moves its own
clock to it and records what it has seen in a hash (``clock-seen``, one field per node tag). The
advance answers once every live node of the registry has seen the total (or after
``confirm_timeout_seconds``), so a test that advances on one node can look at another at once.
A node that starts, or reconnects after a Redis outage, reads the key before it goes on: the
offset only grows, so taking the larger of the two is always right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import trio

from actors.clock import Clock
from actors.cluster.link import REDIS_ERRORS
from actors.cluster.signals import ClusterSignals

log = logging.getLogger("switchboard.cluster")

CHANNEL = "clock"
OFFSET_KEY = "clock-offset"
SEEN_KEY = "clock-seen"
CONFIRM_POLL_SECONDS = 0.01


class SharedClock:
    def __init__(
        self,
        clock: Clock,
        signals: ClusterSignals,
        live_nodes: Callable[[], Iterable[str]],
        *,
        confirm_timeout_seconds: float = 5.0,
    ) -> None:
        self.clock = clock
        self.signals = signals
        self.live_nodes = live_nodes  # the tags of the nodes alive in the registry
        self.confirm_timeout_seconds = confirm_timeout_seconds
        self.unconfirmed = 0  # advances answered before every node had seen them
        signals.on(CHANNEL, self._announced)
        signals.on_connected.append(self.resync)

    def follow(self, total: float) -> None:
        """Move this node's clock to offset ``total`` (never backwards)."""
        self.clock.advance_to(total)

    async def resync(self) -> None:
        """Read the shared offset (at start and after every reconnect)."""
        raw = await self.signals.client.get(self.signals.key(OFFSET_KEY))
        if raw is not None:
            self.follow(float(raw))
        await self._seen()

    async def advance(self, seconds: float) -> float:
        """Advance every node's clock by ``seconds``; returns the new offset."""
        signals = self.signals
        try:
            total = float(await signals.client.incrbyfloat(signals.key(OFFSET_KEY), seconds))
        except REDIS_ERRORS as err:  # Redis away: this node at least (the others resync later)
            log.warning("cluster: the shared clock is not reachable (%r); advancing locally", err)
            self.clock.advance(seconds)
            return self.clock.offset_seconds
        self.follow(total)
        signals.publish(CHANNEL, repr(total).encode())
        await self._seen()
        with trio.move_on_after(self.confirm_timeout_seconds) as waited:
            while not await self._all_seen(total):
                await trio.sleep(CONFIRM_POLL_SECONDS)
        if waited.cancelled_caught:
            self.unconfirmed += 1
            log.warning("cluster: not every node confirmed the clock's advance in time")
        return self.clock.offset_seconds

    async def _announced(self, payload: bytes) -> None:
        self.follow(float(payload))
        try:
            await self._seen()
        except REDIS_ERRORS as err:
            log.warning("cluster: the clock's advance was not confirmed: %r", err)

    async def _seen(self) -> None:
        signals = self.signals
        offset = repr(self.clock.offset_seconds)
        await signals.client.hset(signals.key(SEEN_KEY), {signals.tag: offset})

    async def _all_seen(self, total: float) -> bool:
        tags = list(self.live_nodes())
        if not tags:
            return True
        seen = await self.signals.client.hmget(self.signals.key(SEEN_KEY), tags)
        return all(value is not None and float(value) >= total for value in seen)
