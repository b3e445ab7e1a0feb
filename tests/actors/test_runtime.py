"""The actor runtime: tell/ask, supervision, registry retirement."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import trio

from actors.runtime import Actor, AskTimeout, Registry, Reply, SupervisorPolicy, supervise
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Add:
    n: int


@dataclass(frozen=True)
class Get:
    reply: Reply[int]


@dataclass(frozen=True)
class Boom:
    pass


class Counter(Actor):
    kind = "counter"

    def __init__(self, idle_seconds: float = float("inf")) -> None:
        super().__init__(mailbox_size=4)
        self.total = 0
        self.idle_seconds = idle_seconds  # type: ignore[misc]

    async def handle(self, message: object) -> None:
        if isinstance(message, Add):
            self.total += message.n
        elif isinstance(message, Get):
            message.reply.send(self.total)
        elif isinstance(message, Boom):
            raise RuntimeError("boom")

    async def idle(self) -> bool:
        return True


async def test_tell_then_ask_sees_messages_in_order() -> None:
    counter = Counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter.run)
        for i in range(10):
            await counter.tell(Add(i))
        assert await counter.ask(Get) == 45
        nursery.cancel_scope.cancel()


async def test_ask_times_out_when_nobody_answers() -> None:
    counter = Counter()  # never started
    with pytest.raises(AskTimeout):
        await counter.ask(Get, timeout=0.05)


async def test_supervisor_restarts_in_place_keeping_state_and_mailbox() -> None:
    counter = Counter()
    restarts: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            supervise,
            counter,
            SupervisorPolicy(initial_backoff_seconds=0.001),
            lambda actor, exc: restarts.append(str(exc)),
        )
        await counter.tell(Add(5))
        await counter.tell(Boom())
        await counter.tell(Add(2))  # queued behind the crash: not lost
        assert await counter.ask(Get) == 7
        assert restarts == ["boom"]
        assert counter.stats.restarts == 1
        nursery.cancel_scope.cancel()


async def test_supervisor_gives_up_after_too_many_crashes() -> None:
    counter = Counter()
    policy = SupervisorPolicy(initial_backoff_seconds=0.0, max_restarts=2)
    with pytest.raises(ExceptionGroup) as raised:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervise, counter, policy)
            for _ in range(3):
                await counter.tell(Boom())
    assert raised.group_contains(RuntimeError, match="boom")


async def test_registry_creates_on_first_use_and_forgets_idle_actors() -> None:
    async with trio.open_nursery() as nursery:
        registry: Registry[str, Counter] = Registry(lambda name: Counter(0.01), nursery)
        await registry.tell("a", Add(1))
        assert await registry.ask("a", Get) == 1
        await wait_until(lambda: registry.get("a") is None)
        # a retired name is simply created again
        assert await registry.ask("a", Get) == 0
        nursery.cancel_scope.cancel()


async def test_registry_replaces_an_actor_that_stopped_but_is_still_listed() -> None:
    async with trio.open_nursery() as nursery:
        registry: Registry[str, Counter] = Registry(lambda name: Counter(), nursery)
        first = registry.get_or_create("a")
        first.close()  # stopped (as by retirement), its task has not removed it yet
        with trio.fail_after(2):
            await registry.tell("a", Add(3))
            assert await registry.ask("a", Get) == 3
        assert registry.get("a") is not first
        nursery.cancel_scope.cancel()


class HesitantCounter(Counter):
    """Its idle check yields, so a sender can get a message in while it decides."""

    def __init__(self) -> None:
        super().__init__(idle_seconds=0.001)
        self.deciding = trio.Event()
        self.decide = trio.Event()

    async def idle(self) -> bool:
        self.deciding.set()
        await self.decide.wait()
        return True


async def test_a_message_sent_while_the_actor_goes_idle_is_handled_not_dropped() -> None:
    counter = HesitantCounter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter.run)
        await counter.deciding.wait()
        await counter.tell(Add(7))  # buffered while the actor is deciding to stop
        counter.decide.set()
        await wait_until(lambda: counter.total == 7)
