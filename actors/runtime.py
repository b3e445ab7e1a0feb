"""The actor runtime: bounded mailboxes, tell/ask, supervision with backoff, and a registry.

An actor is an object whose :meth:`Actor.handle` is called, one message at a time, by the single
task that runs it. The actor owns its state; nothing else reads or writes it. Messages are small
frozen dataclasses; each message type has one handler method, marked with :func:`handles`, and
``handle`` finds it by the message's type (one dictionary lookup). ``tell`` waits only while the
mailbox is full (that is the backpressure a fast producer feels); ``ask`` carries a one-shot
:class:`Reply` and is bounded by a timeout.

A crashing actor is restarted in place by :func:`supervise`: the message that raised is dropped
and logged (its asker is answered with :class:`ActorCrashed`, never left waiting), the actor
keeps its mailbox (nothing queued is lost) and its state (a room keeps its members), and restarts
are spaced by an exponential backoff. An actor that keeps crashing past ``max_restarts`` inside
``restart_window_seconds`` is given up on, and the exception propagates to the nursery that owns
it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import trio

log = logging.getLogger("switchboard.actors")

T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Awaitable[None]])
Handler = Callable[[Any, Any], Awaitable[None]]

HANDLES = "_actor_handles"


def handles(*kinds: type) -> Callable[[H], H]:
    """Mark an actor's ``async def`` method as the handler of messages of these types."""

    def mark(method: H) -> H:
        setattr(method, HANDLES, (*getattr(method, HANDLES, ()), *kinds))
        return method

    return mark


class AskTimeout(Exception):
    """An ``ask`` got no reply in time."""


class ActorStopped(Exception):
    """The actor's mailbox is closed: it has stopped (idle rooms retire)."""


class ActorCrashed(Exception):
    """The actor crashed handling the message: its asker gets this rather than waiting."""


def answer_crash(message: object, error: BaseException) -> None:
    """The message whose handler crashed still gets an answer (its ``reply``, if it has one)."""
    reply = getattr(message, "reply", None)
    if isinstance(reply, Reply):
        reply.fail(ActorCrashed(f"{type(error).__name__}: {error}"))


class Reply(Generic[T]):
    """A one-shot reply slot: the asker waits on it, the actor fills it once."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def send(self, value: T) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> T:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass
class ActorStats:
    """Counters every actor keeps; read by monitoring (never written by others)."""

    handled: int = 0
    crashes: int = 0
    restarts: int = 0
    dropped: int = 0  # messages let go for want of room (by actors that drop, never wait)


class Actor:
    """Base class: a bounded mailbox and a loop that hands each message to :meth:`handle`."""

    mailbox_size: ClassVar[int] = 64
    kind: ClassVar[str] = "actor"
    handlers: ClassVar[dict[type, Handler]] = {}  # message type -> method, built per class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, Handler] = {}
        for klass in reversed(cls.__mro__):
            for member in vars(klass).values():
                for kind in getattr(member, HANDLES, ()):
                    table[kind] = member
        cls.handlers = table

    def __init__(self, *, mailbox_size: int | None = None) -> None:
        size = self.mailbox_size if mailbox_size is None else mailbox_size
        self._inbox_send, self._inbox_receive = trio.open_memory_channel[Any](size)
        self.stats = ActorStats()

    # --- the outside: tell / ask -------------------------------------------------------------
    async def tell(self, message: Any) -> None:
        """Queue a message, waiting while the mailbox is full."""
        try:
            await self._inbox_send.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ActorStopped(self.kind) from None

    def tell_nowait(self, message: Any) -> bool:
        """Queue a message if there is room now; False when the mailbox is full or closed."""
        try:
            self._inbox_send.send_nowait(message)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def ask(self, make: Callable[[Reply[T]], Any], timeout: float = 5.0) -> T:
        """Send ``make(reply)`` and wait for the reply, at most ``timeout`` seconds."""
        reply: Reply[T] = Reply()
        with trio.move_on_after(timeout) as scope:
            await self.tell(make(reply))
            return await reply.wait()
        assert scope.cancelled_caught
        raise AskTimeout(f"{self.kind} did not answer within {timeout}s")

    @property
    def mailbox_depth(self) -> int:
        return self._inbox_send.statistics().current_buffer_used

    @property
    def mailbox_capacity(self) -> int:
        return int(self._inbox_send.statistics().max_buffer_size)

    # --- the inside ----------------------------------------------------------------------------
    async def handle(self, message: Any) -> None:
        """Run the handler of ``message``'s type (see :func:`handles`)."""
        handler = self.handlers.get(type(message))
        if handler is None:
            raise TypeError(f"{self.kind} got an unknown message {message!r}")
        await handler(self, message)

    async def idle(self) -> bool:
        """Called when the mailbox has been empty for ``idle_seconds``; True stops the actor."""
        return False

    idle_seconds: ClassVar[float] = float("inf")

    async def run(self) -> None:
        """Handle messages until the mailbox closes or :meth:`idle` says stop."""
        receive = self._inbox_receive
        if self.idle_seconds == float("inf"):  # the common case: no per-message cancel scope
            async for item in receive:
                self.stats.handled += 1
                try:
                    await self.handle(item)
                except Exception as exc:
                    answer_crash(item, exc)
                    raise
            return
        while True:
            message: Any = None
            with trio.move_on_after(self.idle_seconds):
                try:
                    message = await receive.receive()
                except trio.EndOfChannel:
                    return
            if message is None:
                # a sender can slip a message into the buffer between the timeout and this
                # line (after the timeout withdrew our receive): then we are not idle after all
                if await self.idle() and not receive.statistics().current_buffer_used:
                    self.close()
                    return
                continue
            self.stats.handled += 1
            try:
                await self.handle(message)
            except Exception as exc:
                answer_crash(message, exc)
                raise

    def close(self) -> None:
        """Stop taking messages; a sender racing with this gets :class:`ActorStopped`."""
        self._inbox_send.close()
        self._inbox_receive.close()


@dataclass
class SupervisorPolicy:
    """How a crashed actor is restarted."""

    initial_backoff_seconds: float = 0.01
    max_backoff_seconds: float = 2.0
    max_restarts: int = 20
    restart_window_seconds: float = 60.0


async def supervise(
    actor: Actor,
    policy: SupervisorPolicy | None = None,
    on_restart: Callable[[Actor, BaseException], None] | None = None,
) -> None:
    """Run ``actor`` and restart it in place when it raises (see module docstring)."""
    policy = policy or SupervisorPolicy()
    backoff = policy.initial_backoff_seconds
    recent: list[float] = []
    while True:
        try:
            await actor.run()
            return
        except Exception as exc:  # a crash: log, back off, restart with the same mailbox
            now = trio.current_time()
            recent = [t for t in recent if now - t < policy.restart_window_seconds] + [now]
            actor.stats.crashes += 1
            if len(recent) > policy.max_restarts:
                log.error("actor %s crashed %d times; giving up", actor.kind, len(recent))
                raise
            log.exception("actor %s crashed; restarting in %.3fs", actor.kind, backoff)
            if on_restart is not None:
                on_restart(actor, exc)
            await trio.sleep(backoff)
            actor.stats.restarts += 1
            backoff = min(backoff * 2, policy.max_backoff_seconds)


K = TypeVar("K", bound=Hashable)
A = TypeVar("A", bound=Actor)


@dataclass
class Registry(Generic[K, A]):
    """Maps names to running actors; creates one on first use and forgets it when it retires.

    The registry's nursery owns every actor it starts, each under :func:`supervise`.
    """

    factory: Callable[[K], A]
    nursery: trio.Nursery
    policy: SupervisorPolicy = field(default_factory=SupervisorPolicy)
    actors: dict[K, A] = field(default_factory=dict)
    restarts: int = 0
    given_up: int = 0

    def get(self, name: K) -> A | None:
        return self.actors.get(name)

    def get_or_create(self, name: K) -> A:
        actor = self.actors.get(name)
        if actor is None:
            actor = self.factory(name)
            self.actors[name] = actor
            self.nursery.start_soon(self._run, name, actor)
        return actor

    async def tell(self, name: K, message: Any) -> None:
        """Tell the named actor, creating it if needed; survives racing with its retirement."""
        while True:
            actor = self.get_or_create(name)
            try:
                await actor.tell(message)
                return
            except ActorStopped:
                await self._forget_stopped(name, actor)

    async def ask(self, name: K, make: Callable[[Reply[T]], Any], timeout: float = 5.0) -> T:
        while True:
            actor = self.get_or_create(name)
            try:
                return await actor.ask(make, timeout)
            except ActorStopped:
                await self._forget_stopped(name, actor)

    async def _forget_stopped(self, name: K, actor: A) -> None:
        """A stopped actor may still be listed until its task finishes: forget it now, so the
        retry creates a fresh one, and yield so that task can finish."""
        if self.actors.get(name) is actor:
            del self.actors[name]
        await trio.lowlevel.checkpoint()

    async def _run(self, name: K, actor: A) -> None:
        try:
            await supervise(actor, self.policy, self._count_restart)
        except Exception:
            # it kept crashing: drop this one actor (the next use of the name starts a fresh
            # one); the registry's other actors and the nursery that owns them carry on
            self.given_up += 1
            log.error("gave up on %s %r after repeated crashes", actor.kind, name)
        finally:
            if self.actors.get(name) is actor:
                del self.actors[name]
            actor.close()

    def _count_restart(self, actor: Actor, exc: BaseException) -> None:
        self.restarts += 1
