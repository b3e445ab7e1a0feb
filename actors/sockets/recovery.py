"""Connection state recovery (Socket.IO v5): a client that lost its connection gets back its
socket id, its rooms and the broadcasts it missed.

Every non-volatile broadcast gets an offset, appended as its last argument (as Node's server
does; stock socket.io-client 4.6+ keeps the last one it saw), and is kept for
``max_disconnection_seconds``. A session that ends for a reason a network may cause (its
transport closed or failed, a ping timeout, a server shutdown) is kept as long, with its rooms
and the position of the log when it connected. When its client reconnects with ``{pid,
offset}``, :meth:`RecoveryLog.restore` hands back the session and the packets after that
offset (or, for a client that never saw an offset, after its connect) that were meant for it.

Beyond Node: offsets count from the first connect (a client that received nothing yet still
recovers), a recovered session can be recovered again, and both the packets and the kept
sessions are written to the Store (group commit, in the background), so a restarted server
recovers its clients too. A pid belongs to the user it was issued to: presented with another
user's identity it recovers nothing (and stays for its owner).
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import msgspec
import trio

from actors.clock import Clock
from actors.store import Store
from actors.store.sql import Database

log = logging.getLogger("switchboard.recovery")

OFFSET_PREFIX = "sb:"  # an offset is "sb:<n>": never mistaken for an application's string
FLUSH_BATCH = 1000
RETRY_SECONDS = 1.0
Op = Callable[[Database], None]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sio_packets (
        seq INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        data BLOB NOT NULL,
        rooms TEXT,
        exclude TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sio_sessions (
        pid TEXT PRIMARY KEY,
        sid TEXT NOT NULL,
        namespace TEXT NOT NULL,
        user_id TEXT,
        rooms TEXT NOT NULL,
        since INTEGER NOT NULL,
        disconnected_at REAL NOT NULL
    )""",
)


def offset_text(seq: int) -> str:
    return f"{OFFSET_PREFIX}{seq}"


def offset_seq(text: object) -> int | None:
    if not isinstance(text, str) or not text.startswith(OFFSET_PREFIX):
        return None
    digits = text[len(OFFSET_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def new_pid() -> str:
    return secrets.token_urlsafe(15)


@dataclass(frozen=True, slots=True)
class LoggedPacket:
    seq: int
    namespace: str
    data: tuple[object, ...]  # (event, *args, offset)
    rooms: frozenset[str] | None  # None: the whole namespace
    exclude: frozenset[str]
    at: float

    def meant_for(self, sid: str, rooms: frozenset[str]) -> bool:
        if self.rooms is not None and sid not in self.rooms and self.rooms.isdisjoint(rooms):
            return False
        return sid not in self.exclude and self.exclude.isdisjoint(rooms)


@dataclass(frozen=True, slots=True)
class KeptSession:
    pid: str
    sid: str
    namespace: str
    user_id: str | None
    rooms: frozenset[str]
    since: int  # the last offset given out when the session connected (or was recovered)
    disconnected_at: float


@dataclass(frozen=True, slots=True)
class Restored:
    session: KeptSession
    missed: list[LoggedPacket]


class RecoveryStats(msgspec.Struct):
    kept_packets: int = 0
    kept_sessions: int = 0
    recovered: int = 0
    refused: int = 0  # unknown or expired pid, offset too old, another user's pid


class RecoveryLog:
    """The offsets, the kept packets and the kept sessions of this node."""

    def __init__(self, store: Store, clock: Clock, max_disconnection_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.max_seconds = max_disconnection_seconds
        self.packets: deque[LoggedPacket] = deque()
        self.sessions: dict[str, KeptSession] = {}
        self.seq = 0  # the last offset given out
        self.stats = RecoveryStats()
        self._unwritten: list[LoggedPacket] = []
        self._ops: list[Op] = []
        self._wake = trio.Event()
        store.add_schema(*SCHEMA)

    # --- the log -----------------------------------------------------------------------------
    def record(
        self,
        namespace: str,
        data: tuple[object, ...],
        rooms: Iterable[str] | None,
        exclude: frozenset[str],
    ) -> tuple[object, ...]:
        """Give a broadcast its offset; returns its arguments with the offset appended."""
        self.seq += 1
        stamped = (*data, offset_text(self.seq))
        kept = frozenset(rooms) if rooms is not None else None
        packet = LoggedPacket(self.seq, namespace, stamped, kept, exclude, self.clock.now())
        self.packets.append(packet)
        self._unwritten.append(packet)
        self._wake.set()
        return stamped[1:]

    def keep(self, session: KeptSession) -> None:
        """A session that may come back (it ended for a reason a network may cause)."""
        self.sessions[session.pid] = session
        self.store_later(_save_session(session))

    def restore(
        self, pid: object, offset: object, namespace: str, user_id: str | None
    ) -> Restored | None:
        """The kept session of ``pid`` and what it missed, or None (then connect afresh)."""
        self.prune()
        kept = self.sessions.get(pid) if isinstance(pid, str) else None
        if kept is None or kept.namespace != namespace or kept.user_id != user_id:
            self.stats.refused += 1
            return None
        since = kept.since if offset is None else offset_seq(offset)
        oldest = self.packets[0].seq if self.packets else self.seq + 1
        if since is None or since > self.seq or since < oldest - 1:
            self.stats.refused += 1
            return None  # an offset we never gave, or older than what is kept
        del self.sessions[kept.pid]
        self.store_later(_drop_session(kept.pid))
        missed = [
            p
            for p in self.packets
            if p.seq > since and p.namespace == namespace and p.meant_for(kept.sid, kept.rooms)
        ]
        self.stats.recovered += 1
        return Restored(kept, missed)

    def prune(self) -> int:
        """Forget packets and sessions older than the maximum disconnection duration."""
        cutoff = self.clock.now() - self.max_seconds
        removed = 0
        while self.packets and self.packets[0].at < cutoff:
            self.packets.popleft()
            removed += 1
        for pid in [p for p, s in self.sessions.items() if s.disconnected_at < cutoff]:
            del self.sessions[pid]
            removed += 1
        self.stats.kept_packets, self.stats.kept_sessions = len(self.packets), len(self.sessions)
        return removed

    # --- durability ------------------------------------------------------------------------------
    def store_later(self, op: Op) -> None:
        self._ops.append(op)
        self._wake.set()

    async def load(self) -> None:
        """Rebuild from the Store (start-up): the kept window of packets and sessions."""
        cutoff = self.clock.now() - self.max_seconds
        packets, sessions, last = await self.store.read(lambda db: _load(db, cutoff))
        self.packets.extend(packets)
        self.sessions.update({s.pid: s for s in sessions})
        self.seq = last
        log.info("recovery: %d packets and %d sessions kept", len(packets), len(sessions))

    async def run(self) -> None:
        """Write what was recorded, in batches, in the background (the broadcaster never waits
        for it). A failed write is kept and tried again a moment later."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.flush()
            except Exception:
                log.exception("recovery: the kept packets could not be stored; retrying")
                self._wake.set()
                await trio.sleep(RETRY_SECONDS)

    async def flush(self) -> None:
        while self._unwritten or self._ops:
            packets, self._unwritten = self._unwritten[:FLUSH_BATCH], self._unwritten[FLUSH_BATCH:]
            ops, self._ops = self._ops, []
            cutoff = self.clock.now() - self.max_seconds
            try:
                await self.store.write(partial(_write, packets=packets, ops=ops, cutoff=cutoff))
            except BaseException:
                self._unwritten[:0] = packets
                self._ops[:0] = ops
                raise


def _save_session(s: KeptSession) -> Op:
    def op(db: Database) -> None:
        rooms = msgspec.json.encode(sorted(s.rooms)).decode()
        db.execute(
            "INSERT INTO sio_sessions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pid) DO UPDATE "
            "SET sid = excluded.sid, namespace = excluded.namespace, user_id = excluded.user_id, "
            "rooms = excluded.rooms, since = excluded.since, "
            "disconnected_at = excluded.disconnected_at",
            (s.pid, s.sid, s.namespace, s.user_id, rooms, s.since, s.disconnected_at),
        )

    return op


def _drop_session(pid: str) -> Op:
    def op(db: Database) -> None:
        db.execute("DELETE FROM sio_sessions WHERE pid = ?", (pid,))

    return op


def _write(
    db: Database, *, packets: list[LoggedPacket], ops: list[Op], cutoff: float
) -> None:
    db.executemany(
        "INSERT INTO sio_packets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE "
        "SET namespace = excluded.namespace, data = excluded.data, rooms = excluded.rooms, "
        "exclude = excluded.exclude, at = excluded.at",
        [
            (
                p.seq,
                p.namespace,
                msgspec.msgpack.encode(p.data),
                None if p.rooms is None else msgspec.json.encode(sorted(p.rooms)).decode(),
                msgspec.json.encode(sorted(p.exclude)).decode(),
                p.at,
            )
            for p in packets
        ],
    )
    for op in ops:
        op(db)
    db.execute("DELETE FROM sio_packets WHERE at < ?", (cutoff,))
    db.execute("DELETE FROM sio_sessions WHERE disconnected_at < ?", (cutoff,))


def _load(
    db: Database, cutoff: float
) -> tuple[list[LoggedPacket], list[KeptSession], int]:
    packets = [
        LoggedPacket(
            seq,
            namespace,
            tuple(msgspec.msgpack.decode(data)),
            None if rooms is None else frozenset(msgspec.json.decode(rooms)),
            frozenset(msgspec.json.decode(exclude)),
            at,
        )
        for seq, namespace, data, rooms, exclude, at in db.execute(
            "SELECT seq, namespace, data, rooms, exclude, at FROM sio_packets "
            "WHERE at >= ? ORDER BY seq",
            (cutoff,),
        )
    ]
    sessions = [
        KeptSession(pid, sid, namespace, user_id, frozenset(msgspec.json.decode(rooms)), since, at)
        for pid, sid, namespace, user_id, rooms, since, at in db.execute(
            "SELECT pid, sid, namespace, user_id, rooms, since, disconnected_at FROM sio_sessions "
            "WHERE disconnected_at >= ?",
            (cutoff,),
        )
    ]
    (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM sio_packets").fetchone()
    return packets, sessions, int(last)
