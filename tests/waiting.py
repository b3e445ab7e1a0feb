"""Waiting for a condition in tests: poll it, bounded by a timeout (never a bare sleep)."""

from __future__ import annotations

from collections.abc import Callable

import trio

POLL_INTERVAL_SECONDS = 0.005


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Return as soon as ``predicate()`` holds; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(POLL_INTERVAL_SECONDS)
