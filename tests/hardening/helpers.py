"""What the hardening suite measures, beyond the raw clients of tests/support/clients/raw.py.

* :func:`echo_rtt` - one echo round trip of a bystander.
* :func:`answering_pings` - a bystander kept alive (its PINGs answered) while the test looks
  elsewhere.
* :func:`rss_kib` - the server process's resident memory.

Every wait is bounded (``trio.fail_after``); nothing sleeps in place of an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from tests.support.clients.raw import SioWS


@asynccontextmanager
async def answering_pings(client: SioWS) -> AsyncIterator[None]:
    """While inside, a task reads ``client`` (answering PINGs, dropping anything else): a
    bystander that must outlive a short heartbeat while the test looks elsewhere."""
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            while True:
                await client.recv(timeout=1e6)

        nursery.start_soon(read)
        yield
        nursery.cancel_scope.cancel()


async def echo_rtt(client: SioWS, ack_id: int) -> float:
    started = trio.current_time()
    await client.echo(ack_id, "rtt")
    return trio.current_time() - started


def rss_kib(server: Any) -> int:
    """The server process's resident set size (VmRSS), KiB."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
