"""The Store and the chat room with the project's own classes, a fault injected: a COMMIT that
raises, a batch that crashes, an actor that crashes, a commit stuck at shutdown. Every writer
gets a true answer, the room keeps working, a failed Store refuses at once and is not restarted."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.chat import db as chat_db
from actors.chat.model import Outcome, User
from actors.chat.room import ChatRoomActor, Committed, SendMessage
from actors.clock import Clock
from actors.runtime import Actor, ActorCrashed, Reply, handles, supervise
from actors.store import Store
from actors.store.faults import NotStored, OutcomeUnknown, StoreError, StoreUnavailable

SCHEMA = "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value TEXT UNIQUE)"
MALFORMED = "database disk image is malformed"


def insert(value: str) -> Any:
    def op(db: sqlite3.Connection) -> int:
        return db.execute("INSERT INTO items (value) VALUES (?)", (value,)).lastrowid or 0

    return op


def values(db: sqlite3.Connection) -> list[str]:
    return [v for (v,) in db.execute("SELECT value FROM items ORDER BY id")]


class FailingCommit:
    """The writer's connection, whose next COMMIT raises ``DatabaseError`` (once): ``before``
    it runs (nothing committed) or ``after`` (committed, yet reported as failed)."""

    def __init__(self, db: sqlite3.Connection, when: str) -> None:
        self.db = db
        self.when = when
        self.armed = True

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            if self.when == "after":
                self.db.execute(sql)
            raise sqlite3.DatabaseError(MALFORMED)
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def opened(
    path: Path, schema: Iterable[str] = (SCHEMA,), migrations: Iterable[Any] = (), **kw: Any
) -> Store:
    store = Store(path, schema=list(schema), **kw)
    for migration in migrations:
        store.add_migration(migration)
    await store.open()
    return store


@pytest.mark.parametrize(("when", "answer"), [("before", NotStored), ("after", OutcomeUnknown)])
async def test_a_commit_that_raises_answers_every_writer_truthfully(
    tmp_path: Path, when: str, answer: type[StoreError]
) -> None:
    store = await opened(tmp_path / "db.sqlite")
    store._db = FailingCommit(store._db, when)
    results: dict[str, object] = {}

    async def attempt(value: str) -> None:
        try:
            results[value] = await store.write(insert(value))
        except StoreError as err:
            results[value] = err

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        async with trio.open_nursery() as writers:
            for value in ("a", "b", "c"):
                writers.start_soon(attempt, value)
        assert all(isinstance(r, answer) for r in results.values()), results
        assert await store.write(insert("d")) > 0  # the next batch commits
        stored = sorted(await store.read(values))
        assert stored == (["a", "b", "c", "d"] if when == "after" else ["d"])
        assert store.health.fault == "corrupt" and store.health.write_failures == 3
        nursery.cancel_scope.cancel()


class Emitted:
    """The room's namespace, as far as sending goes: what it was told to emit."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.rooms: Any = None

    async def emit(
        self,
        event: str,
        *args: object,
        to: str | Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        volatile: bool = False,
    ) -> None:
        self.events.append((event, args[0] if args else None))

    emit_here = emit  # one node: this node's members are all the members


async def nothing(committed: Committed) -> None:
    pass


@pytest.mark.parametrize("when", ["before", "after"])
async def test_the_room_keeps_working_after_a_failed_commit(tmp_path: Path, when: str) -> None:
    store = await opened(tmp_path / "db.sqlite", chat_db.SCHEMA, chat_db.MIGRATIONS)
    kim = User("kim", "Kim")
    emitter = Emitted()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await store.write(chat_db.create_chat("c1", "Room", "", "kim", [], 1.0))
        store._db = FailingCommit(store._db, when)
        room = ChatRoomActor("c1", store=store, emitter=emitter, clock=Clock(), on_commit=nothing)
        nursery.start_soon(room.run)

        async def send(content: str, client_id: str | None) -> Outcome[Any]:
            out: Outcome[Any] = await room.ask(
                lambda r: SendMessage(kim, content, "text", r, client_id), timeout=10
            )
            return out

        failed = await send("one", "c-1")
        assert not failed.ok and failed.error == (
            "not_stored" if when == "before" else "outcome_unknown"
        )
        assert (await send("two", "c-2")).ok  # the room is not wedged
        retried = await send("one", "c-1")  # the client's retry is stored once
        assert retried.ok
        news = [data.content for event, data in emitter.events if event == "message:new"]
        assert sorted(news) == ["one", "two"]  # each broadcast once, "one" late if need be
        count = await store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM chat_messages").fetchone()[0]
        )
        assert count == 2
        nursery.cancel_scope.cancel()


async def test_a_batch_that_crashes_answers_its_writers_and_the_store_stays_failed(
    tmp_path: Path,
) -> None:
    store = await opened(tmp_path / "db.sqlite")

    def crash(writes: object) -> object:
        raise RuntimeError("a bug in the store")

    store._apply = crash  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervise, store)
        with pytest.raises(OutcomeUnknown):
            await store.write(insert("a"), timeout=30)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):  # refused at once, not after a timeout
            await store.write(insert("b"), timeout=30)
        assert time.monotonic() - started < 5
        assert store.health.state == "failed" and store.health.fault == "unavailable"
        assert store.stats.restarts == 0  # never a restart loop
        assert await store.read(values) == []  # reads still answer
        nursery.cancel_scope.cancel()


class Ask:
    def __init__(self, reply: Reply[int]) -> None:
        self.reply = reply


class Asked(Actor):
    kind = "asked"

    @handles(Ask)
    async def _boom(self, message: Ask) -> None:
        raise RuntimeError("boom")


async def test_an_actor_that_crashes_answers_its_asker() -> None:
    actor = Asked()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervise, actor)
        with pytest.raises(ActorCrashed):
            await actor.ask(Ask, timeout=30)
        nursery.cancel_scope.cancel()


async def test_shutdown_abandons_a_commit_that_does_not_finish(tmp_path: Path) -> None:
    store = await opened(tmp_path / "db.sqlite", write_timeout_seconds=60)

    def stuck(db: sqlite3.Connection) -> None:
        time.sleep(30)  # a disk that does not answer

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run)
            reply: Reply[None] = Reply()
            await store.enqueue(stuck, reply)
            await trio.sleep(0.2)
            store.give_up_at(trio.current_time() + 0.5)
            with pytest.raises(OutcomeUnknown):
                await reply.wait()
            nursery.cancel_scope.cancel()
