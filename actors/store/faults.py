"""What can go wrong with the database, named the way an operator and a client need it.

:func:`classify` turns a ``sqlite3`` or ``psycopg`` error into a :data:`Fault` (disk full,
read-only, locked, corrupt, I/O error, and for a database server: unreachable), or None for an
error of the write itself (a constraint, a bug in the op).
A write the Store cannot complete fails with a :class:`StoreError` that says what is known about
it: :class:`NotStored` (rolled back: nothing of it was written, a retry is a new write) or
:class:`OutcomeUnknown` (the commit itself failed or the answer came too late: it may or may not
be stored, only an idempotent retry is safe). :class:`StorageHealth` keeps the state /health,
/metrics and the chat's ``monitoring:health`` report.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Fault = Literal[
    "disk full", "read-only", "locked", "corrupt", "I/O error", "unreachable", "unavailable"
]
State = Literal["ok", "degraded", "failed"]

# primary result codes (https://sqlite.org/rescode.html)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3,
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    26,
)
_BY_CODE: dict[int, Fault] = {
    _FULL: "disk full",
    _READONLY: "read-only",
    _PERM: "read-only",
    _BUSY: "locked",
    _LOCKED: "locked",
    _CORRUPT: "corrupt",
    _NOTADB: "corrupt",
    _IOERR: "I/O error",
    _CANTOPEN: "I/O error",
}
_BY_TEXT: tuple[tuple[str, Fault], ...] = (
    ("disk is full", "disk full"),
    ("readonly", "read-only"),
    ("read-only", "read-only"),
    ("locked", "locked"),
    ("busy", "locked"),
    ("malformed", "corrupt"),
    ("not a database", "corrupt"),
    ("disk i/o", "I/O error"),
    ("unable to open", "I/O error"),
)
# PostgreSQL's SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_BY_CODE: dict[str, Fault] = {
    "53100": "disk full",  # disk_full
    "25006": "read-only",  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "40001": "locked",  # serialization_failure
    "40P01": "locked",  # deadlock_detected
    "55P03": "locked",  # lock_not_available
    "57014": "locked",  # query_canceled (statement_timeout, lock_timeout)
    "XX001": "corrupt",  # data_corrupted
    "XX002": "corrupt",  # index_corrupted
    "58030": "I/O error",  # io_error
}
_PG_BY_CLASS: dict[str, Fault] = {
    "08": "unreachable",  # connection exceptions
    "57": "unreachable",  # operator intervention: the server is shutting down or starting
    "53": "unreachable",  # insufficient resources (too many connections, out of memory)
}
# faults that clear on their own once the cause is gone (space freed, lock released, the
# database server back); the Store retries the last two within a write's deadline
TRANSIENT: frozenset[Fault] = frozenset(
    {"disk full", "locked", "read-only", "I/O error", "unreachable"}
)
RETRIED: frozenset[Fault] = frozenset({"locked", "unreachable"})
FAILURE_WINDOW_SECONDS = 60.0


class StoreTimeout(Exception):
    """The database did not finish in time (a lock held elsewhere, a stalled server)."""


def classify(err: BaseException) -> Fault | None:
    """The storage fault behind ``err``; None when it is the write's own error."""
    if isinstance(err, StoreTimeout):
        return "locked"
    if isinstance(err, StoreError):
        return err.fault
    if isinstance(err, sqlite3.Error):
        return _sqlite_fault(err)
    if type(err).__module__.startswith("psycopg"):
        return _postgres_fault(err)
    return None


def _postgres_fault(err: BaseException) -> Fault | None:
    import psycopg

    if not isinstance(err, psycopg.Error) or isinstance(err, psycopg.IntegrityError):
        return None
    code = err.sqlstate or ""
    if code in _PG_BY_CODE:
        return _PG_BY_CODE[code]
    if code[:2] in _PG_BY_CLASS:
        return _PG_BY_CLASS[code[:2]]
    if not code and isinstance(err, psycopg.OperationalError | psycopg.InterfaceError):
        return "unreachable"  # no SQLSTATE: the connection itself failed or was closed
    return None


def _sqlite_fault(err: sqlite3.Error) -> Fault | None:
    if isinstance(err, sqlite3.IntegrityError):
        return None
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _BY_CODE:
        return _BY_CODE[code & 0xFF]
    text = str(err).lower()
    for needle, fault in _BY_TEXT:
        if needle in text:
            return fault
    return None


class StoreError(Exception):
    """A write or read the Store could not complete; ``fault`` says why."""

    stored: ClassVar[bool | None] = None
    what: ClassVar[str] = "storage error"

    def __init__(self, fault: Fault, detail: str = "") -> None:
        self.fault = fault
        self.detail = detail
        super().__init__(f"{self.what} ({fault}{': ' + detail if detail else ''})")


class NotStored(StoreError):
    """Rolled back: nothing of the write was stored."""

    stored = False
    what = "not stored"


class StoreUnavailable(NotStored):
    """The Store has failed (or never opened): the write was refused before it ran."""

    what = "not stored: the database is unavailable"


class OutcomeUnknown(StoreError):
    """The commit itself failed, or no answer came in time: the write may be stored or not."""

    stored = None
    what = "outcome unknown"


class ReadFailed(StoreError):
    """A read that failed for a storage fault (a corrupt page, an unopenable file)."""

    what = "read failed"


@dataclass
class StorageHealth:
    """The database as /health reports it. Transient faults turn back to ``ok`` on the next
    successful commit; corruption and a failed Store stay ``failed`` until a restart."""

    state: State = "ok"
    fault: Fault | None = None
    last_error: str | None = None
    last_error_at: float | None = None  # wall-clock seconds
    write_failures: int = 0  # writes answered with a StoreError, ever
    read_failures: int = 0
    _recent: deque[float] = field(default_factory=deque)  # monotonic times of write failures

    def write_failed(self, fault: Fault, error: BaseException, writes: int) -> None:
        self.write_failures += writes
        now = time.monotonic()
        self._recent.extend([now] * min(writes, 10_000))
        self._note(fault, error)

    def read_failed(self, fault: Fault, error: BaseException) -> None:
        self.read_failures += 1
        self._note(fault, error)

    def _note(self, fault: Fault, error: BaseException) -> None:
        self.last_error = f"{fault}: {error}"
        self.last_error_at = time.time()
        if self.state == "failed":
            return
        if fault in TRANSIENT:
            self.state, self.fault = "degraded", fault
        else:
            self.state, self.fault = "failed", fault

    def committed(self) -> None:
        if self.state == "degraded":
            self.state, self.fault = "ok", None

    def failed(self, error: BaseException, fault: Fault = "unavailable") -> None:
        self.last_error = f"{fault}: {error}"
        self.last_error_at = time.time()
        self.state, self.fault = "failed", fault

    def failures_last_minute(self) -> int:
        horizon = time.monotonic() - FAILURE_WINDOW_SECONDS
        recent = self._recent
        while recent and recent[0] < horizon:
            recent.popleft()
        return len(recent)
