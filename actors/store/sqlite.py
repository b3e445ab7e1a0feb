"""The SQLite backend: the embedded default, one file in the data folder.

WAL mode: readers on their own connection never wait for the writer, and a commit is on disk
(``synchronous=NORMAL``: survives a killed process; ``FULL``: also a power loss) when the Store
answers. ``BEGIN IMMEDIATE`` takes the write lock at the start of a batch, so a lock held by
another process shows up at once rather than halfway through.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from actors.store.check import check_database
from actors.store.sql import Database

SQLITE_BUSY_TIMEOUT_MS = 250  # one attempt waits this long for a lock, then the Store retries
T = TypeVar("T")


class SQLiteReader:
    """The read-only connection; the Store runs one read on it at a time."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def run(self, op: Callable[[Database], T]) -> T:
        return op(self.connection)

    def close(self) -> None:
        self.connection.close()


class SQLiteBackend:
    name = "sqlite"
    begin = "BEGIN IMMEDIATE"
    read_concurrency = 1  # one connection: sqlite3 objects are not shared between threads

    def __init__(self, path: Path | str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous

    @property
    def location(self) -> str:
        return str(self.path)

    def open_writer(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA foreign_keys=ON")
            for statement in schema:
                db.execute(statement)
            for migrate in migrations:
                migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def open_reader(self) -> SQLiteReader:
        reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        reader.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        reader.execute("PRAGMA query_only=ON")
        return SQLiteReader(reader)

    def check(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> str | None:
        """Before listening: None, or the one line saying what is wrong with the file."""
        return check_database(self.path, schema, migrations)

    def usable(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """The writer to use for the next batch (a file connection never needs reopening)."""
        return db
