"""Dashboard actions (``track_dashboard_action`` on the visitor feed), kept in the database.

``visitor_dashboard_actions`` holds one row per action a dashboard reported: when, which feed,
who (the token's subject; null for an anonymous dashboard), the action and its details (JSON).
Rows are written through the Store (group commit); the acknowledgement goes out after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from actors.store.sql import Database

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS visitor_dashboard_actions (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        feed TEXT NOT NULL,
        user_id TEXT,
        action TEXT NOT NULL,
        details BLOB
    )""",
)


def record(
    at: float, feed: str, user_id: str | None, action: str, details: dict[str, Any] | None
) -> Callable[[Database], int]:
    """A Store write op inserting one action; returns its id."""
    blob = None if details is None else msgspec.json.encode(details)

    def op(db: Database) -> int:
        row = db.execute(
            "INSERT INTO visitor_dashboard_actions (at, feed, user_id, action, details) "
            "VALUES (?,?,?,?,?) RETURNING id",
            (at, feed, user_id, action, blob),
        ).fetchone()
        return int(row[0])

    return op


def count(db: Database) -> int:
    """A Store read op: how many actions are recorded."""
    return int(db.execute("SELECT count(*) FROM visitor_dashboard_actions").fetchone()[0])
