"""The settable clock's periodic runs: advancing time drives them, no real waiting."""

from __future__ import annotations

import trio
import trio.testing

from actors.clock import Clock

PERIOD_SECONDS = 60.0


async def test_time_advanced_while_a_job_runs_counts_towards_the_next_run() -> None:
    clock = Clock()
    runs: list[float] = []
    release = trio.Event()

    async def job() -> None:
        runs.append(clock.monotonic())
        if len(runs) == 1:
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.every, PERIOD_SECONDS, job)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == []
        clock.advance(PERIOD_SECONDS)
        await trio.testing.wait_all_tasks_blocked()
        assert len(runs) == 1
        clock.advance(PERIOD_SECONDS)  # while the first run is still busy
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert len(runs) == 2  # the second run came without any further advance
        nursery.cancel_scope.cancel()


async def test_a_long_jump_gives_one_run_not_a_backlog() -> None:
    clock = Clock()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.every, PERIOD_SECONDS, job)
        await trio.testing.wait_all_tasks_blocked()
        clock.advance(30 * 86400.0)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == 1
        clock.advance(PERIOD_SECONDS / 2)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == 1  # the period restarts from the run, not from the old schedule
        clock.advance(PERIOD_SECONDS / 2)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == 2
        nursery.cancel_scope.cancel()
