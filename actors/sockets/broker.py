"""The fan-out seam. Handlers publish through a Broker; rooms never know which one is in use.

:class:`LocalBroker` delivers within this process. A clustered deployment would put a broker here
that also publishes the encoded frame to its peers (e.g. over Redis) and delivers what they send.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from actors.sockets.outbox import OutFrame
from actors.sockets.rooms import Rooms


class Broker(Protocol):
    async def publish(
        self,
        namespace: str,
        frame: OutFrame,
        rooms: Iterable[str] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> None: ...


class LocalBroker:
    def __init__(self) -> None:
        self.directories: dict[str, Rooms] = {}
        self.published = 0

    def add(self, rooms: Rooms) -> None:
        self.directories[rooms.namespace] = rooms

    async def publish(
        self,
        namespace: str,
        frame: OutFrame,
        rooms: Iterable[str] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        self.published += 1
        await self.directories[namespace].deliver(frame, rooms, exclude)
