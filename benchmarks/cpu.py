"""Who used the CPU: each side's share of a core over a measured phase, core pinning, and the rule
that says which side limited a figure.

Shares come from ``/proc/<pid>/stat`` (``utime + stime``, every thread of the process): the
server's process, and the generator's processes summed. A share is CPU seconds per wall second,
so 1.0 is one core busy for the whole phase.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")

# A side is "saturated" at this fraction of the cores it can use (sampling with clock ticks and
# the odd wait for a lock keep a busy process a little under 100 %).
SATURATED = 0.85


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (NaN once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Meter:
    """CPU shares of the server and of the generator over one measured phase.

    ``start()`` when the phase begins, ``stop()`` when it ends; ``add_generator(pid)`` for a
    generator process started before the phase (a worker of a multi-process generator), which
    must still be alive at ``stop()`` (a share is NaN otherwise). This process always counts in
    the generator's share; ``coordinator_works=False`` leaves it out of ``generator_procs`` (the
    processes that carry load), when it only coordinates workers."""

    def __init__(
        self,
        server_pid: int = 0,
        generator_pids: Iterable[int] = (),
        *,
        coordinator_works: bool = True,
    ) -> None:
        self.server_pid = server_pid
        self.coordinator_works = coordinator_works
        self.generator_pids = [os.getpid(), *generator_pids]
        self._server = 0.0
        self._generator = 0.0
        self._wall = 0.0
        self.figures: dict[str, float] = {}

    def add_generator(self, pid: int) -> None:
        self.generator_pids.append(pid)

    def _generator_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.generator_pids)

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._server = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self._generator = self._generator_seconds()

    def stop(self) -> dict[str, float]:
        """The phase's shares: ``server_cpu_share`` (with a server pid), ``generator_cpu_share``
        and ``generator_procs``; also kept in :attr:`figures`."""
        wall = max(time.perf_counter() - self._wall, 1e-9)
        figures = {
            "generator_cpu_share": (self._generator_seconds() - self._generator) / wall,
            "generator_procs": float(len(self.generator_pids) - (not self.coordinator_works)),
        }
        if self.server_pid:
            server = process_cpu_seconds(self.server_pid) - self._server
            figures["server_cpu_share"] = server / wall
        self.figures = figures
        return figures


def limit_of(result: dict[str, object], generator_cores: int) -> str:
    """Which side limited a figure, from the CPU shares of its measured phase.

    - ``"generator"``: the generator used at least :data:`SATURATED` of what it can use, while
      the server stayed below :data:`SATURATED` of one core. What the generator can use is
      ``min(generator processes, cores it may run on)``: each generator process reads its sockets
      from one thread, so it tops out at one core. The server's ceiling is one core: its event
      loop is one thread (Switchboard's, Node's), and a pinned server has exactly one core. Such a
      figure says the server can do at least this much, not how much it can do.
    - ``"server"``: the server at :data:`SATURATED` of a core or more, the generator below its
      mark: the figure measures the server.
    - ``"both"``: both saturated (typical when they share cores unpinned).
    - ``""``: neither is CPU-bound (waiting on a disk, a lock, a timer), or no shares known.
    """
    server = result.get("server_cpu_share")
    generator = result.get("generator_cpu_share")
    if not isinstance(server, float) or not isinstance(generator, float):
        return ""
    procs = result.get("generator_procs")
    capacity = min(int(procs) if isinstance(procs, float) else 1, max(generator_cores, 1))
    generator_busy = generator >= SATURATED * capacity
    server_busy = server >= SATURATED
    if generator_busy and server_busy:
        return "both"
    if generator_busy:
        return "generator"
    if server_busy:
        return "server"
    return ""


# --- pinning -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pinning:
    """The cores of each side; the server's threads all go to ``server``, every generator
    process to ``generator``."""

    server: frozenset[int]
    generator: frozenset[int]

    def describe(self) -> str:
        return f"server on cores {_cores(self.server)}, generator on {_cores(self.generator)}"


def _cores(cores: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def _parse_cores(text: str) -> frozenset[int]:
    cores: set[int] = set()
    for part in text.replace("+", " ").split():
        low, _, high = part.partition("-")
        cores.update(range(int(low), int(high or low) + 1))
    return frozenset(cores)


def parse_pinning(spec: str, allowed: Sequence[int] | None = None) -> Pinning | None:
    """``off`` (or ``none``): no pinning. ``auto``: the server on the first core this process
    may use, the generator on the others. ``server=0,generator=1-3`` (cores joined with ``+``:
    ``generator=1+3``): as given; ``generator`` defaults to every allowed core but the server's.
    Refuses overlapping sides and cores this process may not use."""
    spec = spec.strip().lower()
    if spec in ("off", "none", "no", ""):
        return None
    usable = sorted(allowed if allowed is not None else os.sched_getaffinity(0))
    if len(usable) < 2:
        raise ValueError("pinning needs at least two usable cores")
    if spec == "auto":
        return Pinning(frozenset(usable[:1]), frozenset(usable[1:]))
    sides = dict(part.split("=", 1) for part in spec.split(",") if part)
    unknown = set(sides) - {"server", "generator"}
    if unknown or "server" not in sides:
        raise ValueError(f"--pin: expected server=CORES[,generator=CORES], got {spec!r}")
    server = _parse_cores(sides["server"])
    generator = (
        _parse_cores(sides["generator"]) if "generator" in sides else frozenset(usable) - server
    )
    if not server or not generator or server & generator:
        raise ValueError("--pin: each side needs its own cores")
    if not (server | generator) <= set(usable):
        raise ValueError(f"--pin: this process may only use cores {_cores(usable)}")
    return Pinning(server, generator)


def pin_process(pid: int, cores: frozenset[int]) -> None:
    """Every thread of ``pid`` onto ``cores`` (threads it starts later inherit the mask of the
    thread that starts them)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # a thread that ended meanwhile
            pass


def cores_of(pid: int) -> set[int]:
    """The union of the cores the threads of ``pid`` may run on (to check a pinning held)."""
    out: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out |= os.sched_getaffinity(int(tid))
        except OSError:
            pass
    return out
