"""The event log: an append-only table written through the Store actor (group commit).

``analytics_events`` holds every accepted event, in the order it was committed (``seq``). Rows are
never updated or deleted; readers (the metrics aggregator here, the visitor session aggregator of
the visitor analytics) rebuild their state from it with :meth:`EventLog.since` and follow new events
as they are committed. ``id`` is unique: posting an id already in the log stores nothing.

``analytics_idempotency`` remembers each ``Idempotency-Key`` an ingest request carried (with how
many events it stored), so a retried request counts once. ``analytics_runs`` records when each run
of the server started and when it was last known to be up (a heartbeat), for ``uptime``.

On PostgreSQL several nodes append to the one table: each append first takes the log's advisory
lock (``pg_advisory_xact_lock``, held until its transaction ends), so ``seq`` is taken in commit
order and a node following the log by ``seq`` (:meth:`EventLog.after`) never passes a row that
commits later with a lower ``seq``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from actors.eventlog.events import Event
from actors.store import Store
from actors.store.sql import Database, PostgresConnection

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS analytics_events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        user_id TEXT,
        session_id TEXT,
        page TEXT,
        country TEXT,
        device TEXT,
        referrer TEXT,
        ts REAL NOT NULL,
        received_at REAL NOT NULL,
        properties BLOB,
        metadata BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS analytics_events_ts ON analytics_events (ts)",
    """CREATE TABLE IF NOT EXISTS analytics_idempotency (
        key TEXT PRIMARY KEY,
        events INTEGER NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS analytics_runs (
        run INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        last_seen REAL NOT NULL
    )""",
)

_COLUMNS = (
    "seq, id, name, user_id, session_id, page, country, device, referrer, ts, received_at, "
    "properties, metadata"
)
_INSERT = (
    "INSERT INTO analytics_events (id, name, user_id, session_id, page, country, device, "
    "referrer, ts, received_at, properties, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT DO NOTHING"
)
_MAX_SEQ = 2**62
LOG_LOCK = 0x5377_4C6F_6701  # the analytics log's advisory lock ("SwLog" 1)
_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append stored: the new events (with their ``seq``), how many were already there,
    and whether the whole request was a replay of an ``Idempotency-Key`` seen before."""

    events: tuple[Event, ...]
    duplicates: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    started_at: float
    last_seen: float


def lock_log(db: Database, key: int) -> None:
    """Hold the advisory lock ``key`` until this transaction ends (PostgreSQL; on SQLite the
    Store's single writer already orders every append)."""
    if isinstance(db, PostgresConnection):
        db.execute("SELECT pg_advisory_xact_lock(?)", (key,))


def _row(e: Event) -> tuple[object, ...]:
    return (
        e.id,
        e.name,
        e.user_id,
        e.session_id,
        e.page,
        e.country,
        e.device,
        e.referrer,
        e.timestamp,
        e.received_at,
        None if e.properties is None else _encode(e.properties),
        None if e.metadata is None else _encode(e.metadata),
    )


def _event(row: Sequence[Any]) -> Event:
    seq, id_, name, user, session, page, country, device, referrer, ts, received, props, meta = row
    return Event(
        seq=int(seq),
        id=str(id_),
        name=str(name),
        user_id=user,
        session_id=session,
        page=page,
        country=country,
        device=device,
        referrer=referrer,
        timestamp=float(ts),
        received_at=float(received),
        properties=None if props is None else _decode(props),
        metadata=None if meta is None else _decode(meta),
    )


class EventLog:
    """Appends and reads through the Store (never touches the database itself)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.add_schema(*SCHEMA)

    async def append(
        self, events: Sequence[Event], *, idempotency_key: str | None = None, now: float = 0.0
    ) -> Appended:
        """Store ``events`` in one write; returns once committed."""

        def op(db: Database) -> Appended:
            if idempotency_key is not None:
                seen = db.execute(
                    "SELECT 1 FROM analytics_idempotency WHERE key = ?", (idempotency_key,)
                ).fetchone()
                if seen is not None:
                    return Appended((), len(events), replayed=True)
            # One executemany for the batch (one C loop, not a Python call per event), then one
            # range read to learn each new row's seq: this transaction is the only writer (the
            # log's lock), so the rows it added are exactly those above the previous last seq.
            lock_log(db, LOG_LOCK)
            last = db.execute("SELECT max(seq) FROM analytics_events").fetchone()[0] or 0
            db.executemany(_INSERT, [_row(e) for e in events])
            new_seqs = dict(
                (str(id_), int(seq))
                for seq, id_ in db.execute(
                    "SELECT seq, id FROM analytics_events WHERE seq > ? ORDER BY seq", (last,)
                )
            )
            stored: list[Event] = []
            replace = msgspec.structs.replace
            for e in events:
                seq = new_seqs.pop(e.id, None)  # pop: a repeated id in the batch is stored once
                if seq is not None:
                    stored.append(replace(e, seq=seq))
            if idempotency_key is not None:
                db.execute(
                    "INSERT INTO analytics_idempotency (key, events, created_at) VALUES (?,?,?)",
                    (idempotency_key, len(stored), now),
                )
            return Appended(tuple(stored), len(events) - len(stored))

        return await self.store.write(op)

    async def since(
        self, ts: float, *, after_seq: int = 0, limit: int = 10_000, upto: int | None = None
    ) -> list[Event]:
        """Events with ``timestamp >= ts`` and ``after_seq < seq <= upto``, in log order (a
        page)."""
        last = _MAX_SEQ if upto is None else upto

        def op(db: Database) -> list[Event]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM analytics_events WHERE seq > ? AND seq <= ? AND ts >= ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, last, ts, limit),
            ).fetchall()
            return [_event(r) for r in rows]

        return await self.store.read(op)

    async def after(self, seq: int, limit: int) -> list[Event]:
        """The next ``limit`` events after ``seq``, in log order (what a follower reads)."""

        def op(db: Database) -> list[Event]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM analytics_events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            return [_event(r) for r in rows]

        return await self.store.read(op)

    async def last_seq(self) -> int:
        """The ``seq`` of the last committed event (0 for an empty log)."""

        def op(db: Database) -> int:
            return int(db.execute("SELECT max(seq) FROM analytics_events").fetchone()[0] or 0)

        return await self.store.read(op)

    async def latest(self, count: int, *, upto: int | None = None) -> list[Event]:
        """The last ``count`` events committed (up to ``upto``), newest first."""
        last = _MAX_SEQ if upto is None else upto

        def op(db: Database) -> list[Event]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM analytics_events WHERE seq <= ? "
                "ORDER BY seq DESC LIMIT ?",
                (last, count),
            ).fetchall()
            return [_event(r) for r in rows]

        return await self.store.read(op)

    async def count(self) -> int:
        def op(db: Database) -> int:
            return int(db.execute("SELECT count(*) FROM analytics_events").fetchone()[0])

        return await self.store.read(op)

    # --- runs (uptime marks) -------------------------------------------------------------------
    async def start_run(self, now: float) -> tuple[int, list[Run]]:
        """Record that a run starts now; returns its number and every earlier run."""

        def op(db: Database) -> tuple[int, list[Run]]:
            runs = [
                Run(float(a), float(b))
                for a, b in db.execute(
                    "SELECT started_at, last_seen FROM analytics_runs ORDER BY run"
                )
            ]
            row = db.execute(
                "INSERT INTO analytics_runs (started_at, last_seen) VALUES (?, ?) RETURNING run",
                (now, now),
            ).fetchone()
            return int(row[0]), runs

        return await self.store.write(op)

    async def mark_run(self, run: int, now: float) -> None:
        """Heartbeat: the run was up until ``now``."""

        def op(db: Database) -> None:
            db.execute("UPDATE analytics_runs SET last_seen = ? WHERE run = ?", (now, run))

        await self.store.write(op)

    async def expire(self, cutoff: float) -> int:
        """Retention: delete events stamped before ``cutoff`` and idempotency keys recorded
        before it; returns how many events went."""

        def op(db: Database) -> int:
            removed = db.execute("DELETE FROM analytics_events WHERE ts < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM analytics_idempotency WHERE created_at < ?", (cutoff,))
            return int(removed)

        removed: int = await self.store.write(op)
        return removed
