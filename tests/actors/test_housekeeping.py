"""Housekeeping passes, driven by the settable clock (no real waiting)."""

from __future__ import annotations

import trio
import trio.testing

from actors.clock import Clock
from actors.housekeeping import Housekeeping

INTERVAL_SECONDS = 60.0


async def test_a_pass_counts_only_once_every_sweep_has_finished() -> None:
    clock = Clock()
    housekeeping = Housekeeping(clock, INTERVAL_SECONDS)
    gate = trio.Event()

    async def slow_delete() -> int:
        await gate.wait()
        return 2

    housekeeping.add("expired keys", lambda: 1)
    housekeeping.add_async("old rows", slow_delete)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(housekeeping.run)
        await trio.testing.wait_all_tasks_blocked()
        clock.advance(INTERVAL_SECONDS)
        await trio.testing.wait_all_tasks_blocked()
        # the async sweep is still deleting: a reader of `runs` must not think the pass is done
        assert housekeeping.runs == 0
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert (housekeeping.runs, housekeeping.removed) == (1, 3)
        nursery.cancel_scope.cancel()


async def test_the_next_pass_follows_an_advance_made_right_after_a_pass_is_seen() -> None:
    """Regression: `runs` moved before the async sweeps ran, so a test that advanced the clock
    as soon as it saw the count move advanced it before the next sleep began, and the sweep
    it was waiting for never came."""
    clock = Clock()
    housekeeping = Housekeeping(clock, INTERVAL_SECONDS)
    passes_seen: list[int] = []

    async def delete_through_store() -> int:
        for _ in range(5):  # a real delete waits on the Store actor for a few checkpoints
            await trio.lowlevel.checkpoint()
        return 0

    housekeeping.add_async("old rows", delete_through_store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(housekeeping.run)
        await trio.testing.wait_all_tasks_blocked()
        for expected in (1, 2, 3):
            clock.advance(INTERVAL_SECONDS)
            with trio.fail_after(5):
                while housekeeping.runs < expected:
                    await trio.lowlevel.checkpoint()
            passes_seen.append(housekeeping.runs)
        nursery.cancel_scope.cancel()
    assert passes_seen == [1, 2, 3]
