"""The Store actor: group commit, failure isolation, durability across reopen, lock retry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from actors.store import Store
from tests.support.waiting import wait_until

SCHEMA = "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value TEXT UNIQUE)"


def insert(value: str):
    def op(db: sqlite3.Connection) -> int:
        return db.execute("INSERT INTO items (value) VALUES (?)", (value,)).lastrowid or 0

    return op


def count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM items").fetchone()[0]


async def test_concurrent_writes_are_grouped_into_few_commits(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite", schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        async with trio.open_nursery() as writers:
            for i in range(200):
                writers.start_soon(store.write, insert(f"v{i}"))
        assert await store.read(count) == 200
        assert store.store_stats.writes == 200
        assert store.store_stats.batches < 50  # many writes per transaction
        assert store.store_stats.largest_batch > 1
        nursery.cancel_scope.cancel()


async def test_a_failing_write_fails_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite", schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await store.write(insert("dup"))
        results: dict[str, object] = {}

        async def attempt(value: str) -> None:
            try:
                results[value] = await store.write(insert(value))
            except sqlite3.IntegrityError as err:
                results[value] = err

        async with trio.open_nursery() as writers:
            for value in ("a", "dup", "b"):
                writers.start_soon(attempt, value)
        assert isinstance(results["dup"], sqlite3.IntegrityError)
        assert isinstance(results["a"], int) and isinstance(results["b"], int)
        assert await store.read(count) == 3
        nursery.cancel_scope.cancel()


async def test_acknowledged_writes_are_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = Store(path, schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        for i in range(10):
            await store.write(insert(f"x{i}"))
        # another connection (as a restarted process would) sees every acknowledged write
        other = sqlite3.connect(path)
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 10
        other.close()
        nursery.cancel_scope.cancel()


async def test_a_locked_database_delays_but_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = Store(path, schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await store.write(insert("first"))
        locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        done = trio.Event()

        async def write_while_locked() -> None:
            await store.write(insert("second"))
            done.set()

        nursery.start_soon(write_while_locked)
        await wait_until(lambda: store.store_stats.retries > 0, 10)  # it saw the lock
        assert not done.is_set()
        locker.execute("ROLLBACK")
        locker.close()
        with trio.fail_after(10):
            await done.wait()
        assert await store.read(count) == 2
        nursery.cancel_scope.cancel()
