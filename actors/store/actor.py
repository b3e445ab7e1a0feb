"""The Store actor: the one owner of the database, with group commit, failing fast and truthfully.

Every write is a function of a :class:`~actors.store.sql.Database` (a connection of the backend:
SQLite, :mod:`actors.store.sqlite`, or PostgreSQL, :mod:`actors.store.postgres`) sent as a
:class:`Write` message. The actor
takes everything waiting in its mailbox (up to ``max_batch``), runs the writes in ONE transaction
on its database thread (each inside a savepoint, so one failing write fails alone), commits, and
only then answers each writer. An answered write is committed: a process killed right after an
ack loses nothing acknowledged (each backend's module says how).

Every write is answered within ``write_timeout_seconds`` of being queued, and the answer is true
(see :mod:`actors.store.faults`): a batch that hits a storage fault is rolled back and its writes
fail with :class:`NotStored`; a lock held by another process is retried until the deadline, then
the same; a COMMIT that itself fails leaves the outcome :class:`OutcomeUnknown`. Whatever a batch
dies of, each of its writers gets an answer.

Reads never queue behind writes: they run on a read-only connection of their own (WAL readers
need no lock and no free space), so history, room lists and dashboards keep answering while the
writer is blocked or failing. A Store that crashes is not restarted (that would only mask the
fault): it turns ``failed`` in :attr:`Store.health` and refuses every later write at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio

from actors.runtime import Actor, AskTimeout, Reply
from actors.store.backend import Backend, Reader, Writer
from actors.store.faults import (
    RETRIED,
    NotStored,
    OutcomeUnknown,
    ReadFailed,
    StorageHealth,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    classify,
)
from actors.store.sql import Database
from actors.store.sqlite import SQLiteBackend

log = logging.getLogger("switchboard.store")

T = TypeVar("T")
Op = Callable[[Database], Any]
ANSWER_GRACE_SECONDS = 2.0  # past the write deadline: the attempt running then may finish
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Write:
    op: Op
    reply: Reply[Any]
    deadline: float = math.inf  # trio time by which the writer is answered


@dataclass(frozen=True, slots=True)
class Read:
    """Kept for callers that queue a read like a write; it runs on the read connection."""

    op: Op
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


class _RolledBack(Exception):
    """The batch's transaction was rolled back (or never began): nothing of it is stored."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _CommitFailed(Exception):
    """COMMIT raised and the transaction could not be shown to be rolled back."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Gate:
    """When the Store may give up on what it is doing (shutdown sets ``hard_deadline``)."""

    hard_deadline: float = math.inf
    scopes: set[trio.CancelScope] = field(default_factory=set)


class Store(Actor):
    kind = "store"

    def __init__(
        self,
        backend: Backend | Path | str,
        *,
        schema: list[str] | None = None,
        max_batch: int = 1024,
        mailbox_size: int = 4096,
        synchronous: str = "NORMAL",
        write_timeout_seconds: float = 5.0,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        if isinstance(backend, Path | str):  # a SQLite file
            backend = SQLiteBackend(backend, synchronous)
        self.backend: Backend = backend
        self.path = backend.path if isinstance(backend, SQLiteBackend) else None
        self.schema = list(schema or [])
        self.migrations: list[Op] = []
        self.max_batch = max_batch
        self.write_timeout_seconds = write_timeout_seconds
        self.store_stats = StoreStats()
        self.health = StorageHealth()
        self._db: Writer | None = None  # the writer, opened on the database thread
        self._reader: Reader | None = None
        self._thread = trio.CapacityLimiter(1)  # one writer thread at a time, always in order
        self._read_thread = trio.CapacityLimiter(backend.read_concurrency)
        self._opened = trio.Event()
        self._gate = _Gate()
        # called after each committed batch with (writes in it, seconds it took): /metrics
        self.on_commit: Callable[[int, float], None] | None = None
        self.busy = False  # a batch is being committed

    # --- the outside ---------------------------------------------------------------------------
    @property
    def failed(self) -> bool:
        return self.health.state == "failed" and self.health.fault == "unavailable"

    async def enqueue(self, op: Op, reply: Reply[Any], timeout: float | None = None) -> None:
        """Queue ``op``; ``reply`` gets its answer (within the write timeout). A write that cannot
        even be queued in time (the Store is failed or its mailbox stays full) is answered
        :class:`NotStored` at once."""
        if self.failed:
            reply.fail(StoreUnavailable("unavailable", self.health.last_error or ""))
            return
        wait = self.write_timeout_seconds if timeout is None else timeout
        deadline = trio.current_time() + wait
        with trio.move_on_after(wait):
            await self.tell(Write(op, reply, deadline))
            return
        self.health.write_failed("locked", TimeoutError("store queue full"), 1)
        reply.fail(NotStored("locked", f"the store's queue stayed full for {wait:g}s"))

    async def write(self, op: Callable[[Database], T], timeout: float | None = None) -> T:
        """Run ``op`` in a transaction; returns once it is committed, raises a
        :class:`~actors.store.faults.StoreError` (or the op's own error) when it is not."""
        reply: Reply[T] = Reply()
        wait = self.write_timeout_seconds if timeout is None else timeout
        await self.enqueue(op, reply, wait)
        with trio.move_on_after(wait + ANSWER_GRACE_SECONDS):
            return await reply.wait()
        raise OutcomeUnknown("locked", f"no answer from the store within {wait:g}s")

    async def read(self, op: Callable[[Database], T], timeout: float = READ_TIMEOUT_SECONDS) -> T:
        """Run ``op`` on the read connection (never behind the writer's queue)."""
        with trio.move_on_after(timeout):
            await self._opened.wait()
            reader = self._reader
            if reader is None:
                raise StoreUnavailable("unavailable", self.health.last_error or "not open")
            try:
                value: T = await trio.to_thread.run_sync(
                    reader.run, op, limiter=self._read_thread, abandon_on_cancel=True
                )
            except Exception as err:
                fault = classify(err)
                if fault is None:
                    raise
                self.health.read_failed(fault, err)
                raise ReadFailed(fault, str(err)) from err
            self.store_stats.reads += 1
            return value
        raise AskTimeout(f"store read did not finish within {timeout}s")

    def add_schema(self, *statements: str) -> None:
        """Schema statements (idempotent: CREATE ... IF NOT EXISTS), applied at start."""
        self.schema.extend(statements)

    def add_migration(self, op: Op) -> None:
        """An idempotent change to an existing database (run after the schema, at start)."""
        self.migrations.append(op)

    def give_up_at(self, deadline: float) -> None:
        """Shutdown: whatever the Store is doing is abandoned at ``deadline`` (trio time)."""
        self._gate.hard_deadline = deadline
        for scope in self._gate.scopes:
            scope.deadline = min(scope.deadline, deadline)

    # --- opening -------------------------------------------------------------------------------
    def _open(self) -> Writer:
        return self.backend.open_writer(self.schema, self.migrations)

    async def open(self) -> None:
        """Open both connections (the schema applied); raises what opening raised."""
        if self._db is not None:
            return
        try:
            self._db = await trio.to_thread.run_sync(self._open, limiter=self._thread)
            self._reader = await trio.to_thread.run_sync(
                self.backend.open_reader, limiter=self._read_thread
            )
        except Exception as exc:
            fault = classify(exc) or "unavailable"
            self.health.failed(exc, fault)
            self._opened.set()
            raise
        self._opened.set()

    # --- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.open()
            await self._serve()
        except Exception as exc:  # a crash: the database is unusable; never a restart loop
            if self.health.state != "failed":
                self.health.failed(exc)
            self.health.fault = "unavailable"
            log.error("the store failed: %s; every write is refused until a restart", exc)
            self._opened.set()
            await self._refuse_all()

    async def _serve(self) -> None:
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

    async def _refuse_all(self) -> None:
        """After a crash: answer every queued and later write at once, until the mailbox closes."""
        error = StoreUnavailable("unavailable", self.health.last_error or "")
        async for message in self._inbox_receive:
            if isinstance(message, Write | Read):
                message.reply.fail(error)

    async def _process(self, batch: list[Any]) -> None:
        self.busy = True
        try:
            await self._process_batch(batch)
        finally:
            self.busy = False

    async def _process_batch(self, batch: list[Any]) -> None:
        writes: list[Write] = [m for m in batch if type(m) is Write]
        reads: list[Read] = [m for m in batch if type(m) is Read]
        for query in reads:  # queued reads run on the read connection, not the writer's
            trio.lowlevel.spawn_system_task(self._queued_read, query)
        if not writes:
            return
        try:
            outcomes = await self._commit(writes)
        except BaseException as exc:  # whatever it died of, every writer hears of it
            unknown = OutcomeUnknown(classify(exc) or "unavailable", f"the store crashed: {exc}")
            for message in writes:
                message.reply.fail(unknown)
            raise
        for message, (ok, value) in zip(writes, outcomes, strict=True):
            if ok:
                message.reply.send(value)
            else:
                message.reply.fail(value)

    async def _queued_read(self, query: Read) -> None:
        try:
            value = await self.read(query.op)
        except Exception as exc:
            query.reply.fail(exc)
        else:
            query.reply.send(value)

    # --- committing ----------------------------------------------------------------------------
    async def _commit(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        """Run and commit ``writes``, retrying a lock until the earliest writer's deadline."""
        own = trio.current_time() + self.write_timeout_seconds
        deadline = min(min(w.deadline for w in writes), own, self._gate.hard_deadline)
        backoff = 0.01
        while True:
            started = time.perf_counter()
            try:
                await self._reconnect_if_broken(deadline)
                outcomes = await self._attempt(writes, deadline + ANSWER_GRACE_SECONDS)
            except _RolledBack as err:
                fault = classify(err.cause)
                if fault is None:
                    raise err.cause from None
                if fault in RETRIED and trio.current_time() + backoff < deadline:
                    self.store_stats.retries += 1
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, 0.25)
                    continue
                return self._failed(writes, NotStored(fault, str(err.cause)), err.cause)
            except _CommitFailed as err:
                fault = classify(err.cause) or "I/O error"
                return self._failed(writes, OutcomeUnknown(fault, str(err.cause)), err.cause)
            self._committed(writes, time.perf_counter() - started)
            return outcomes

    async def _reconnect_if_broken(self, deadline: float) -> None:
        """A database server's connection that broke is replaced before the batch begins, so
        that a reconnect that fails or hangs fails the batch as not stored (nothing began)."""
        db = self._db
        if db is None:
            raise _RolledBack(StoreUnavailable("unavailable", "the store is closed"))
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            self._gate.scopes.add(scope)
            try:
                self._db = await trio.to_thread.run_sync(
                    self.backend.usable, db, limiter=self._thread, abandon_on_cancel=True
                )
                return
            except Exception as exc:
                raise _RolledBack(exc) from exc
            finally:
                self._gate.scopes.discard(scope)
        raise _RolledBack(NotStored("unreachable", "the database server did not answer in time"))

    async def _attempt(self, writes: list[Write], give_up_at: float) -> list[tuple[bool, Any]]:
        """One try on the database thread, shielded from cancellation (a batch in flight is
        finished and answered, even during shutdown) but abandoned at ``give_up_at``."""
        with trio.CancelScope(shield=True, deadline=give_up_at) as scope:
            self._gate.scopes.add(scope)
            try:
                return await trio.to_thread.run_sync(
                    self._apply, writes, limiter=self._thread, abandon_on_cancel=True
                )
            finally:
                self._gate.scopes.discard(scope)
        cause = TimeoutError("the database did not finish the commit in time")
        raise _CommitFailed(StoreTimeout(f"database is locked: {cause}"))

    def _failed(
        self, writes: list[Write], error: StoreError, cause: BaseException
    ) -> list[tuple[bool, Any]]:
        self.store_stats.failed_writes += len(writes)
        self.health.write_failed(error.fault, cause, len(writes))
        log.warning("store: %d write(s) %s", len(writes), error)
        return [(False, error)] * len(writes)

    def _committed(self, writes: list[Write], seconds: float) -> None:
        stats = self.store_stats
        stats.commit_seconds_total += seconds
        if self.on_commit is not None:
            self.on_commit(len(writes), seconds)
        stats.batches += 1
        stats.writes += len(writes)
        stats.last_batch_size = len(writes)
        stats.largest_batch = max(stats.largest_batch, len(writes))
        self.health.committed()

    def _apply(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        db = self._db
        if db is None:
            raise _RolledBack(StoreUnavailable("unavailable", "the store is closed"))
        outcomes: list[tuple[bool, Any]] = []
        if db.in_transaction and not _rollback(db):  # left open by a failed rollback
            raise _RolledBack(StoreTimeout("database is locked: rollback failed"))
        try:
            db.execute(self.backend.begin)
            _lock_rows_in_order(db, writes)
            for message in writes:
                outcomes.append(self._apply_one(db, message))
        except BaseException as exc:
            _rollback(db)
            raise _RolledBack(exc) from exc
        try:
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction and _rollback(db):
                raise _RolledBack(exc) from exc
            raise _CommitFailed(exc) from exc
        return outcomes

    def _apply_one(self, db: Writer, message: Write) -> tuple[bool, Any]:
        db.execute("SAVEPOINT op")
        try:
            value = message.op(db)
        except Exception as exc:
            if classify(exc) is not None:  # a storage fault: the whole batch is rolled back
                raise
            db.execute("ROLLBACK TO op")
            db.execute("RELEASE op")
            self.store_stats.failed_writes += 1
            return (False, exc)
        db.execute("RELEASE op")
        return (True, value)

    async def aclose(self) -> None:
        """Close the database (after the mailbox is drained)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await trio.to_thread.run_sync(reader.close, limiter=self._read_thread)
        db, self._db = self._db, None
        if db is not None:
            await trio.to_thread.run_sync(db.close, limiter=self._thread)


def _lock_rows_in_order(db: Writer, writes: list[Write]) -> None:
    """Writes that lock a contended row (an op with ``lock_key`` and ``lock``: a chat's sequence
    row) have those rows locked first, sorted by key: two nodes' batches touching the same rows
    take them in the same order and never deadlock."""
    locks: dict[tuple[str, str], Callable[[Database], None]] = {}
    for message in writes:
        key = getattr(message.op, "lock_key", None)
        if key is not None:
            locks[key] = message.op.lock  # type: ignore[attr-defined]
    if len(locks) > 1:
        for key in sorted(locks):
            locks[key](db)


def _rollback(db: Writer) -> bool:
    """Roll back what is open; True when nothing of the transaction remains."""
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    except Exception:
        return not db.in_transaction
    return True
