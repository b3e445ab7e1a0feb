"""The Store actor: the one owner of the database, with group commit.

Every write is a function of a ``sqlite3.Connection`` sent as a :class:`Write` message. The actor
takes everything waiting in its mailbox (up to ``max_batch``), runs the writes in ONE transaction
on its database thread (each inside a savepoint, so one failing write fails alone), commits, and
only then answers each writer. An answered write is committed: SQLite in WAL mode, so a process
killed right after an ack loses nothing acknowledged (``synchronous=FULL`` also survives power loss;
see the ``store_synchronous`` setting).

A locked or briefly unavailable database delays the batch (retried with backoff up to
``busy_timeout_seconds``); nothing in it is dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from actors.runtime import Actor, Reply

log = logging.getLogger("switchboard.store")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Write:
    op: Callable[[sqlite3.Connection], Any]
    reply: Reply[Any]


@dataclass(frozen=True, slots=True)
class Read:
    op: Callable[[sqlite3.Connection], Any]
    reply: Reply[Any]


@dataclass
class StoreStats:
    batches: int = 0
    writes: int = 0
    failed_writes: int = 0
    reads: int = 0
    retries: int = 0
    last_batch_size: int = 0
    largest_batch: int = 0
    commit_seconds_total: float = 0.0


class Store(Actor):
    kind = "store"

    def __init__(
        self,
        path: Path | str,
        *,
        schema: list[str] | None = None,
        max_batch: int = 1024,
        mailbox_size: int = 4096,
        synchronous: str = "NORMAL",
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.path = Path(path)
        self.schema = list(schema or [])
        self.max_batch = max_batch
        self.synchronous = synchronous
        self.busy_timeout_seconds = busy_timeout_seconds
        self.store_stats = StoreStats()
        self._db: Any = None  # the sqlite3.Connection, opened on the database thread
        self._thread = trio.CapacityLimiter(1)  # one database thread at a time, always in order
        # called after each committed batch with (writes in it, seconds it took): /metrics
        self.on_commit: Callable[[int, float], None] | None = None
        self.busy = False  # a batch is being committed

    # --- the outside ---------------------------------------------------------------------------
    async def write(self, op: Callable[[sqlite3.Connection], T], timeout: float = 60.0) -> T:
        """Run ``op`` in a transaction; returns once it is committed."""
        result: T = await self.ask(lambda reply: Write(op, reply), timeout)
        return result

    async def read(self, op: Callable[[sqlite3.Connection], T], timeout: float = 60.0) -> T:
        result: T = await self.ask(lambda reply: Read(op, reply), timeout)
        return result

    def add_schema(self, *statements: str) -> None:
        """Schema statements (idempotent: CREATE ... IF NOT EXISTS), applied at start."""
        self.schema.extend(statements)

    # --- the inside ----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=1000")
        db.execute("PRAGMA foreign_keys=ON")
        for statement in self.schema:
            db.execute(statement)
        return db

    async def run(self) -> None:
        if self._db is None:
            self._db = await trio.to_thread.run_sync(self._open, limiter=self._thread)
        receive = self._inbox_receive
        while True:
            try:
                first = await receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            await self._process(batch)

    async def _process(self, batch: list[Any]) -> None:
        self.busy = True
        try:
            await self._process_batch(batch)
        finally:
            self.busy = False

    async def _process_batch(self, batch: list[Any]) -> None:
        writes: list[Write] = [m for m in batch if type(m) is Write]
        reads: list[Read] = [m for m in batch if type(m) is Read]
        if writes:
            # shielded: a batch in flight is finished and answered even during shutdown
            with trio.CancelScope(shield=True):
                outcomes = await self._commit(writes)
            for message, (ok, value) in zip(writes, outcomes, strict=True):
                if ok:
                    message.reply.send(value)
                else:
                    message.reply.fail(value)
        for query in reads:
            try:
                value = await trio.to_thread.run_sync(query.op, self._db, limiter=self._thread)
            except Exception as exc:
                query.reply.fail(exc)
            else:
                query.reply.send(value)
            self.store_stats.reads += 1

    async def _commit(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        deadline = trio.current_time() + self.busy_timeout_seconds
        backoff = 0.01
        while True:
            started = time.perf_counter()
            try:
                outcomes = await trio.to_thread.run_sync(self._apply, writes, limiter=self._thread)
            except sqlite3.OperationalError as err:  # locked/busy: retry the whole batch
                if trio.current_time() > deadline:
                    return [(False, err)] * len(writes)
                self.store_stats.retries += 1
                log.warning("store busy (%s); retrying batch of %d", err, len(writes))
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            stats = self.store_stats
            seconds = time.perf_counter() - started
            stats.commit_seconds_total += seconds
            if self.on_commit is not None:
                self.on_commit(len(writes), seconds)
            stats.batches += 1
            stats.writes += len(writes)
            stats.last_batch_size = len(writes)
            stats.largest_batch = max(stats.largest_batch, len(writes))
            return outcomes

    def _apply(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        db = self._db
        assert db is not None
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for message in writes:
                db.execute("SAVEPOINT op")
                try:
                    value = message.op(db)
                except sqlite3.OperationalError as err:
                    if "locked" in str(err) or "busy" in str(err):
                        raise
                    db.execute("ROLLBACK TO op")
                    outcomes.append((False, err))
                    self.store_stats.failed_writes += 1
                except Exception as exc:
                    db.execute("ROLLBACK TO op")
                    outcomes.append((False, exc))
                    self.store_stats.failed_writes += 1
                else:
                    outcomes.append((True, value))
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    async def aclose(self) -> None:
        """Close the database (after the mailbox is drained)."""
        if self._db is not None:
            db, self._db = self._db, None
            await trio.to_thread.run_sync(db.close, limiter=self._thread)
