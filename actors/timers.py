"""Timers with one fixed delay, for many objects, served by one task.

Heartbeats and the connect timeout give every connection the same delay, so deadlines come out in
the order they are added: a FIFO is a complete priority queue here. One task per queue sleeps until
the earliest deadline, instead of one task (or cancel scope) per connection; a deadline fires at
its moment, not at the next tick of a periodic sweep.
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from actors.clock import Clock


class TimerQueue:
    """Calls ``callback(item, token)`` ``delay_seconds`` after :meth:`add` (callbacks must be
    cheap and synchronous; they check themselves whether the timer still matters)."""

    def __init__(self, delay_seconds: float, callback: Callable[[Any, int], None]) -> None:
        self.delay_seconds = delay_seconds
        self._callback = callback
        self._queue: deque[tuple[float, weakref.ref[Any], int]] = deque()
        self._wakeup = trio.Event()

    def add(self, item: Any, token: int = 0) -> None:
        """``item`` is held by a weak reference: one that is gone by its deadline is skipped."""
        if not self._queue:
            self._wakeup.set()
        self._queue.append((trio.current_time() + self.delay_seconds, weakref.ref(item), token))

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            due = queue[0][0]
            now = trio.current_time()
            if due > now:
                await trio.sleep_until(due)
                continue
            while queue and queue[0][0] <= now:
                _, ref, token = queue.popleft()
                item = ref()
                if item is not None:
                    self._callback(item, token)
            await trio.lowlevel.checkpoint()


class DeadlineQueue:
    """Calls ``callback(item)`` at a wall-clock deadline (``clock.now()`` seconds), one task for
    any number of items with different deadlines (a heap). Used for token expiry."""

    def __init__(self, clock: Clock, callback: Callable[[Any], None]) -> None:
        self.clock = clock
        self._callback = callback
        self._heap: list[list[Any]] = []  # [deadline, order, item or None once discarded]
        self._entries: dict[int, list[Any]] = {}
        self._dead = 0
        self._order = itertools.count()
        self._changed = trio.Event()
        clock.on_advance(self._wake)

    def add(self, deadline: float, item: Any) -> None:
        entry = [deadline, next(self._order), item]
        self._entries[id(item)] = entry
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._wake()

    def discard(self, item: Any) -> None:
        """Forget ``item`` (it ended before its deadline), so it is not kept alive until then."""
        entry = self._entries.pop(id(item), None)
        if entry is not None:
            entry[2] = None
            self._dead += 1
            if self._dead > 64 and self._dead * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._dead = 0

    def _wake(self) -> None:
        self._changed.set()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self) -> None:
        while True:
            heap = self._heap
            self._changed = trio.Event()
            if not heap:
                await self._changed.wait()
                continue
            remaining = heap[0][0] - self.clock.now()
            if remaining > 0:
                with trio.move_on_after(remaining):
                    await self._changed.wait()
                continue
            _, _, item = heapq.heappop(heap)
            if item is None:
                self._dead -= 1
                continue
            del self._entries[id(item)]
            self._callback(item)
