"""What the Store needs of a database: a writer connection, a way to run reads, and the
statement that opens a write transaction. :mod:`actors.store.sqlite` and
:mod:`actors.store.postgres` provide it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from actors.store.sql import Database

T = TypeVar("T")


class Writer(Database, Protocol):
    """The writer connection: statements, plus whether a transaction is open."""

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


class Reader(Protocol):
    """Runs a read operation on a connection of its own (never the writer's)."""

    def run(self, op: Callable[[Database], T]) -> T: ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str  # "sqlite" or "postgresql"
    begin: str  # the statement that opens a batch's transaction
    read_concurrency: int  # reads that may run at once

    @property
    def location(self) -> str:
        """Where the data is, as an operator may see it (a path, a URL without password)."""
        ...

    def open_writer(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> Writer: ...

    def open_reader(self) -> Reader: ...

    def check(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> str | None:
        """Before listening: None, or one line naming the database and what is wrong with it."""
        ...

    def usable(self, db: Any) -> Writer:
        """The writer to use for the next batch (a new one if ``db`` broke)."""
        ...
