"""Sliding-window rate limits, keyed (per user, per IP, per socket), on the service clock.

``allow(key)`` counts one attempt and says whether it is within ``limit`` per ``window_seconds``.
The window is exact (a timestamp per counted attempt, at most ``limit`` kept per key). With
``block_seconds`` a key that goes over is refused for that long, whatever it does meanwhile.
A limit of 0 disables the limiter. Owned by one actor (or one task), like any other state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class SlidingWindowLimiter:
    limit: int
    window_seconds: float
    now: Callable[[], float]
    block_seconds: float = 0.0
    hits: dict[Hashable, deque[float]] = field(default_factory=dict)
    blocked_until: dict[Hashable, float] = field(default_factory=dict)
    refused: int = 0

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def allow(self, key: Hashable) -> bool:
        """Count an attempt by ``key``; False when it is over the limit (or blocked)."""
        if self.limit <= 0:
            return True
        now = self.now()
        until = self.blocked_until.get(key)
        if until is not None:
            if now < until:
                self.refused += 1
                return False
            del self.blocked_until[key]
        times = self.hits.get(key)
        if times is None:
            times = self.hits[key] = deque()
        horizon = now - self.window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= self.limit:
            self.refused += 1
            if self.block_seconds > 0:
                self.blocked_until[key] = now + self.block_seconds
                times.clear()
            return False
        times.append(now)
        return True

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        now = self.now()
        until = self.blocked_until.get(key)
        if until is not None and until > now:
            return until - now
        times = self.hits.get(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window_seconds - now)

    def remaining(self, key: Hashable) -> int:
        times = self.hits.get(key)
        if times is None:
            return self.limit
        horizon = self.now() - self.window_seconds
        return self.limit - sum(1 for t in times if t > horizon)

    def prune(self) -> int:
        """Forget keys with nothing in the window (housekeeping); returns how many were dropped."""
        now = self.now()
        horizon = now - self.window_seconds
        stale = [k for k, t in self.hits.items() if not t or t[-1] <= horizon]
        for key in stale:
            del self.hits[key]
        for key in [k for k, until in self.blocked_until.items() if until <= now]:
            del self.blocked_until[key]
        return len(stale)
