"""The PostgreSQL backend (``database_url``): the database a cluster's nodes share.

psycopg 3's synchronous API, on the Store's threads (its async API needs asyncio): one writer
connection for the group commits, in autocommit mode so that the Store's own ``BEGIN``,
``SAVEPOINT`` and ``COMMIT`` are the transaction, and a small pool for reads. A commit is
durable when PostgreSQL answers it (``synchronous_commit`` is the server's, ``on`` by default),
so an ack still means committed. A writer whose connection broke (a server restart, a failover)
is reconnected before the next batch; the batch that saw it break was rolled back by the server
and is answered "not stored" (or "outcome unknown" when COMMIT itself was cut off).

The schema is applied at start under an advisory lock, so that nodes starting together do not
race on ``CREATE TABLE IF NOT EXISTS`` (which is not safe against concurrent creation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from actors.store.sql import Database, PostgresConnection, postgres_schema

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

T = TypeVar("T")
SCHEMA_LOCK = 0x5377_6974_6368  # "Switch": the advisory lock held while the schema is applied
CONNECT_TIMEOUT_SECONDS = 5
# one attempt waits this long for a row or table lock another session holds, then fails with
# lock_not_available and the Store retries the batch (until the write's deadline), as on SQLite
LOCK_TIMEOUT_MS = 250


def redacted(url: str) -> str:
    """``url`` without its password (what logs, errors and /health may show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresReader:
    """A pool of read connections (autocommit: each read sees what is committed)."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def run(self, op: Callable[[Database], T]) -> T:
        with self.pool.connection() as connection:
            return op(PostgresConnection(connection))

    def close(self) -> None:
        self.pool.close()


class PostgresBackend:
    name = "postgresql"
    begin = "BEGIN"

    def __init__(self, url: str, *, read_pool_size: int = 4) -> None:
        self.url = url
        self.read_concurrency = read_pool_size

    @property
    def location(self) -> str:
        return redacted(self.url)

    def _connect(self) -> PostgresConnection:
        import psycopg

        connection = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            options=f"-c lock_timeout={LOCK_TIMEOUT_MS}",
        )
        return PostgresConnection(connection)

    def open_writer(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> PostgresConnection:
        db = self._connect()
        try:
            db.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK,))
            try:
                _apply_schema(db, schema, migrations)
            finally:
                db.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK,))
        except BaseException:
            db.close()
            raise
        return db

    def open_reader(self) -> PostgresReader:
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.read_concurrency,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            timeout=CONNECT_TIMEOUT_SECONDS,
            check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
            open=False,
        )
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        return PostgresReader(pool)

    def check(
        self, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
    ) -> str | None:
        """Before listening: None when the server answers and the schema applies (tried in a
        transaction that is rolled back), else one line naming the database and the problem."""
        from actors.store.check import describe_open_failure
        from actors.store.faults import classify

        try:
            db = self._connect()
        except Exception as err:
            return f"{self.location}: {describe_open_failure(err)}"
        try:
            db.execute("BEGIN")
            try:
                _apply_schema(db, schema, migrations)
            finally:
                db.execute("ROLLBACK")
        except Exception as err:
            if classify(err) is not None:
                return f"{self.location}: {describe_open_failure(err)}"
            return f"{self.location}: has a different schema ({err})"
        finally:
            db.close()
        return None

    def usable(self, db: PostgresConnection) -> PostgresConnection:
        """The writer for the next batch: a new connection when the last one broke."""
        if not db.connection.broken and not db.connection.closed:
            return db
        db.close()
        return self._connect()


def _apply_schema(
    db: Database, schema: Sequence[str], migrations: Sequence[Callable[[Database], Any]]
) -> None:
    for statement in schema:
        db.execute(postgres_schema(statement))
    for migrate in migrations:
        migrate(db)
