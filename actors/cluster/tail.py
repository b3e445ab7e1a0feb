"""Following an append-only log by its sequence: what every node of a cluster does with the
event logs (analytics and guild) that any node may append to.

The table is the truth: a :class:`LogTail` reads the rows after the last ``seq`` it delivered,
in order, a page at a time, and hands each page to ``deliver`` before it moves on. It reads when
woken (:meth:`poke`: the local committer, or another node's wake-up through Redis) and otherwise
every ``poll_seconds``, so a wake-up that never came (a node killed between its commit and its
publish, Redis away) only delays. Reading by ``seq`` never skips a row because the logs are
appended under one lock per log (``pg_advisory_xact_lock``): a row's ``seq`` is taken and
committed while the lock is held, so commit order is ``seq`` order and a row seen means every
lower ``seq`` is committed too.

:meth:`caught_up` is the read-your-writes wait: an ingest answers once its own rows have been
delivered on this node.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

log = logging.getLogger("switchboard.cluster")

T = TypeVar("T")
READ_RETRY_SECONDS = 0.5


class LogTail(Generic[T]):
    def __init__(
        self,
        name: str,
        read_after: Callable[[int, int], Awaitable[list[T]]],
        seq_of: Callable[[T], int],
        deliver: Callable[[list[T]], Awaitable[None]],
        *,
        poll_seconds: float = 1.0,
        page: int = 5000,
    ) -> None:
        self.name = name
        self.read_after = read_after  # (after_seq, limit) -> rows in seq order
        self.seq_of = seq_of
        self.deliver = deliver
        self.poll_seconds = poll_seconds
        self.page = page
        self.position = 0  # the last seq delivered
        self.delivered = 0
        self.reads = 0
        self.read_failures = 0
        self._wake = trio.Event()
        self._moved = trio.Event()

    def start_at(self, seq: int) -> None:
        """Deliver the rows after ``seq`` (what the views rebuilt at start already hold)."""
        self.position = seq

    def poke(self) -> None:
        """There may be new rows: read now."""
        self._wake.set()

    async def caught_up(self, seq: int) -> None:
        """Return once every row up to ``seq`` has been delivered here."""
        while self.position < seq:
            moved = self._moved
            self.poke()
            await moved.wait()

    async def run(self) -> None:
        while True:
            self._wake = trio.Event()
            try:
                await self._read_to_end()
            except Exception:  # the database away: the rows stay in the table, read them later
                self.read_failures += 1
                log.warning("%s: reading the log failed; retrying", self.name, exc_info=True)
                await trio.sleep(READ_RETRY_SECONDS)
                continue
            with trio.move_on_after(self.poll_seconds):
                await self._wake.wait()

    async def _read_to_end(self) -> None:
        while True:
            rows = await self.read_after(self.position, self.page)
            self.reads += 1
            if rows:
                await self.deliver(rows)
                self.position = max(self.position, self.seq_of(rows[-1]))
                self.delivered += len(rows)
            moved, self._moved = self._moved, trio.Event()
            moved.set()
            if len(rows) < self.page:
                return
