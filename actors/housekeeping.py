"""Housekeeping: one task that sweeps expired state on its own, so memory stays bounded.

Sweeps are cheap synchronous functions returning how many entries they removed (expired
rate-limit keys, typing indicators, recovery tokens...). Counts are visible in /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from actors.clock import Clock

log = logging.getLogger("switchboard.housekeeping")

Sweep = Callable[[], int]
AsyncSweep = Callable[[], Awaitable[int]]


@dataclass
class Housekeeping:
    clock: Clock
    interval_seconds: float
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    async_sweeps: dict[str, AsyncSweep] = field(default_factory=dict)
    runs: int = 0
    removed: int = 0

    def add(self, name: str, sweep: Sweep) -> None:
        self.sweeps[name] = sweep

    def add_async(self, name: str, sweep: AsyncSweep) -> None:
        """A sweep that has to wait (e.g. a delete through the Store)."""
        self.async_sweeps[name] = sweep

    async def run_once(self) -> int:
        """One full pass; `runs` counts only finished passes, so a reader who sees it move
        knows every sweep of that pass (async ones included) has completed."""
        total = 0
        for name, sweep in self.sweeps.items():
            try:
                total += sweep()
            except Exception:  # one broken sweep must not stop the others
                log.exception("housekeeping sweep %s failed", name)
        for name, async_sweep in self.async_sweeps.items():
            try:
                total += await async_sweep()
            except Exception:
                log.exception("housekeeping sweep %s failed", name)
        self.removed += total
        self.runs += 1
        return total

    async def run(self) -> None:
        await self.clock.every(self.interval_seconds, self.run_once)
