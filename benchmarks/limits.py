"""The physical limits under the benchmark figures, measured on this machine: one line per figure.

    python -m benchmarks.limits [--seconds 1] [--dir FOLDER]

- Loopback system calls: what one ``send``, one ``recv`` (of a frame that has just arrived, and
  of one among many waiting), one ``sendmsg`` of 16 frames and one ``epoll.poll`` cost on a TCP
  connection over 127.0.0.1, for a small WebSocket-sized frame, called from Python on one thread
  (never waiting: the data is there, so the figure is the call, the copy and the loopback
  delivery, plus about 0.1 µs of the Python call). A server that reads each message with one
  ``recv`` and answers with one ``send`` cannot go past ``1 / (recv + send)`` messages per second
  per core, whatever its code does.
- SQLite (the module's library, WAL, ``synchronous=NORMAL``, in ``--dir``, default a temporary
  folder): bulk inserts of the chat message row (the schema of ``chat_messages``), one
  transaction per batch of 1,000 rows; the same row one per transaction (what a server that
  commits each message alone pays); and the analytics event row of the ingest, in batches of
  1,000.
"""

from __future__ import annotations

import argparse
import select
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from benchmarks.loadgen import client_frame

FRAME = client_frame(b'42/chat,7["message:send",{"chatId":"c1","content":"hello","type":"text"}]')


def timed(seconds: float, step: Callable[[], int]) -> float:
    """Seconds per unit: ``step()`` repeated for about ``seconds``, each call returning how many
    units it did."""
    units = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        units += step()
    return (time.perf_counter() - started) / units


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
    return client, server


def drain(sock: socket.socket) -> None:
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        pass


class Stopwatch:
    """Time only the calls between ``t0 = watch.now()`` and ``watch.add(t0, units)``."""

    def __init__(self) -> None:
        self.now = time.perf_counter
        self.seconds = 0.0
        self.units = 0
        t0 = self.now()
        for _ in range(10000):
            self.now()
        self.overhead = (self.now() - t0) / 10000  # one clock read

    def add(self, t0: float, units: int) -> None:
        self.seconds += self.now() - t0 - self.overhead
        self.units += units

    def per_unit(self) -> float:
        return self.seconds / self.units


def syscall_figures(seconds: float) -> list[str]:
    a, b = tcp_pair()
    n = len(FRAME)
    send, recv = a.send, b.recv
    frames16 = [FRAME] * 16
    sends, recvs, queued, sendmsgs = Stopwatch(), Stopwatch(), Stopwatch(), Stopwatch()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = sends.now()
        for _ in range(64):
            send(FRAME)
        sends.add(t0, 64)
        t0 = queued.now()
        for _ in range(64):  # 64 frames waiting, one recv each
            recv(n)
        queued.add(t0, 64)
        for _ in range(64):  # the frame is queued at the peer once send returns (loopback)
            send(FRAME)
            t0 = recvs.now()
            recv(65536)
            recvs.add(t0, 1)
        t0 = sendmsgs.now()
        for _ in range(4):
            a.sendmsg(frames16)
        sendmsgs.add(t0, 64)
        drain(b)
    poller = select.epoll()
    poller.register(b.fileno(), select.EPOLLIN)
    send(FRAME)  # stays queued: level-triggered, every poll reports it

    def polls() -> int:
        for _ in range(64):
            poller.poll(0)
        return 64

    poll_cost = timed(seconds / 2, polls)
    poller.close()
    a.close()
    b.close()
    send_cost, recv_cost, sendmsg_cost = sends.per_unit(), recvs.per_unit(), sendmsgs.per_unit()
    queued_cost = queued.per_unit()
    return [
        f"loopback send of one {n}-byte frame: {send_cost * 1e6:.2f} µs",
        f"loopback recv of one {n}-byte frame just arrived: {recv_cost * 1e6:.2f} µs",
        f"loopback recv of one {n}-byte frame among 64 waiting: {queued_cost * 1e6:.2f} µs",
        f"loopback sendmsg of 16 frames: {sendmsg_cost * 1e6:.2f} µs per frame "
        f"({send_cost / sendmsg_cost:.1f}x cheaper than one send each)",
        f"epoll.poll(0) with one ready socket: {poll_cost * 1e6:.2f} µs",
        f"one recv + one send per message: at most {1 / (send_cost + recv_cost):,.0f} "
        f"messages/s per core ({1 / (send_cost + queued_cost):,.0f} when frames wait)",
    ]


CHAT_SCHEMA = (
    "CREATE TABLE chat_chats (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL "
    "DEFAULT '', created_by TEXT NOT NULL, created_at REAL NOT NULL, last_activity REAL NOT NULL)",
    "CREATE TABLE chat_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
    "chat_id TEXT NOT NULL REFERENCES chat_chats(id), user_id TEXT NOT NULL, username TEXT NOT "
    "NULL, content TEXT NOT NULL, type TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE INDEX chat_messages_chat ON chat_messages(chat_id, seq)",
)
INSERT_MESSAGE = (
    "INSERT INTO chat_messages (id, chat_id, user_id, username, content, type, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
EVENT_SCHEMA = (
    "CREATE TABLE analytics_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT "
    "NOT NULL, user_id TEXT, session_id TEXT, page TEXT, country TEXT, device TEXT, referrer TEXT, "
    "ts REAL NOT NULL, received_at REAL NOT NULL, properties BLOB, metadata BLOB)",
    "CREATE INDEX analytics_events_ts ON analytics_events (ts)",
)
INSERT_EVENT = (
    "INSERT OR IGNORE INTO analytics_events (id, name, user_id, session_id, page, country, "
    "device, referrer, ts, received_at, properties, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


def open_db(path: Path, schema: tuple[str, ...]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    for statement in schema:
        db.execute(statement)
    return db


def message_rows(count: int, chats: int = 10) -> list[tuple[str, str, str, str, str, str, float]]:
    now = time.time()
    return [
        (str(uuid.uuid4()), f"chat-{i % chats}", f"bench-user-{i % 200}", f"bench-user-{i % 200}",
         repr(time.perf_counter()), "text", now)
        for i in range(count)
    ]  # fmt: skip


def event_rows(count: int, start: int) -> list[tuple[object, ...]]:
    now = time.time()
    return [
        (f"evt_{start + i:027x}", "pageview", None, f"s{i % 2000}", f"/page/{i % 40}", "DE",
         "mobile", "google.com", now, now, None, b'{"n":1}')
        for i in range(count)
    ]  # fmt: skip


def sqlite_figures(seconds: float, folder: Path) -> list[str]:
    db = open_db(folder / "chat.sqlite3", CHAT_SCHEMA)
    db.executemany(
        "INSERT INTO chat_chats VALUES (?, ?, '', 'bench', 0, 0)",
        [(f"chat-{i}", f"chat-{i}") for i in range(10)],
    )

    def batch() -> int:
        rows = message_rows(1000)
        db.execute("BEGIN")
        db.executemany(INSERT_MESSAGE, rows)
        db.execute("COMMIT")
        return 1000

    def single() -> int:
        rows = message_rows(100)
        for row in rows:
            db.execute("BEGIN")
            db.execute(INSERT_MESSAGE, row)
            db.execute("UPDATE chat_chats SET last_activity = ? WHERE id = ?", (row[6], row[1]))
            db.execute("COMMIT")
        return 100

    build = timed(seconds / 4, lambda: (message_rows(1000), 1000)[1])  # building rows, apart
    batched = timed(seconds, batch) - build
    alone = timed(seconds, single) - build
    db.close()
    events = open_db(folder / "events.sqlite3", EVENT_SCHEMA)
    counter = [0]

    def event_batch() -> int:
        rows = event_rows(1000, counter[0])
        counter[0] += 1000
        events.execute("BEGIN")
        events.executemany(INSERT_EVENT, rows)
        events.execute("COMMIT")
        return 1000

    event_build = timed(seconds / 4, lambda: (event_rows(1000, 0), 1000)[1])
    event_batched = timed(seconds, event_batch) - event_build
    events.close()
    version = sqlite3.sqlite_version
    return [
        f"SQLite {version} chat message rows, WAL+NORMAL, 1,000 per transaction: "
        f"{1 / batched:,.0f} rows/s",
        f"SQLite {version} chat message, one per transaction (insert + chat update): "
        f"{1 / alone:,.0f} commits/s ({alone * 1e6:.0f} µs each)",
        f"SQLite {version} analytics event rows, WAL+NORMAL, 1,000 per transaction: "
        f"{1 / event_batched:,.0f} rows/s",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="per figure")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temporary folder)")
    args = parser.parse_args()
    for line in syscall_figures(args.seconds):
        print(line, flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for line in sqlite_figures(args.seconds, Path(folder)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
