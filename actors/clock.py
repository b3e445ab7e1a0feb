"""The service's clock: real time plus an offset that tests can advance.

Time-based behaviour (throttles, expiry, periodic pushes) reads :meth:`Clock.now` and waits with
:meth:`Clock.sleep`, never ``time.time()``/``trio.sleep`` directly, so a test can move time forward
(``--test-clock`` exposes ``POST /api/test/clock``) instead of waiting for it. Advancing wakes every
sleeper whose deadline has passed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import trio


def iso(epoch_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (the wire's timestamp format)."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Clock:
    def __init__(self) -> None:
        self.offset_seconds = 0.0
        self._advanced = trio.Event()
        self._listeners: list[Callable[[], None]] = []

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a test moves the clock (deadline waiters re-check)."""
        self._listeners.append(listener)

    def now(self) -> float:
        """Wall-clock epoch seconds (for stamps, windows and expiry)."""
        return time.time() + self.offset_seconds

    def monotonic(self) -> float:
        """Monotonic seconds (for intervals)."""
        return trio.current_time() + self.offset_seconds

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.advance_to(self.offset_seconds + seconds)

    def advance_to(self, offset_seconds: float) -> None:
        """Set the offset to ``offset_seconds`` exactly (a cluster's shared offset); an offset
        behind the current one is ignored: time only moves forward."""
        if offset_seconds <= self.offset_seconds:
            return
        self.offset_seconds = offset_seconds
        advanced, self._advanced = self._advanced, trio.Event()
        advanced.set()
        for listener in self._listeners:
            listener()

    async def sleep(self, seconds: float) -> None:
        deadline = self.monotonic() + seconds
        while (remaining := deadline - self.monotonic()) > 0:
            with trio.move_on_after(remaining):
                await self._advanced.wait()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``monotonic()`` reaches ``deadline``."""
        await self.sleep(deadline - self.monotonic())

    async def every(self, interval_seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` every ``interval_seconds``, forever.

        The next deadline is fixed when a run *starts*, so time that passes (or is advanced)
        while ``job`` runs counts towards the next run: a slow job does not stretch the period,
        and a test that advances the clock as soon as it sees a run never loses the advance.
        A run that falls behind by more than one period is not made up: one run, then on time.
        """
        due = self.monotonic() + interval_seconds
        while True:
            await self.sleep_until(due)
            due = self.monotonic() + interval_seconds
            await job()
