"""The live metrics: six figures of this process and its traffic, sampled when they are asked for.

``Active Users`` and ``Events per Minute`` come from the metrics aggregator; ``Connected Clients``
is the Engine.IO connections; ``Messages per Second`` (Socket.IO events received) and ``CPU Usage``
(% of one core) are measured between two samples; ``Memory Usage`` is the resident memory (MB).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from actors.analytics.metrics import LiveCounts
from actors.eventlog.events import iso
from web.apps.analytics.schemas import LiveMetric

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_megabytes() -> float:
    """This process's resident memory, in MB (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return round(int(f.read().split()[1]) * _PAGE_SIZE / 1_048_576, 1)
    except OSError:  # pragma: no cover - not Linux
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class ProcessSampler:
    """CPU use and Socket.IO message rate between two samples (at least ``min_seconds`` apart)."""

    def __init__(self, events_in: Callable[[], int], min_seconds: float = 0.5) -> None:
        self.events_in = events_in
        self.min_seconds = min_seconds
        self._at = time.monotonic()
        self._cpu = time.process_time()
        self._count = 0
        self.cpu_percent = 0.0
        self.messages_per_second = 0.0

    def sample(self) -> None:
        at, cpu, count = time.monotonic(), time.process_time(), int(self.events_in())
        elapsed = at - self._at
        if elapsed < self.min_seconds:
            return
        self.cpu_percent = round((cpu - self._cpu) * 100.0 / elapsed, 1)
        self.messages_per_second = round(max(0, count - self._count) / elapsed, 2)
        self._at, self._cpu, self._count = at, cpu, count


def live_metrics(
    counts: LiveCounts, sampler: ProcessSampler, connections: int, now: float
) -> list[LiveMetric]:
    """The figures, in the order dashboards show them (``sampler`` sampled just before)."""
    stamp = iso(now)
    return [
        LiveMetric("Active Users", counts.active_users, stamp),
        LiveMetric("Events per Minute", round(counts.events_last_5_minutes / 5, 2), stamp),
        LiveMetric("Connected Clients", connections, stamp),
        LiveMetric("Messages per Second", sampler.messages_per_second, stamp),
        LiveMetric("CPU Usage", sampler.cpu_percent, stamp),
        LiveMetric("Memory Usage", rss_megabytes(), stamp),
    ]
