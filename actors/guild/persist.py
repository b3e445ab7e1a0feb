"""Guild events in the Store: one table, written in the Store's group commit, read to rebuild.

Functions here run on the Store's database thread (``store.write(fn)`` / ``store.read(fn)``).
On PostgreSQL the nodes of a cluster append to the one table under the log's advisory lock, so
``seq`` is commit order and every node can follow the table by ``seq`` (:func:`after`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from actors.guild.model import GuildEvent
from actors.store.sql import Database, PostgresConnection

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS guild_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id TEXT NOT NULL,
        event_id TEXT,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        at REAL NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS guild_events_by_time ON guild_events (guild_id, at)",
    "CREATE INDEX IF NOT EXISTS guild_events_by_user ON guild_events (guild_id, kind, user_id)",
    """CREATE UNIQUE INDEX IF NOT EXISTS guild_events_by_id
        ON guild_events (guild_id, event_id) WHERE event_id IS NOT NULL""",
)

LOG_LOCK = 0x5377_4C6F_6702  # the guild log's advisory lock ("SwLog" 2)
MAX_SEQ = 2**62
_encode = msgspec.json.encode
_decoder = msgspec.json.Decoder(GuildEvent)


Op = Callable[[Database], list[GuildEvent]]


def _records(rows: list[tuple[int, bytes]]) -> list[GuildEvent]:
    return [msgspec.structs.replace(_decoder.decode(body), seq=seq) for seq, body in rows]


def insert(events: Sequence[GuildEvent]) -> Op:
    """A write op: store ``events`` (skipping ids already stored); returns the stored events
    with their ``seq``, in order."""

    def op(db: Database) -> list[GuildEvent]:
        if isinstance(db, PostgresConnection):  # seq in commit order, across nodes
            db.execute("SELECT pg_advisory_xact_lock(?)", (LOG_LOCK,))
        stored: list[GuildEvent] = []
        for event in events:
            row = db.execute(
                "INSERT INTO guild_events (guild_id, event_id, kind, user_id, at, body)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq",
                (
                    event.guild_id,
                    event.event_id,
                    event.kind,
                    event.user_id,
                    event.at,
                    _encode(event),
                ),
            ).fetchone()
            if row is None:  # an id this guild already has
                continue
            stored.append(msgspec.structs.replace(event, seq=int(row[0])))
        return stored

    return op


def load_window(guild_id: str, since: float, upto: int = MAX_SEQ) -> Op:
    """A read op: the guild's events with ``at > since`` and ``seq <= upto``, in (at, seq)
    order."""

    def op(db: Database) -> list[GuildEvent]:
        rows = db.execute(
            "SELECT seq, body FROM guild_events WHERE guild_id = ? AND at > ? AND seq <= ?"
            " ORDER BY at, seq",
            (guild_id, since, upto),
        ).fetchall()
        return _records(rows)

    return op


def load_latest_presence(guild_id: str, upto: int = MAX_SEQ) -> Op:
    """A read op: each user's latest presence event in the guild (any age, ``seq <= upto``),
    in seq order."""

    def op(db: Database) -> list[GuildEvent]:
        rows = db.execute(
            "SELECT seq, body FROM guild_events WHERE seq IN ("
            " SELECT MAX(seq) FROM guild_events WHERE guild_id = ? AND kind = 'presence'"
            " AND seq <= ? GROUP BY user_id) ORDER BY seq",
            (guild_id, upto),
        ).fetchall()
        return _records(rows)

    return op


def after(seq: int, limit: int) -> Op:
    """A read op: the next ``limit`` events of every guild after ``seq``, in seq order (what a
    node of a cluster follows)."""

    def op(db: Database) -> list[GuildEvent]:
        rows = db.execute(
            "SELECT seq, body FROM guild_events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return _records(rows)

    return op


def last_seq(db: Database) -> int:
    """A read op: the ``seq`` of the last stored guild event (0 when there is none)."""
    return int(db.execute("SELECT max(seq) FROM guild_events").fetchone()[0] or 0)


def expire(cutoff: float) -> Callable[[Database], int]:
    """Retention: delete guild events older than ``cutoff``; returns how many went."""

    def op(db: Database) -> int:
        return int(db.execute("DELETE FROM guild_events WHERE at < ?", (cutoff,)).rowcount)

    return op
