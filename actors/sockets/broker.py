"""The fan-out seam: handlers publish a :class:`Broadcast`; rooms never know who carries it.

A broadcast is the packet (event and arguments) with its audience (rooms, exceptions, flags), not
encoded bytes: each node encodes it once for its own members. :class:`LocalBroker` delivers
within this process; the cluster's Redis broker (:mod:`actors.cluster.broker`) also publishes it
to the other nodes, in the Socket.IO Redis adapter's format, and delivers what they publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actors.sockets.rooms import Rooms
from actors.sockets.session import event_frame


@dataclass(frozen=True, slots=True)
class Broadcast:
    namespace: str
    event: str
    args: tuple[object, ...]
    rooms: tuple[str, ...] | None = None  # None: every session of the namespace
    exclude: frozenset[str] = frozenset()  # session ids and room names left out
    volatile: bool = False  # may be dropped for a backed-up client instead of cutting it off


class Broker(Protocol):
    async def publish(self, broadcast: Broadcast) -> None: ...


class LocalBroker:
    """Delivers to the sessions of this process: one encoding, offered to every member."""

    def __init__(self) -> None:
        self.directories: dict[str, Rooms] = {}
        self.published = 0

    def add(self, rooms: Rooms) -> None:
        self.directories[rooms.namespace] = rooms

    async def publish(self, broadcast: Broadcast) -> None:
        self.published += 1
        await self.deliver(broadcast)

    async def deliver(self, b: Broadcast) -> None:
        directory = self.directories.get(b.namespace)
        if directory is None:
            return
        frame = event_frame(b.namespace, b.event, b.args, volatile=b.volatile)
        await directory.deliver(frame, b.rooms, b.exclude)
