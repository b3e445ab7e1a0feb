"""The chat tables and every statement on them, as plain functions of a Store connection
(:class:`~actors.store.sql.Database`: SQLite or PostgreSQL) that the Store actor runs (writes
inside its group-committed transaction).

Each chat numbers its messages 1, 2, 3... (``chat_seq``): the number is taken from the chat's row
(``chat_chats.last_seq``) inside the insert's transaction, so the row is locked until the commit.
Per chat, sequence order is commit order and there are no gaps, whichever node inserted: every
node delivers a chat's messages by that number, and fills a gap from here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from actors.chat.model import ChatRecord, ReceiptKind, StoredMessage
from actors.store.sql import Database, column_names

T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS chat_chats (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_activity REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS chat_participants (
        chat_id TEXT NOT NULL REFERENCES chat_chats(id),
        user_id TEXT NOT NULL,
        joined_at REAL NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    )""",
    "CREATE INDEX IF NOT EXISTS chat_participants_user ON chat_participants(user_id)",
    """CREATE TABLE IF NOT EXISTS chat_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        chat_id TEXT NOT NULL REFERENCES chat_chats(id),
        user_id TEXT NOT NULL,
        username TEXT NOT NULL,
        content TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at REAL NOT NULL,
        client_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS chat_messages_chat ON chat_messages(chat_id, seq)",
    """CREATE TABLE IF NOT EXISTS chat_receipts (
        message_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
        at REAL NOT NULL,
        PRIMARY KEY (message_id, user_id, kind)
    )""",
)

_MESSAGE_COLUMNS = "chat_seq, id, chat_id, user_id, username, content, type, created_at"


def add_client_ids(db: Database) -> None:
    """Migration: the sender's own id of a message (``clientMessageId``), unique per chat and
    sender, so a retried send is stored once. Databases made before it get the column."""
    if "client_id" not in column_names(db, "chat_messages"):
        db.execute("ALTER TABLE chat_messages ADD COLUMN client_id TEXT")
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_client "
        "ON chat_messages(chat_id, user_id, client_id) WHERE client_id IS NOT NULL"
    )


def add_chat_sequences(db: Database) -> None:
    """Migration: the per-chat sequence (``chat_chats.last_seq``, ``chat_messages.chat_seq``).
    Messages stored before it are numbered in their insertion order."""
    if "last_seq" not in column_names(db, "chat_chats"):
        db.execute("ALTER TABLE chat_chats ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0")
    if "chat_seq" not in column_names(db, "chat_messages"):
        db.execute("ALTER TABLE chat_messages ADD COLUMN chat_seq INTEGER")
        db.execute(
            "UPDATE chat_messages SET chat_seq = (SELECT COUNT(*) FROM chat_messages m "
            "WHERE m.chat_id = chat_messages.chat_id AND m.seq <= chat_messages.seq)"
        )
        db.execute(
            "UPDATE chat_chats SET last_seq = (SELECT COALESCE(MAX(m.chat_seq), 0) "
            "FROM chat_messages m WHERE m.chat_id = chat_chats.id)"
        )
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_chat_seq "
        "ON chat_messages(chat_id, chat_seq)"
    )


# run in this order after SCHEMA, at every start (each is idempotent)
MIGRATIONS: tuple[Callable[[Database], None], ...] = (add_client_ids, add_chat_sequences)


def lock_chat(chat_id: str) -> Callable[[Database], None]:
    """Lock a chat's row (a no-op update): the Store takes the locks of a batch first, in one
    order, so two nodes' batches that touch the same chats never deadlock."""

    def op(db: Database) -> None:
        db.execute("UPDATE chat_chats SET last_seq = last_seq WHERE id = ?", (chat_id,))

    return op


def _message(row: tuple[int, str, str, str, str, str, str, float]) -> StoredMessage:
    return StoredMessage(*row)


# --- chats ----------------------------------------------------------------------------------------
def create_chat(
    chat_id: str,
    name: str,
    description: str,
    creator: str,
    participants: Iterable[str],
    now: float,
) -> Callable[[Database], ChatRecord]:
    members = frozenset([creator, *participants])

    def op(db: Database) -> ChatRecord:
        db.execute(
            "INSERT INTO chat_chats (id, name, description, created_by, created_at, "
            "last_activity) VALUES (?, ?, ?, ?, ?, ?)",
            (chat_id, name, description, creator, now, now),
        )
        db.executemany(
            "INSERT INTO chat_participants (chat_id, user_id, joined_at) VALUES (?, ?, ?)",
            [(chat_id, user, now) for user in sorted(members)],
        )
        return ChatRecord(chat_id, name, description, creator, now, now, members)

    return op


def load_chat(chat_id: str) -> Callable[[Database], ChatRecord | None]:
    def op(db: Database) -> ChatRecord | None:
        row = db.execute(
            "SELECT id, name, description, created_by, created_at, last_activity "
            "FROM chat_chats WHERE id = ?",
            (chat_id,),
        ).fetchone()
        if row is None:
            return None
        users = db.execute(
            "SELECT user_id FROM chat_participants WHERE chat_id = ?", (chat_id,)
        ).fetchall()
        chat, name, description, creator, created_at, last_activity = row
        members = frozenset(u for (u,) in users)
        return ChatRecord(chat, name, description, creator, created_at, last_activity, members)

    return op


def chats_of(user_id: str) -> Callable[[Database], list[ChatRecord]]:
    def op(db: Database) -> list[ChatRecord]:
        rows = db.execute(
            "SELECT c.id FROM chat_chats c JOIN chat_participants p ON p.chat_id = c.id "
            "WHERE p.user_id = ? ORDER BY c.last_activity DESC, c.id",
            (user_id,),
        ).fetchall()
        out: list[ChatRecord] = []
        for (chat_id,) in rows:
            record = load_chat(chat_id)(db)
            if record is not None:
                out.append(record)
        return out

    return op


# --- messages -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Inserted:
    message: StoredMessage
    duplicate: bool  # the sender had sent this client id before: the first one is answered


def insert_message(
    message_id: str,
    chat_id: str,
    user_id: str,
    username: str,
    content: str,
    type_: str,
    now: float,
    client_id: str | None = None,
) -> Callable[[Database], Inserted]:
    def op(db: Database) -> Inserted:
        if client_id is not None:
            row = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages "
                "WHERE chat_id = ? AND user_id = ? AND client_id = ?",
                (chat_id, user_id, client_id),
            ).fetchone()
            if row is not None:
                return Inserted(_message(row), True)
        # the chat's row stays locked until the commit: per chat, seq order is commit order
        numbered = db.execute(
            "UPDATE chat_chats SET last_seq = last_seq + 1, "
            "last_activity = CASE WHEN last_activity > ? THEN last_activity ELSE ? END "
            "WHERE id = ? RETURNING last_seq",
            (now, now, chat_id),
        ).fetchone()
        if numbered is None:
            raise LookupError(f"no chat {chat_id!r}")
        (seq,) = numbered
        db.execute(
            "INSERT INTO chat_messages (id, chat_id, user_id, username, content, type, "
            "created_at, client_id, chat_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message_id, chat_id, user_id, username, content, type_, now, client_id, seq),
        )
        stored = StoredMessage(seq, message_id, chat_id, user_id, username, content, type_, now)
        return Inserted(stored, False)

    return locking(op, chat_id)


def locking(op: Callable[[Database], T], chat_id: str) -> Callable[[Database], T]:
    """``op``, marked with the chat row it locks (see :func:`lock_chat`)."""
    op.lock_key = ("chat_chats", chat_id)  # type: ignore[attr-defined]
    op.lock = lock_chat(chat_id)  # type: ignore[attr-defined]
    return op


def last_seq(chat_id: str) -> Callable[[Database], int]:
    """The number of the chat's latest committed message (0: none yet)."""

    def op(db: Database) -> int:
        row = db.execute("SELECT last_seq FROM chat_chats WHERE id = ?", (chat_id,)).fetchone()
        return int(row[0]) if row is not None else 0

    return op


def messages_after(
    chat_id: str, after: int, upto: int | None = None, limit: int = 1000
) -> Callable[[Database], list[StoredMessage]]:
    """The chat's messages numbered after ``after`` (up to ``upto``), oldest first."""

    def op(db: Database) -> list[StoredMessage]:
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE chat_id = ? AND chat_seq > ?"
        args: list[str | int] = [chat_id, after]
        if upto is not None:
            sql += " AND chat_seq <= ?"
            args.append(upto)
        sql += " ORDER BY chat_seq LIMIT ?"
        args.append(limit)
        return [_message(r) for r in db.execute(sql, args).fetchall()]

    return op


def missed(
    ranges: dict[str, tuple[int, int]], limit: int
) -> Callable[[Database], list[StoredMessage]]:
    """The messages of each chat in its ``(after, upto]`` range, in commit order across the
    chats; the latest ``limit`` of them when there are more."""

    def op(db: Database) -> list[StoredMessage]:
        found: list[tuple[int, StoredMessage]] = []
        for chat_id in sorted(ranges):
            after, upto = ranges[chat_id]
            if upto <= after:
                continue
            rows = db.execute(
                f"SELECT seq, {_MESSAGE_COLUMNS} FROM chat_messages WHERE chat_id = ? "
                "AND chat_seq > ? AND chat_seq <= ? ORDER BY chat_seq DESC LIMIT ?",
                (chat_id, after, upto, limit),
            ).fetchall()
            found += [(row[0], _message(row[1:])) for row in rows]
        found.sort(key=lambda pair: pair[0])
        return [message for _, message in found[-limit:]] if limit > 0 else []

    return op


def count_after(marks: dict[str, int]) -> Callable[[Database], int]:
    """How many messages were committed in each chat after its mark."""

    def op(db: Database) -> int:
        total = 0
        for chat_id, after in marks.items():
            (n,) = db.execute(
                "SELECT COUNT(*) FROM chat_messages WHERE chat_id = ? AND chat_seq > ?",
                (chat_id, after),
            ).fetchone()
            total += int(n)
        return total

    return op


def history(
    chat_id: str, before: str | None, limit: int
) -> Callable[[Database], tuple[list[StoredMessage], bool] | None]:
    """Newest first; ``before`` is a message id (exclusive). None when ``before`` is unknown."""

    def op(db: Database) -> tuple[list[StoredMessage], bool] | None:
        bound = None
        if before is not None:
            row = db.execute(
                "SELECT chat_seq FROM chat_messages WHERE id = ? AND chat_id = ?",
                (before, chat_id),
            ).fetchone()
            if row is None:
                return None
            bound = row[0]
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE chat_id = ?"
        args: list[str | int] = [chat_id]
        if bound is not None:
            sql += " AND chat_seq < ?"
            args.append(bound)
        sql += " ORDER BY chat_seq DESC LIMIT ?"
        args.append(limit + 1)
        rows = db.execute(sql, args).fetchall()
        return [_message(r) for r in rows[:limit]], len(rows) > limit

    return op


# --- receipts -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReceiptResult:
    found: bool
    recorded: bool  # False when this user had already confirmed this


def record_receipt(
    message_id: str, chat_id: str, user_id: str, kind: ReceiptKind, now: float
) -> Callable[[Database], ReceiptResult]:
    # read implies delivered
    kinds: tuple[ReceiptKind, ...] = ("delivered", "read") if kind == "read" else ("delivered",)

    def op(db: Database) -> ReceiptResult:
        row = db.execute(
            "SELECT 1 FROM chat_messages WHERE id = ? AND chat_id = ?", (message_id, chat_id)
        ).fetchone()
        if row is None:
            return ReceiptResult(False, False)
        recorded = False
        for k in kinds:
            cursor = db.execute(
                "INSERT INTO chat_receipts (message_id, user_id, kind, at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (message_id, user_id, k, now),
            )
            if k == kind:
                recorded = cursor.rowcount > 0
        return ReceiptResult(True, recorded)

    return op


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    message: StoredMessage
    participants: frozenset[str]
    delivered_to: list[str]
    read_by: list[str]
    last_update: float


def delivery_status(message_id: str) -> Callable[[Database], DeliveryStatus | None]:
    def op(db: Database) -> DeliveryStatus | None:
        row = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return None
        message = _message(row)
        users = db.execute(
            "SELECT user_id FROM chat_participants WHERE chat_id = ?", (message.chat_id,)
        ).fetchall()
        receipts = db.execute(
            "SELECT user_id, kind, at FROM chat_receipts WHERE message_id = ? ORDER BY at, user_id",
            (message_id,),
        ).fetchall()
        delivered = [u for u, k, _ in receipts if k == "delivered"]
        read = [u for u, k, _ in receipts if k == "read"]
        last = max([message.created_at, *(at for _, _, at in receipts)])
        return DeliveryStatus(message, frozenset(u for (u,) in users), delivered, read, last)

    return op


@dataclass(frozen=True, slots=True)
class MessageTotals:
    messages: int
    delivered: int
    read: int


def totals(db: Database) -> MessageTotals:
    (messages,) = db.execute("SELECT COUNT(*) FROM chat_messages").fetchone()
    counts = dict(db.execute("SELECT kind, COUNT(*) FROM chat_receipts GROUP BY kind").fetchall())
    return MessageTotals(messages, counts.get("delivered", 0), counts.get("read", 0))
