"""The data folder and the database, checked before the server listens.

``serve`` and ``check-config`` refuse to go on with one line naming the file and the problem: a
data folder that cannot be written, a file that is not a SQLite database (garbage, truncated),
one whose pages are corrupt (``PRAGMA quick_check``), one that is read-only, or one whose tables
are not the ones the applications need (the schema is applied in a transaction that is rolled
back: checking changes nothing).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from actors.store.faults import classify

SQLITE_HEADER = b"SQLite format 3\x00"
CHECK_BUSY_TIMEOUT_MS = 5000
Op = Callable[[sqlite3.Connection], object]


class StartupFailed(Exception):
    """The server cannot start: ``str()`` is the one line to print."""


def describe_open_failure(err: BaseException) -> str:
    """What opening the database failed of, in an operator's words."""
    fault = classify(err)
    words = {
        "disk full": "the disk is full",
        "read-only": "is read-only (check its owner and permissions, and the mount)",
        "locked": "is locked by another process",
        "corrupt": "is corrupt or not a SQLite database",
        "I/O error": "cannot be read or written (I/O error)",
        "unreachable": "cannot be reached (is the database server up, and the URL right?)",
    }
    detail = " ".join(str(err).split())  # one line, whatever the driver's message spans
    return f"{words.get(fault, 'cannot be opened') if fault else 'cannot be opened'} ({detail})"


def check_data_folder(folder: Path) -> str | None:
    """None when ``folder`` exists (or can be made) and a file can be created in it."""
    if folder.exists() and not folder.is_dir():
        return f"{folder}: the data folder is not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        return f"{folder}: the data folder is not writable ({err.strerror or err})"
    return None


def check_database(path: Path, schema: Sequence[str], migrations: Sequence[Op] = ()) -> str | None:
    """None when ``path`` is absent (it will be created) or a sound database of this schema;
    otherwise ``"<path>: <problem>"``."""
    problem = check_data_folder(path.parent)
    if problem is not None or not path.exists():
        return problem
    if not path.is_file():
        return f"{path}: is not a file"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path}: is read-only (check its owner and permissions)"
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.exists() and not os.access(companion, os.R_OK | os.W_OK):
            return f"{companion}: is read-only (check its owner and permissions)"
    if path.stat().st_size == 0:
        return None  # an empty file is an empty database
    with open(path, "rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return (
                f"{path}: is not a SQLite database (wrong header: garbage or another kind of file)"
            )
    try:
        return _check_contents(path, schema, migrations)
    except sqlite3.Error as err:
        return f"{path}: {describe_open_failure(err)}"


def _check_contents(path: Path, schema: Sequence[str], migrations: Sequence[Op]) -> str | None:
    db = sqlite3.connect(path, isolation_level=None, timeout=CHECK_BUSY_TIMEOUT_MS / 1000)
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            first = rows[0][0] if rows else "no answer"
            return f"{path}: is corrupt (quick_check: {first})"
        db.execute("BEGIN")
        try:
            try:
                for statement in schema:
                    db.execute(statement)
                for migrate in migrations:
                    migrate(db)
            except sqlite3.Error as err:
                if classify(err) is not None:
                    raise
                return f"{path}: has a different schema ({err})"
            return _schema_difference(path, db, _expected(schema, migrations))
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
    finally:
        db.close()


def _expected(schema: Sequence[str], migrations: Sequence[Op]) -> sqlite3.Connection:
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    for statement in schema:
        fresh.execute(statement)
    for migrate in migrations:
        migrate(fresh)
    return fresh


def _columns(db: sqlite3.Connection, table: str) -> dict[str, tuple[int, object, int]]:
    rows = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    return {name: (notnull, default, pk) for _, name, _, notnull, default, pk in rows}


def _schema_difference(path: Path, db: sqlite3.Connection, fresh: sqlite3.Connection) -> str | None:
    tables = [
        name
        for (name,) in fresh.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        want, have = _columns(fresh, table), _columns(db, table)
        missing = sorted(set(want) - set(have))
        if missing:
            return f"{path}: has a different schema (table {table} lacks {', '.join(missing)})"
        unknown = [
            name
            for name, (notnull, default, pk) in have.items()
            if name not in want and notnull and default is None and not pk
        ]
        if unknown:
            return (
                f"{path}: has a different schema (table {table} requires unknown column(s) "
                f"{', '.join(sorted(unknown))})"
            )
    fresh.close()
    return None
