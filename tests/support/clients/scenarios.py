"""What the python-socketio suites share. python-socketio is asyncio-based: their tests are
plain functions that :func:`run` a scenario, bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """``asyncio.run`` of ``scenario()``, failing after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


class Closable(Protocol):
    async def close(self) -> Any: ...


async def close_all(*clients: Closable) -> None:
    """Disconnect every client (one failing does not keep the others open)."""
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
