"""Waiting for a condition in tests: poll it, bounded by a timeout (never a bare sleep).

* :func:`wait_until` - in trio tests; the condition may be a plain or an ``async`` function
  (``lambda: store.retries > 0``, or one that asks the server's /metrics).
* :func:`wait_until_asyncio` - the same in asyncio code (python-socketio clients).
* :func:`wait_until_blocking` - the same in plain functions (the condition is a blocking call).
* :class:`Changes` - for asyncio recorders: wait until what they recorded satisfies a
  condition, woken by each change instead of polling.

On timeout each fails the test with ``message`` (a string, or a function called then, to say what
was seen).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import trio

POLL_INTERVAL_SECONDS = 0.005

Condition = Callable[[], bool] | Callable[[], Awaitable[bool]]
Message = str | Callable[[], str] | None


async def _holds(condition: Condition) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)


def _failure(message: Message, timeout: float) -> AssertionError:
    said = message() if callable(message) else message
    return AssertionError(said or f"the condition did not hold within {timeout}s")


async def wait_until(
    condition: Condition, timeout: float = 5.0, *, message: Message = None
) -> None:
    """Return as soon as ``condition()`` holds; fail after ``timeout`` seconds (trio)."""
    with trio.move_on_after(timeout):
        while not await _holds(condition):
            await trio.sleep(POLL_INTERVAL_SECONDS)
        return
    raise _failure(message, timeout)


async def wait_until_asyncio(
    condition: Condition,
    timeout: float = 5.0,
    *,
    message: Message = None,
    interval: float = POLL_INTERVAL_SECONDS,
) -> None:
    """:func:`wait_until` for asyncio code."""
    try:
        async with asyncio.timeout(timeout):
            while not await _holds(condition):
                await asyncio.sleep(interval)
    except TimeoutError:
        raise _failure(message, timeout) from None


def wait_until_blocking(
    condition: Callable[[], bool],
    timeout: float = 5.0,
    *,
    message: Message = None,
    interval: float = POLL_INTERVAL_SECONDS,
) -> None:
    """:func:`wait_until` for plain functions: ``condition`` is called until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise _failure(message, timeout)
        time.sleep(interval)  # the retry interval of a poll bounded by the deadline


class Changes:
    """A signal an asyncio recorder sets on every change; :meth:`until` waits on it."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float, message: Message) -> None:
        """Return once ``condition()`` holds (checked now and after every change)."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise _failure(message, timeout) from None
