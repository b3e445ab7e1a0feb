"""``switchboard reset-demo``: delete every row the demo traffic made (by its marks, see
:mod:`web.apps.demo.marks`), in one transaction, while the server is stopped (a running server
keeps its aggregates in memory, so the command refuses while something answers on its port)."""

from __future__ import annotations

import socket

from actors.store.backend import Backend
from actors.store.sql import table_names
from actors.store.sqlite import SQLiteBackend
from web.apps.demo.clients import loopback
from web.apps.demo.marks import DEMO_CHAT_HOST, DEMO_GUILD, DEMO_PREFIX
from web.platform.runtime import store_backend
from web.platform.settings import Settings

RESET_STATEMENTS: list[tuple[str, str, tuple[str, ...]]] = [
    # (table that must exist, statement, parameters)
    (
        "analytics_events",
        "DELETE FROM analytics_events WHERE session_id LIKE ? OR user_id LIKE ?",
        (f"{DEMO_PREFIX}%", f"{DEMO_PREFIX}%"),
    ),
    ("guild_events", "DELETE FROM guild_events WHERE guild_id = ?", (DEMO_GUILD,)),
    (
        "chat_receipts",
        "DELETE FROM chat_receipts WHERE message_id IN (SELECT m.id FROM chat_messages m "
        "JOIN chat_chats c ON c.id = m.chat_id WHERE c.created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    (
        "chat_messages",
        "DELETE FROM chat_messages WHERE chat_id IN "
        "(SELECT id FROM chat_chats WHERE created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    (
        "chat_participants",
        "DELETE FROM chat_participants WHERE chat_id IN "
        "(SELECT id FROM chat_chats WHERE created_by = ?)",
        (DEMO_CHAT_HOST,),
    ),
    ("chat_chats", "DELETE FROM chat_chats WHERE created_by = ?", (DEMO_CHAT_HOST,)),
]


def reset_demo(backend: Backend) -> dict[str, int]:
    """Delete every row the demo traffic made; returns the rows deleted per table. Run it while
    the server is stopped (a running server keeps its aggregates in memory)."""
    if isinstance(backend, SQLiteBackend) and not backend.path.exists():
        return {}
    deleted: dict[str, int] = {}
    db = backend.open_writer([], [])
    try:
        db.execute(backend.begin)  # one transaction: all or nothing
        try:
            tables = table_names(db)
            for table, statement, params in RESET_STATEMENTS:
                if table in tables:
                    deleted[table] = db.execute(statement, params).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()
    return deleted


def server_running(host: str, port: int) -> bool:
    """Whether something accepts connections on the server's address (a running server)."""
    try:
        with socket.create_connection((loopback(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def reset_demo_command(settings: Settings) -> int:
    """``switchboard reset-demo``: the exit code (2 when a server is still running)."""
    if settings.port and server_running(settings.host, settings.port):
        print(
            f"switchboard: a server is running on {settings.host}:{settings.port}; "
            "stop it before reset-demo"
        )
        return 2
    backend = store_backend(settings)
    deleted = reset_demo(backend)
    database = backend.location
    if not deleted:
        print(f"switchboard: no demo data in {database}")
        return 0
    total = sum(deleted.values())
    detail = ", ".join(f"{table}: {count}" for table, count in deleted.items())
    print(f"switchboard: deleted {total} demo rows from {database} ({detail})")
    return 0
