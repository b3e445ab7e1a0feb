"""The native path's edge-triggered read readiness, on a real socket pair."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from web.sockets.readiness import ReadinessPoller, new_poller

pytestmark = pytest.mark.skipif(new_poller() is None, reason="epoll is Linux-only")


@asynccontextmanager
async def polled_pair() -> AsyncIterator[tuple[ReadinessPoller, socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    poller = ReadinessPoller()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        try:
            yield poller, ours, theirs
        finally:
            poller.unregister(ours)
            ours.close()
            theirs.close()
            nursery.cancel_scope.cancel()


async def test_a_reader_wakes_when_data_arrives_and_not_before() -> None:
    async with polled_pair() as (poller, ours, theirs):
        readiness = poller.register(ours)
        await readiness.wait()  # anything sent before registration is read first
        with pytest.raises(BlockingIOError):
            ours.recv(10)
        woke = trio.Event()

        async def reader() -> None:
            await readiness.wait()
            woke.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert not woke.is_set()
            theirs.send(b"hello")
            with trio.fail_after(5):
                await woke.wait()
        assert ours.recv(10) == b"hello"


async def test_an_edge_while_the_reader_is_busy_is_not_lost() -> None:
    async with polled_pair() as (poller, ours, theirs):
        readiness = poller.register(ours)
        await readiness.wait()  # the reader takes its turn: it is busy now, not waiting
        theirs.send(b"while busy")
        await trio.testing.wait_all_tasks_blocked()  # the poller sees the edge meanwhile
        with trio.fail_after(5):
            await readiness.wait()  # returns at once: the edge was remembered
        assert ours.recv(64) == b"while busy"


async def test_a_full_read_is_followed_by_another_without_an_edge() -> None:
    async with polled_pair() as (poller, ours, theirs):
        readiness = poller.register(ours)
        await readiness.wait()
        theirs.send(b"x" * 100)
        await trio.testing.wait_all_tasks_blocked()
        await readiness.wait()
        assert ours.recv(10) == b"x" * 10  # filled the buffer: there may be more
        readiness.more()
        with trio.fail_after(5):
            await readiness.wait()  # no new edge will come for the 90 bytes left
        assert ours.recv(100) == b"x" * 90


@pytest.mark.parametrize("ending", ["close", "half-close", "reset"])
async def test_the_end_of_a_stream_right_after_data_is_seen(ending: str) -> None:
    """``recv`` returns the data and stops short of the FIN (or the reset), and no edge comes
    after it: the reader must still learn that the stream ended, not wait for ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    poller = ReadinessPoller()
    readiness = poller.register(ours)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        await readiness.wait()
        with pytest.raises(BlockingIOError):
            ours.recv(64)
        peer.send(b"last message")
        if ending == "reset":
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()
        elif ending == "half-close":
            peer.shutdown(socket.SHUT_WR)
        else:
            peer.close()
        received: list[bytes] = []
        with trio.fail_after(5):
            while True:
                await readiness.wait()
                try:
                    data = ours.recv(64 * 1024)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    break
                if not data:
                    break
                received.append(data)
        assert b"".join(received) in (b"last message", b"")  # a reset may discard the data
        poller.unregister(ours)
        ours.close()
        peer.close()
        nursery.cancel_scope.cancel()
