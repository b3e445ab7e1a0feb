"""Run the whole server: front door, Hypercorn, the app's runtime; stop on SIGINT/SIGTERM."""

from __future__ import annotations

import gc
import logging
import signal
import socket as stdlib_socket
import sys
from collections.abc import Callable
from typing import Any

import trio

from actors.store.check import StartupFailed
from web.front_door import FrontDoor, listen
from web.platform import logs
from web.platform.app import SwitchboardApp
from web.platform.settings import Settings

GIL_SWITCH_INTERVAL_SECONDS = 0.001

log = logging.getLogger("switchboard")


def tune_gc() -> None:
    """Fewer cycle collections: the long-lived objects made at start-up are frozen out of them,
    and generation 0 is collected less often (profiling showed the collector dominating)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def serve(
    app: SwitchboardApp,
    settings: Settings,
    *,
    listener: stdlib_socket.socket | None = None,
    on_ready: Callable[[int], None] | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    worker: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM. A ``worker`` shares the port with its siblings and listens
    on a port of its own too, which it advertises to the cluster (forwarded requests)."""
    listener = listener or listen(settings.host, settings.port, reuse_port=worker)
    port = listener.getsockname()[1]
    listeners = [listener]
    app.runtime.listening_on(settings.host, port)
    if worker:
        peer = listen(settings.host, 0)
        listeners.append(peer)
        app.runtime.listening_on(settings.host, peer.getsockname()[1])
    door = FrontDoor(app, settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(door.serve, listeners)
        tune_gc()
        if on_ready is not None:
            on_ready(port)
        task_status.started(port)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
        await shutdown(app, door, settings.shutdown_timeout_seconds)
        nursery.cancel_scope.cancel()


async def shutdown(app: SwitchboardApp, door: FrontDoor, timeout: float) -> None:
    """Stop accepting, drain the runtime (clients closed, writes committed), within ``timeout``."""
    started = trio.current_time()
    door.stop_accepting()
    await app.runtime.drain(timeout)
    log.info("drained in %.3fs", trio.current_time() - started)


def run(
    app: SwitchboardApp,
    settings: Settings,
    on_ready: Callable[[int], None] | None = None,
    *,
    worker: bool = False,
) -> None:
    logs.configure(settings.log_level, settings.log_format)
    # The Store's thread releases the GIL around every SQLite call and must win it back from a
    # busy event loop; at the default 5 ms interval it waits long for each. 1 ms: durable chat
    # messages/s +10% (1,456 -> 1,598, two A/B rounds of benchmarks.chat), nothing else moved.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    try:
        trio.run(lambda: serve(app, settings, on_ready=on_ready, worker=worker))
    except* StartupFailed as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        sys.exit(f"switchboard: {first}")
