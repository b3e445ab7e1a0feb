"""One actor per guild: it commits the guild's events, broadcasts them, and keeps its analytics.

:class:`GuildAggregator` is the single writer of its guild's events, so the order it commits them
in is the order it counts and broadcasts them in:

1. ``Ingest``: write the events through the Store (group commit; ids already stored are
   skipped), then for each stored event: count it in the analytics :class:`Window`, publish its
   live event to the guild room, and ``alert:multiClient`` when its presence changes the user's
   platform set to two or more platforms; then answer the asker.
2. Analytics are throttled per guild: when they may have changed, a snapshot is published to the
   guild's analytics room at once if none was published in the last ``interval_seconds``, else at
   the end of that interval; and only if it differs from the last one published. Events leaving
   the window also change the analytics (a timer wakes the actor when the oldest one leaves).
3. ``SendSnapshot``: the current snapshot to one session (right after it subscribes).

On start (and on a supervisor restart) the actor rebuilds its window and the users' platform sets
from the Store, so analytics after a restart equal analytics before. Time is the service
:class:`~actors.clock.Clock` (tests advance it). Aggregators do not retire when idle: a retiring
actor must not await between closing its mailbox and leaving the :class:`Registry` (a ``tell``
racing with it would retry on the closed mailbox without yielding), and this one would have to
(its timer task is cancelled on the way out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
import trio

from actors.clock import Clock, iso
from actors.guild import persist
from actors.guild.analytics import Analytics, AnalyticsUpdate, MultiClient, Window
from actors.guild.model import GuildEvent, live_event, multi_client_alert
from actors.runtime import Actor, Registry, Reply, handles
from actors.sockets.session import Session
from actors.store import Store

log = logging.getLogger("switchboard.guild")


def guild_room(guild_id: str) -> str:
    return f"guild:{guild_id}"


def analytics_room(guild_id: str) -> str:
    return f"guild:{guild_id}:analytics"


class Publisher(Protocol):
    """Where broadcasts go (the default namespace: encode once, fan out through room actors)."""

    async def emit(self, event: str, *args: msgspec.Struct, to: str) -> None: ...


@dataclass(frozen=True, slots=True)
class GuildConfig:
    window_seconds: float = 7 * 86400.0
    interval_seconds: float = 30.0
    top_n: int = 20
    ghost_min_typing: int = 5


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.accepted - self.stored


@dataclass(frozen=True, slots=True)
class Ingest:
    events: tuple[GuildEvent, ...]
    reply: Reply[IngestResult]


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    session: Session


@dataclass(frozen=True, slots=True)
class GetSnapshot:
    reply: Reply[Analytics]


@dataclass(frozen=True, slots=True)
class Tick:
    """The actor's timer: a throttled publish or a window expiry is due."""


class GuildAggregator(Actor):
    kind = "guild"
    mailbox_size = 256

    def __init__(
        self,
        guild_id: str,
        *,
        store: Store,
        clock: Clock,
        publisher: Publisher,
        config: GuildConfig,
    ) -> None:
        super().__init__()
        self.guild_id = guild_id
        self.store = store
        self.clock = clock
        self.publisher = publisher
        self.config = config
        self.room = guild_room(guild_id)
        self.analytics_room = analytics_room(guild_id)
        self.window = self._new_window()
        self.multi = MultiClient()
        self.dirty = False  # the analytics may differ from the last published snapshot
        self.last_published: Analytics | None = None
        self.last_published_at: float | None = None  # clock.monotonic()
        self.published = 0
        self._snapshot: Analytics | None = None  # cache, valid until the window changes
        self._due: float | None = None  # clock.monotonic() when the timer should tick
        self._timer_changed = trio.Event()

    def _new_window(self) -> Window:
        c = self.config
        return Window(c.window_seconds, top_n=c.top_n, ghost_min_typing=c.ghost_min_typing)

    # --- life cycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        await self._load()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timer)
            await super().run()
            nursery.cancel_scope.cancel()

    async def _load(self) -> None:
        now = self.clock.now()
        events = await self.store.read(
            persist.load_window(self.guild_id, now - self.config.window_seconds)
        )
        presence = await self.store.read(persist.load_latest_presence(self.guild_id))
        self.window = self._new_window()
        for event in events:
            self.window.add(event, now)
        self.multi = MultiClient()
        for event in presence:
            self.multi.restore(event)
        self._snapshot = None
        if self.last_published is None:
            self.last_published = self.snapshot()  # what a subscriber gets first
        else:  # restarted after a crash: publish if the rebuilt state differs
            self.dirty = True
        log.debug("guild %s: rebuilt from %d stored events", self.guild_id, len(events))
        self._reschedule(force=True)

    # --- messages ------------------------------------------------------------------------------
    @handles(Ingest)
    async def _on_ingest(self, message: Ingest) -> None:
        try:
            await self._ingest(message)
        except BaseException as exc:
            message.reply.fail(exc if isinstance(exc, Exception) else RuntimeError("stopped"))
            raise

    @handles(Tick)
    async def _on_tick(self, message: Tick) -> None:
        await self._settle(force=True)

    @handles(SendSnapshot)
    async def _send_snapshot(self, message: SendSnapshot) -> None:
        await self._settle()
        message.session.emit("analytics:update", self._payload())

    @handles(GetSnapshot)
    async def _get_snapshot(self, message: GetSnapshot) -> None:
        await self._settle()
        message.reply.send(self.snapshot())

    async def _ingest(self, message: Ingest) -> None:
        try:
            stored: list[GuildEvent] = await self.store.write(persist.insert(message.events))
        except Exception as exc:  # not committed: nothing counted or broadcast
            log.error("guild %s: events not stored: %s", self.guild_id, exc)
            message.reply.fail(exc)
            return
        now = self.clock.now()
        emit = self.publisher.emit
        for event in stored:
            if self.window.add(event, now):
                self.dirty = True
                self._snapshot = None
            live = live_event(event)
            if live is not None:
                name, payload = live
                await emit(name, payload, to=self.room)
            if self.multi.observe(event):
                await emit("alert:multiClient", multi_client_alert(event), to=self.room)
        message.reply.send(IngestResult(len(message.events), len(stored)))
        await self._settle()

    # --- analytics -----------------------------------------------------------------------------
    def snapshot(self) -> Analytics:
        if self._snapshot is None:
            self._snapshot = self.window.snapshot()
        return self._snapshot

    def _payload(self) -> AnalyticsUpdate:
        return self.snapshot().payload(self.guild_id, iso(self.clock.now()))

    async def _settle(self, *, force: bool = False) -> None:
        """Expire old events; publish if due and changed; set the timer."""
        if self.window.expire(self.clock.now()):
            self.dirty = True
            self._snapshot = None
        if self.dirty:
            last = self.last_published_at
            if last is None or self.clock.monotonic() - last >= self.config.interval_seconds:
                await self._publish()
        self._reschedule(force=force)

    async def _publish(self) -> None:
        self.dirty = False
        snapshot = self.snapshot()
        if snapshot == self.last_published:
            return
        self.last_published = snapshot
        self.last_published_at = self.clock.monotonic()
        self.published += 1
        await self.publisher.emit("analytics:update", self._payload(), to=self.analytics_room)

    def _reschedule(self, *, force: bool = False) -> None:
        due: float | None = None
        if self.dirty and self.last_published_at is not None:
            due = self.last_published_at + self.config.interval_seconds
        expiry = self.window.next_expiry()
        if expiry is not None:
            leaves = self.clock.monotonic() + (expiry - self.clock.now())
            due = leaves if due is None else min(due, leaves)
        if force or due != self._due:
            self._due = due
            self._timer_changed.set()

    async def _timer(self) -> None:
        """Tell the actor ``Tick`` when ``_due`` comes; it reschedules after each tick."""
        while True:
            changed = self._timer_changed = trio.Event()
            due = self._due
            if due is None:
                await changed.wait()
                continue
            if await self._sleep_until(due, changed):
                await self.tell(Tick())
                await changed.wait()  # set by the actor once it has handled the tick

    async def _sleep_until(self, due: float, changed: trio.Event) -> bool:
        """Sleep until ``due`` on the service clock; False if ``changed`` came first."""
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                await changed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await self.clock.sleep_until(due)
            nursery.cancel_scope.cancel()
            return True
        return False  # ``changed`` cancelled the sleep


class Guilds:
    """The directory of guild aggregators: created on first use, each under supervision."""

    def __init__(self, make: Callable[[str], GuildAggregator]) -> None:
        self._make = make
        self._registry: Registry[str, GuildAggregator] | None = None

    def start(self, nursery: trio.Nursery) -> None:
        self._registry = Registry(self._make, nursery)

    @property
    def registry(self) -> Registry[str, GuildAggregator]:
        if self._registry is None:
            raise RuntimeError("the guild monitor has not started")
        return self._registry

    async def ingest(
        self, guild_id: str, events: Sequence[GuildEvent], timeout: float = 60.0
    ) -> IngestResult:
        return await self.registry.ask(guild_id, lambda r: Ingest(tuple(events), r), timeout)

    async def send_snapshot(self, guild_id: str, session: Session) -> None:
        await self.registry.tell(guild_id, SendSnapshot(session))

    async def snapshot(self, guild_id: str, timeout: float = 10.0) -> Analytics:
        return await self.registry.ask(guild_id, GetSnapshot, timeout)
