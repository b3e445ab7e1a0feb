"""``switchboard serve --workers N``: N processes serving one port, one machine's cores all used.

The supervisor (this module) reserves the port, starts N copies of ``switchboard serve`` as
workers, and waits. Each worker listens on the port with ``SO_REUSEPORT`` (the kernel spreads new
connections over them) and on a port of its own, which it advertises to the cluster: the workers
join through Redis exactly as separate machines would (a polling request that lands on the wrong
worker is forwarded to its owner). The supervisor prints the address and a token once every
worker is ready, passes SIGINT/SIGTERM on to them, and starts a worker again (after a pause that
grows with repeated crashes) when one dies on its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from web.front_door import bound
from web.platform.settings import Settings

log = logging.getLogger("switchboard.workers")

WORKER_ENV = "SWITCHBOARD_WORKER_INDEX"  # set in a worker's environment: it serves, never spawns
READY_MARKER = "worker ready on"
START_TIMEOUT_SECONDS = 60.0
RESTART_BACKOFF_MAX_SECONDS = 10.0


def worker_index() -> int | None:
    raw = os.environ.get(WORKER_ENV)
    return int(raw) if raw is not None else None


class Worker:
    def __init__(self, index: int, argv: Sequence[str], port: int) -> None:
        self.index = index
        self.argv = list(argv)
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.crashes = 0

    def start(self) -> None:
        env = {**os.environ, WORKER_ENV: str(self.index), "SWITCHBOARD_PORT": str(self.port)}
        self.ready.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", *self.argv, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._watch_output, daemon=True).start()

    def _watch_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if READY_MARKER in line:
                self.ready.set()
            else:
                sys.stdout.write(line)
                sys.stdout.flush()

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)


def supervise(settings: Settings, argv: Sequence[str], banner: Callable[[int], None]) -> int:
    """Run ``settings.workers`` workers on one port until SIGINT/SIGTERM; the exit code."""
    holder = bound(settings.host, settings.port, reuse_port=True)  # reserve the port (no listen)
    port = int(holder.getsockname()[1])
    workers = [Worker(i, argv, port) for i in range(settings.workers)]
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        for w in workers:
            w.signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for w in workers:
        w.start()
    for w in workers:
        if not w.ready.wait(START_TIMEOUT_SECONDS):
            stop(signal.SIGTERM, None)
            log.error("worker %d did not start within %.0fs", w.index, START_TIMEOUT_SECONDS)
            return 1
    banner(port)
    _keep_alive(workers, stopping)
    deadline = time.monotonic() + settings.shutdown_timeout_seconds + 5.0
    for w in workers:
        if w.proc is not None:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
    holder.close()
    return 0


def _keep_alive(workers: list[Worker], stopping: threading.Event) -> None:
    """Until told to stop, start again any worker that died on its own."""
    while not stopping.is_set():
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None and not stopping.is_set():
                w.crashes += 1
                pause = min(RESTART_BACKOFF_MAX_SECONDS, 0.5 * 2 ** (w.crashes - 1))
                log.error(
                    "worker %d exited with %s; restarting in %.1fs",
                    w.index,
                    w.proc.returncode,
                    pause,
                )
                if stopping.wait(pause):
                    return
                w.start()
        stopping.wait(0.5)
