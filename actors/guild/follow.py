"""The guild log in a cluster: any node appends, every node follows.

An ingest on any node commits its events to ``guild_events`` (under the log's advisory lock, so
``seq`` is commit order), wakes the other nodes through Redis, and answers once this node's
follower has handed its events to the guild's aggregator here, which has counted them and sent
their live events to its members (read your writes; the other nodes do the same when their
follower reads them, woken or on the next poll). The follower tells every event to its
guild's aggregator here, creating it as a single node's ingest does: a new one rebuilds from
the table what came before the rows being delivered, then counts (and broadcasts) those.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from actors.cluster.tail import LogTail
from actors.guild import persist
from actors.guild.aggregator import Apply, Guilds, IngestResult
from actors.guild.model import GuildEvent
from actors.store import Store

CHANNEL = "log-guild"  # a node stored guild events: the others read the log now
APPLY_TIMEOUT_SECONDS = 60.0


def _seq(event: GuildEvent) -> int:
    return event.seq


class GuildLog:
    def __init__(
        self,
        store: Store,
        guilds: Guilds,
        wake_others: Callable[[int], None],
        *,
        poll_seconds: float,
    ) -> None:
        self.store = store
        self.guilds = guilds
        self.wake_others = wake_others
        self.tail: LogTail[GuildEvent] = LogTail(
            "guild log", self._read_after, _seq, self._deliver, poll_seconds=poll_seconds
        )

    async def start(self, nursery: trio.Nursery) -> None:
        self.tail.start_at(await self.store.read(persist.last_seq))
        nursery.start_soon(self.tail.run)

    def hinted(self) -> None:
        self.tail.poke()

    async def ingest(self, events: Sequence[GuildEvent]) -> IngestResult:
        stored: list[GuildEvent] = await self.store.write(persist.insert(events))
        if stored:
            last = max(event.seq for event in stored)
            self.wake_others(last)
            await self.tail.caught_up(last)
        return IngestResult(len(events), len(stored))

    async def _read_after(self, seq: int, limit: int) -> list[GuildEvent]:
        rows: list[GuildEvent] = await self.store.read(persist.after(seq, limit))
        return rows

    async def _deliver(self, events: list[GuildEvent]) -> None:
        by_guild: dict[str, list[GuildEvent]] = {}
        for event in events:
            by_guild.setdefault(event.guild_id, []).append(event)
        registry = self.guilds.registry
        for guild_id, guild_events in by_guild.items():
            aggregator = registry.get(guild_id)
            if aggregator is None:  # new here: it rebuilds what came before, then counts these
                aggregator = registry.get_or_create(guild_id)
                aggregator.load_upto = self.tail.position
            batch = tuple(guild_events)
            await _apply(aggregator.ask, batch)


async def _apply(ask: Callable[..., Awaitable[None]], batch: tuple[GuildEvent, ...]) -> None:
    await ask(lambda reply: Apply(batch, reply), APPLY_TIMEOUT_SECONDS)
