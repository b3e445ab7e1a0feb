"""The outbox bound counts what a queued frame really costs: many tiny packets (acks a polling
client never collects) cost their objects too, not only their encoded bytes."""

from __future__ import annotations

import tracemalloc

from actors.sockets.outbox import OutFrame

FRAMES = 20_000


def test_a_frames_size_covers_the_memory_it_holds_while_queued() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        queue = [OutFrame(b"43" + str(i).encode() + b"[]") for i in range(FRAMES)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    counted = sum(frame.size for frame in queue)
    assert counted >= held, f"counted {counted} bytes for {held} bytes held"
