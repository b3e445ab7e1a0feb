"""The live event feed: committed events, pushed in batches at most every ``interval_seconds``.

Ingest tells the feed each committed batch (:class:`NewEvents`). The feed waits until at least
``interval_seconds`` have passed since its last push, takes everything that arrived meanwhile, and
publishes it as arrays of at most ``max_per_push`` events, each array encoded once for every
listener. A burst of 10,000 events is therefore a handful of packets, not 10,000. When nobody
listens (``listeners()`` is 0) the events are dropped unencoded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from actors.analytics.metrics import FeedEvent, feed_event
from actors.eventlog.events import Event
from actors.runtime import Actor


@dataclass(frozen=True, slots=True)
class NewEvents:
    events: tuple[Event, ...]


class EventFeed(Actor):
    kind = "event-feed"

    def __init__(
        self,
        publish: Callable[[list[FeedEvent]], Awaitable[None]],
        *,
        now: Callable[[], float],
        listeners: Callable[[], int],
        interval_seconds: float = 0.25,
        max_per_push: int = 1000,
        mailbox_size: int = 1024,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.publish = publish
        self.now = now
        self.listeners = listeners
        self.interval_seconds = interval_seconds
        self.max_per_push = max(1, max_per_push)
        self.pushes = 0
        self.pushed_events = 0
        self._last_push = float("-inf")

    async def run(self) -> None:
        receive = self._inbox_receive
        while True:
            try:
                first: NewEvents = await receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            await trio.sleep_until(self._last_push + self.interval_seconds)
            pending = list(first.events)
            while True:
                try:
                    more: NewEvents = receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                pending.extend(more.events)
            self._last_push = trio.current_time()
            if not pending or self.listeners() == 0:
                continue
            now = self.now()
            for start in range(0, len(pending), self.max_per_push):
                chunk = pending[start : start + self.max_per_push]
                await self.publish([feed_event(e, now) for e in chunk])
                self.pushes += 1
                self.pushed_events += len(chunk)
