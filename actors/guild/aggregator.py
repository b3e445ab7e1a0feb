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
from the Store, so analytics after a restart equal analytics before.

In a cluster (``follow_log``) the nodes share the guild log and the actor no longer writes: every
node follows the log (:mod:`actors.guild.follow`) and tells its actor of each guild the stored
events in ``seq`` order (``Apply``), so every node counts the same analytics and sends the live
events and ``alert:multiClient`` to its own members (each client gets each once). The throttled
``analytics:update`` is claimed cluster-wide (:class:`~actors.cluster.claims.Claims`): the node
that wins the guild's interval publishes it to every node's subscribers; a node that loses
learns when the winner published and tries again at the end of that interval if its analytics
still changed. Time is the service
:class:`~actors.clock.Clock` (tests advance it). Aggregators do not retire when idle: a retiring
actor must not await between closing its mailbox and leaving the :class:`Registry` (a ``tell``
racing with it would retry on the closed mailbox without yielding), and this one would have to
(its timer task is cancelled on the way out).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
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

Emit = Callable[..., Awaitable[None]]


def guild_room(guild_id: str) -> str:
    return f"guild:{guild_id}"


def analytics_room(guild_id: str) -> str:
    return f"guild:{guild_id}:analytics"


class Publisher(Protocol):
    """Where broadcasts go (the default namespace: encode once, fan out through room actors)."""

    async def emit(self, event: str, *args: msgspec.Struct, to: str) -> None:
        """To the room's members on every node."""

    async def emit_here(self, event: str, *args: msgspec.Struct, to: str) -> None:
        """To the room's members on this node only."""


class Throttle(Protocol):
    """A cluster-wide "at most once per interval" (:class:`actors.cluster.claims.Claims`)."""

    async def claim(self, name: str, now: float, interval_seconds: float) -> float | None: ...


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
class Apply:
    """Events of this guild the log follower read (in a cluster), in ``seq`` order."""

    events: tuple[GuildEvent, ...]
    reply: Reply[None]


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
        follow_log: bool = False,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__()
        self.follow_log = follow_log  # a cluster: events come from the log follower
        self.throttle = throttle  # a cluster: analytics:update claimed cluster-wide
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
        self.last_published_at: float | None = None  # clock.now() (another node's, in a cluster)
        self.published = 0
        self.applied_seq = 0  # the last event counted (rebuilt or applied)
        # set by the log follower that creates this actor: rebuild up to this seq (the rows
        # after it are on their way in Apply); None: up to the last stored event
        self.load_upto: int | None = None
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
        upto = persist.MAX_SEQ
        if self.follow_log:
            given, self.load_upto = self.load_upto, None  # a restart rebuilds all stored
            upto = given if given is not None else await self.store.read(persist.last_seq)
        events = await self.store.read(
            persist.load_window(self.guild_id, now - self.config.window_seconds, upto)
        )
        presence = await self.store.read(persist.load_latest_presence(self.guild_id, upto))
        if self.follow_log:  # later events come from the follower; these are counted here
            self.applied_seq = upto
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

    @handles(Apply)
    async def _on_apply(self, message: Apply) -> None:
        """Events from the log (a cluster): counted, and their live events and alerts sent to
        this node's members; a repeated delivery is skipped by ``seq``."""
        now = self.clock.now()
        emit = self.publisher.emit_here
        for event in message.events:
            if event.seq <= self.applied_seq:
                continue
            self.applied_seq = event.seq
            await self._count(event, now, emit)
        message.reply.send(None)
        await self._settle()

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
        for event in stored:
            await self._count(event, now, self.publisher.emit)
        message.reply.send(IngestResult(len(message.events), len(stored)))
        await self._settle()

    async def _count(self, event: GuildEvent, now: float, emit: Emit) -> None:
        """Count one stored event; its live event and any multi-client alert to the room."""
        if self.window.add(event, now):
            self.dirty = True
            self._snapshot = None
        live = live_event(event)
        if live is not None:
            name, payload = live
            await emit(name, payload, to=self.room)
        if self.multi.observe(event):
            await emit("alert:multiClient", multi_client_alert(event), to=self.room)

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
            if last is None or self.clock.now() - last >= self.config.interval_seconds:
                await self._publish()
        self._reschedule(force=force)

    async def _publish(self) -> None:
        snapshot = self.snapshot()
        if snapshot == self.last_published:
            self.dirty = False
            return
        now = self.clock.now()
        if self.throttle is not None:
            holder = await self.throttle.claim(
                f"guild-analytics#{self.guild_id}", now, self.config.interval_seconds
            )
            if holder is not None:  # the interval is another node's (or we are early)
                if holder != self.last_published_at:  # it published: what we hold, or older
                    self.last_published = snapshot
                    self.dirty = False
                self.last_published_at = holder
                return
        self.dirty = False
        self.last_published = snapshot
        self.last_published_at = now
        self.published += 1
        await self.publisher.emit("analytics:update", self._payload(), to=self.analytics_room)

    def _reschedule(self, *, force: bool = False) -> None:
        due: float | None = None
        if self.dirty and self.last_published_at is not None:
            publish_at = self.last_published_at + self.config.interval_seconds
            due = self.clock.monotonic() + (publish_at - self.clock.now())
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
