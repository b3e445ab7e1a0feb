"""The Store actor on both backends: group commit, failure isolation, durability across another
connection, lock retry. The PostgreSQL cases run on the suite's private server."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from actors.store import Store
from actors.store.backend import Backend
from actors.store.postgres import PostgresBackend
from actors.store.sql import Database
from actors.store.sqlite import SQLiteBackend
from tests.support import postgres
from tests.support.waiting import wait_until

SCHEMA = "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value TEXT UNIQUE)"
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield SQLiteBackend(tmp_path / "db.sqlite")
    else:
        yield PostgresBackend(postgres.shared_server().create_database())


def other_connection(backend: Backend) -> Any:
    """A connection of its own (as another process would have)."""
    if isinstance(backend, SQLiteBackend):
        return sqlite3.connect(backend.path, isolation_level=None, check_same_thread=False)
    assert isinstance(backend, PostgresBackend)
    return psycopg.connect(backend.url, autocommit=True)


def insert(value: str) -> Callable[[Database], int]:
    def op(db: Database) -> int:
        row = db.execute("INSERT INTO items (value) VALUES (?) RETURNING id", (value,)).fetchone()
        return int(row[0])

    return op


def count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM items").fetchone()[0])


async def test_concurrent_writes_are_grouped_into_few_commits(backend: Backend) -> None:
    store = Store(backend, schema=[SCHEMA])
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
    await store.aclose()


async def test_a_failing_write_fails_alone(backend: Backend) -> None:
    store = Store(backend, schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await store.write(insert("dup"))
        results: dict[str, object] = {}

        async def attempt(value: str) -> None:
            try:
                results[value] = await store.write(insert(value))
            except INTEGRITY_ERRORS as err:
                results[value] = err

        async with trio.open_nursery() as writers:
            for value in ("a", "dup", "b"):
                writers.start_soon(attempt, value)
        assert isinstance(results["dup"], INTEGRITY_ERRORS)
        assert isinstance(results["a"], int) and isinstance(results["b"], int)
        assert await store.read(count) == 3
        nursery.cancel_scope.cancel()
    await store.aclose()


async def test_acknowledged_writes_are_committed(backend: Backend) -> None:
    store = Store(backend, schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        for i in range(10):
            await store.write(insert(f"x{i}"))
        # another connection (as a restarted process would) sees every acknowledged write
        other = other_connection(backend)
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 10
        other.close()
        nursery.cancel_scope.cancel()
    await store.aclose()


async def test_a_locked_database_delays_but_loses_nothing(backend: Backend) -> None:
    store = Store(backend, schema=[SCHEMA])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await store.write(insert("first"))
        locker = other_connection(backend)
        if isinstance(backend, SQLiteBackend):
            locker.execute("BEGIN EXCLUSIVE")
        else:  # a backup tool or a migration holding the table
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
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
    await store.aclose()
