"""The benchmark harness: Switchboard (native and ASGI-only paths) side by side with
python-socketio and Node's socket.io on the protocol scenarios, and Switchboard's full server beside
the Node application peer on the application scenarios (``chat``, ``ingest``): same machine, same
run, same load generator.

    python -m benchmarks.run [--runs 3] [--servers ...] [--scenarios ...] [--pin auto|off|SPEC]

``make bench`` runs every scenario with every server that can run it: the protocol scenarios
(connect, fan-out, echo, idle; fan-out and echo again with socket.io-msgpack-parser clients) on
``switchboard``, ``switchboard-asgi``, ``python-socketio`` and ``node-socketio``; ``chat`` and
``ingest`` on ``switchboard`` (``switchboard serve``) and ``node-app``
(``benchmarks/peers/node/app.js``); the two-node fan-out on Switchboard and Node clusters. Each
server is started on a free port and stopped after its scenarios; each scenario run is a fresh
generator process (``benchmarks.scenario``, ``benchmarks.chat``, ``benchmarks.ingest``), whose
measured phase reads its sockets from one epoll loop.

Pinning (``--pin``, :mod:`benchmarks.cpu`): by default (``auto``, on a machine with two cores or
more) every thread of the server runs on the first usable core and the generator, all its
processes, on the others, so the figure measures a server on one core, not two processes fighting
for the same cores. ``--pin server=0,generator=1-3`` chooses the cores; ``--pin off`` is the
unpinned mode (both sides on every core). The two-node cluster scenarios always run unpinned.

Every result carries each side's CPU share over the measured phase (server: its process, all
threads; generator: its processes summed; 1.0 = one core) and ``limit``, the side that was
saturated (:func:`benchmarks.cpu.limit_of`). Prints a table of medians (min–max) with the ratio of
Switchboard against each peer (a figure marked † was generator-limited in most runs: the server
can do at least that much), a table of CPU shares, and appends every raw result as a JSON line to
``benchmarks/results/<timestamp>.jsonl`` (git-ignored). Loopback only; every scenario is bounded
in count and time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from benchmarks import apps
from benchmarks.apps import free_port
from benchmarks.cpu import Pinning, cores_of, limit_of, parse_pinning, pin_process

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
NODE_PEER_MODULES = ROOT / "benchmarks" / "peers" / "node" / "node_modules"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: Callable[[int, str], list[str]]  # (port, data folder) -> argv
    ready: str = "ready on"  # what the server prints once it listens
    node_module: str = ""  # the npm package it needs (skipped without it)
    # a server with one parser for every client (Node, python-socketio) is started with
    # ``--parser msgpack`` for the MessagePack scenarios; Switchboard tells each client's parser
    # from its first packet, so one server serves both kinds of scenario
    one_parser_per_server: bool = False


def _protocol(*argv: str) -> Callable[[int, str], list[str]]:
    return lambda port, data: [*argv, "--port", str(port)]


SERVERS = {
    "switchboard": ServerSpec("switchboard", _protocol(sys.executable, "-m", "benchmarks.server")),
    "switchboard-asgi": ServerSpec(
        "switchboard-asgi", _protocol(sys.executable, "-m", "benchmarks.server", "--asgi-only")
    ),
    "python-socketio": ServerSpec(
        "python-socketio",
        _protocol(sys.executable, "-m", "benchmarks.peers.python_socketio_server"),
        one_parser_per_server=True,
    ),
    # socket.io 4.8.1 pinned in benchmarks/peers/node/package.json (`make bench` runs npm ci)
    "node-socketio": ServerSpec(
        "node-socketio",
        _protocol("node", "benchmarks/peers/node/server.js"),
        "ready on",
        "socket.io",
        one_parser_per_server=True,
    ),
}

# The application scenarios' servers: the whole of Switchboard, and the Node application peer
# (socket.io + better-sqlite3 + jsonwebtoken, pinned in the same package.json).
APP_SERVERS = {
    "switchboard": ServerSpec("switchboard", apps.switchboard_command, "listening on"),
    "node-app": ServerSpec("node-app", apps.node_app_command, "ready on", "better-sqlite3"),
}
APP_PEERS = ("node-app",)


@dataclass(frozen=True)
class Scenario:
    name: str
    args: tuple[str, ...]
    figure: str  # the headline figure of the table
    higher_is_better: bool = True
    fresh_server: bool = False  # memory figures need a server that has served nothing else
    module: str = "benchmarks.scenario"  # the generator
    parser: str = "json"  # the clients' Socket.IO parser

    def server_args(self, spec: ServerSpec) -> tuple[str, ...]:
        """What the server needs on its command line to serve this scenario's clients."""
        if self.parser != "json" and spec.one_parser_per_server:
            return ("--parser", self.parser)
        return ()


SCENARIOS = {
    "connect-1000": Scenario(
        "connect-1000", ("connect", "--clients", "1000"), "connects_per_s", True, True
    ),
    "connect-5000": Scenario(
        "connect-5000", ("connect", "--clients", "5000"), "seconds_to_all", False, True
    ),
    "fanout-1": Scenario("fanout-1", ("fanout", "--in-flight", "1"), "deliveries_per_s"),
    "fanout-16": Scenario("fanout-16", ("fanout", "--in-flight", "16"), "deliveries_per_s"),
    "echo": Scenario("echo", ("echo", "--clients", "100", "--seconds", "10"), "acks_per_s"),
    # the same with socket.io-msgpack-parser clients
    "fanout-msgpack-1": Scenario(
        "fanout-msgpack-1",
        ("fanout", "--in-flight", "1", "--parser", "msgpack"),
        "deliveries_per_s",
        parser="msgpack",
    ),
    "echo-msgpack": Scenario(
        "echo-msgpack",
        ("echo", "--clients", "100", "--seconds", "10", "--parser", "msgpack"),
        "acks_per_s",
        parser="msgpack",
    ),
    "idle-10000": Scenario(
        "idle-10000", ("idle", "--clients", "10000", "--seconds", "10"), "kib_per_conn", False, True
    ),
}

# Application scenarios: each run on a fresh server (a fresh data folder), the generator given
# the server's port and pid.
APP_SCENARIOS = {
    "ingest": Scenario(
        "ingest",
        ("--batch", "1000", "--concurrency", "4", "--seconds", "10"),
        "events_per_s",
        fresh_server=True,
        module="benchmarks.ingest",
    ),
    "chat": Scenario(
        "chat",
        ("--rooms", "10", "--per-room", "20", "--seconds", "10"),
        "durable_messages_per_s",
        fresh_server=True,
        module="benchmarks.chat",
    ),
}


# Across two nodes joined by Redis: the publisher on one, the members spread over both; each side
# on its own Redis adapter (Switchboard's; Node's @socket.io/redis-adapter), one private Redis.
CLUSTER_SERVERS = {
    "switchboard-cluster": SERVERS["switchboard"],
    "node-cluster": SERVERS["node-socketio"],
}
CLUSTER_FLAG = {"switchboard-cluster": "--redis-url", "node-cluster": "--redis"}
CLUSTER_SCENARIOS = {
    "fanout-cluster-1": ("fanout", "--in-flight", "1"),
    "fanout-cluster-16": ("fanout", "--in-flight", "16"),
}


def _affinity(cores: frozenset[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` putting the child on ``cores`` before it starts any thread."""
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def installed(spec: ServerSpec) -> bool:
    return not spec.node_module or (NODE_PEER_MODULES / spec.node_module).is_dir()


class RunningServer:
    """A server on a free port and a fresh data folder; with ``cores``, every thread of it on
    those cores (set before it starts, checked once it listens)."""

    def __init__(self, spec: ServerSpec, *extra: str, cores: frozenset[int] | None = None) -> None:
        self.spec = spec
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="bench-")
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": self.data, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [*spec.command(self.port, self.data), *extra],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_affinity(cores),
        )
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        try:
            while time.monotonic() < deadline:
                line = self.proc.stdout.readline()
                if spec.ready in line:
                    break
                if not line and self.proc.poll() is not None:
                    raise RuntimeError(f"{spec.name} exited with {self.proc.returncode}")
            self._wait_listening(deadline)
            if cores is not None:
                pin_process(self.proc.pid, cores)  # threads started before the mask, if any
                if not cores_of(self.proc.pid) <= cores:
                    raise RuntimeError(f"{spec.name}: could not pin every thread")
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)  # readiness poll interval
        raise RuntimeError(f"{self.spec.name} is not listening")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)  # an ingest run leaves hundreds of MB


def run_generator(
    command: list[str], what: str, cores: frozenset[int] | None, timeout: float = 300
) -> dict[str, Any]:
    """Run one generator process (on ``cores``; its worker processes inherit them) and decode
    the JSON of its last line."""
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_affinity(cores),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


class RunningCluster:
    """A private Redis and two nodes of one kind on it."""

    def __init__(self, name: str) -> None:
        redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{redis_port}"
        spec = CLUSTER_SERVERS[name]
        self.nodes = [RunningServer(spec, CLUSTER_FLAG[name], url) for _ in range(2)]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.kill()


def run_cluster_scenario(cluster: RunningCluster, args: tuple[str, ...]) -> dict[str, Any]:
    first, second = cluster.nodes
    command = [
        sys.executable, "-m", "benchmarks.scenario", *args, "--port", str(first.port),
        "--other-ports", str(second.port), "--server-pid", str(first.proc.pid),
    ]  # fmt: skip
    return run_generator(command, str(args), None)


def with_seconds(args: tuple[str, ...], seconds: float | None) -> tuple[str, ...]:
    """``args`` with the value of ``--seconds`` replaced (when the scenario has one)."""
    if seconds is None or "--seconds" not in args:
        return args
    at = args.index("--seconds") + 1
    return (*args[:at], str(seconds), *args[at + 1 :])


@dataclass(frozen=True)
class Plan:
    """How every scenario of this run is run."""

    runs: int
    pinning: Pinning | None
    loadgen_procs: int
    seconds: float | None  # overrides the measured seconds of the timed scenarios

    @property
    def generator_cores(self) -> int:
        if self.pinning is not None:
            return len(self.pinning.generator)
        return len(os.sched_getaffinity(0))

    @property
    def server_cores(self) -> frozenset[int] | None:
        return self.pinning.server if self.pinning else None

    def describe(self) -> str:
        return self.pinning.describe() if self.pinning else "unpinned"


def run_scenario(server: RunningServer, scenario: Scenario, plan: Plan) -> dict[str, Any]:
    args = with_seconds(scenario.args, plan.seconds)
    procs = plan.loadgen_procs
    if procs > 1 and (scenario.args[:1] == ("fanout",) or scenario.name == "chat"):
        args = (*args, "--procs", str(procs))
    command = [
        sys.executable, "-m", scenario.module, *args, "--port", str(server.port),
        "--server-pid", str(server.proc.pid),
    ]  # fmt: skip
    cores = plan.pinning.generator if plan.pinning else None
    result = run_generator(command, f"{scenario.name} on {server.spec.name}", cores)
    result["limit"] = limit_of(result, plan.generator_cores)
    return result


def run_on(
    spec: ServerSpec,
    scenarios: list[Scenario],
    plan: Plan,
    record: Callable[[str, Scenario, int, dict[str, Any]], None],
) -> None:
    """Every scenario, ``plan.runs`` times, on servers of one kind (one shared server for the
    scenarios that do not need a fresh one)."""
    shared: dict[tuple[str, ...], RunningServer] = {}  # by the server's extra arguments
    try:
        for scenario in scenarios:
            extra = scenario.server_args(spec)
            for run in range(plan.runs):
                server: RunningServer | None = None
                try:
                    if scenario.fresh_server:
                        server = RunningServer(spec, *extra, cores=plan.server_cores)
                    else:
                        if extra not in shared:
                            shared[extra] = RunningServer(spec, *extra, cores=plan.server_cores)
                        server = shared[extra]
                    result = run_scenario(server, scenario, plan)
                except Exception as exc:  # keep going: one failure is a row, not the end
                    result = {"error": str(exc)[-1500:]}
                finally:
                    if server is not None and server not in shared.values():
                        server.stop()
                record(spec.name, scenario, run, result)
    finally:
        for running in shared.values():
            running.stop()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {python}"


def fmt(values: list[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.1f}"
    return f"{med:,.1f} ({min(values):,.1f}–{max(values):,.1f})"


def summary_line(server: str, scenario: Scenario, run: int, result: dict[str, Any]) -> str:
    """One run, for the console: the headline figure, both CPU shares, the limit, the rest."""
    if "error" in result:
        return f"  {server:>17} {scenario.name:<13} run {run + 1}: failed: {result['error']}"
    head = f"{scenario.figure}={result.get(scenario.figure, float('nan')):,.1f}"
    server_share = result.get("server_cpu_share", float("nan"))
    generator_share = result.get("generator_cpu_share", float("nan"))
    cpu = f"cpu: server {server_share:.0%}, generator {generator_share:.0%}"
    limit = f" [{result['limit']}-limited]" if result.get("limit") else ""
    skip = {scenario.figure, "server_cpu_share", "generator_cpu_share", "limit", "generator_procs"}
    rest = ", ".join(
        f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.items()
        if k not in skip
    )
    return f"  {server:>17} {scenario.name:<13} run {run + 1}: {head}; {cpu}{limit}; {rest}"


Table = dict[tuple[str, str], list[dict[str, Any]]]


def generator_limited(results: list[dict[str, Any]]) -> bool:
    """Most runs were generator-limited."""
    limited = sum(1 for r in results if r.get("limit") == "generator")
    return limited * 2 > len(results)


def figure_cell(results: list[dict[str, Any]], figure: str) -> tuple[str, float | None]:
    values = [r[figure] for r in results if isinstance(r.get(figure), float | int)]
    if not values:
        return ("failed" if results else "n/a"), None
    mark = " †" if generator_limited(results) else ""
    return fmt(values) + mark, statistics.median(values)


def print_table(
    title: str, scenarios: list[Scenario], names: list[str], peers: list[str], table: Table
) -> None:
    """Medians per server, then the ratio of Switchboard against each peer (> 1: Switchboard
    better, for figures where lower is better too)."""
    print(f"\n{title}\n")
    header = " | ".join(names) + "".join(f" | switchboard vs {p}" for p in peers)
    print(f"| scenario | figure | {header} |")
    print("|---|---|" + "---|" * (len(names) + len(peers)))
    for scenario in scenarios:
        cells, medians = [], {}
        for name in names:
            cell, median = figure_cell(table.get((scenario.name, name), []), scenario.figure)
            cells.append(cell)
            if median is not None:
                medians[name] = median
        for peer in peers:
            ratio = ""
            if medians.get("switchboard") and medians.get(peer):
                a, b = medians["switchboard"], medians[peer]
                ratio = f"{(a / b if scenario.higher_is_better else b / a):.2f}×"
            cells.append(ratio)
        print(f"| {scenario.name} | {scenario.figure} | " + " | ".join(cells) + " |")


def print_cpu_table(scenarios: list[Scenario], names: list[str], table: Table) -> None:
    """Each side's CPU share (median over the runs, % of one core) and the limit of each run."""
    print("\nCPU over the measured phase (median, % of one core; limit per run)\n")
    print("| scenario | server | server CPU | generator CPU (processes) | limit |")
    print("|---|---|---|---|---|")
    for scenario in scenarios:
        for name in names:
            results = [r for r in table.get((scenario.name, name), []) if "error" not in r]
            if not results:
                continue

            def median(key: str, rows: list[dict[str, Any]] = results) -> str:
                values = [r[key] for r in rows if isinstance(r.get(key), float)]
                return f"{100 * statistics.median(values):.0f} %" if values else "n/a"

            procs = max(int(r.get("generator_procs", 1)) for r in results)
            limits = ", ".join(r.get("limit") or "-" for r in results)
            print(
                f"| {scenario.name} | {name} | {median('server_cpu_share')} | "
                f"{median('generator_cpu_share')} ({procs}) | {limits} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default=",".join(dict.fromkeys([*SERVERS, *APP_SERVERS])))
    parser.add_argument(
        "--scenarios", default=",".join([*SCENARIOS, *APP_SCENARIOS, *CLUSTER_SCENARIOS])
    )
    parser.add_argument(
        "--pin",
        default="auto",
        help="auto (server on the first core, generator on the rest; the default), off, or "
        "server=CORES[,generator=CORES], e.g. server=0,generator=1-3",
    )
    parser.add_argument(
        "--loadgen-procs",
        type=int,
        default=1,
        help="spread the fan-out and chat generators over N processes (with more cores)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured seconds of the timed scenarios"
    )
    args = parser.parse_args()
    try:
        usable = os.sched_getaffinity(0)
        pinning = parse_pinning("off" if len(usable) < 2 and args.pin == "auto" else args.pin)
    except ValueError as err:
        sys.exit(str(err))
    plan = Plan(args.runs, pinning, args.loadgen_procs, args.seconds)
    wanted = args.servers.split(",")
    chosen = args.scenarios.split(",")
    unknown = set(chosen) - {*SCENARIOS, *APP_SCENARIOS, *CLUSTER_SCENARIOS}
    unknown |= set(wanted) - {*SERVERS, *APP_SERVERS}
    if unknown:
        sys.exit(f"unknown scenarios or servers: {', '.join(sorted(unknown))}")
    servers = [SERVERS[n] for n in wanted if n in SERVERS and _usable(SERVERS[n])]
    app_servers = [APP_SERVERS[n] for n in wanted if n in APP_SERVERS and _usable(APP_SERVERS[n])]
    scenarios = [SCENARIOS[name] for name in chosen if name in SCENARIOS]
    app_scenarios = [APP_SCENARIOS[name] for name in chosen if name in APP_SCENARIOS]
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = RESULTS / f"{stamp}.jsonl"
    table: Table = {}
    print(f"{machine()}; {plan.describe()}", flush=True)
    with out_path.open("w") as out:

        def record(server: str, scenario: Scenario, run: int, result: dict[str, Any]) -> None:
            row = {"ts": stamp, "server": server, "scenario": scenario.name, "run": run,
                   "pinning": plan.describe(), **result}  # fmt: skip
            out.write(msgspec.json.encode(row).decode() + "\n")
            out.flush()
            table.setdefault((scenario.name, server), []).append(result)
            print(summary_line(server, scenario, run, result), flush=True)

        if scenarios:
            for spec in servers:
                run_on(spec, scenarios, plan, record)
        if app_scenarios:
            for spec in app_servers:
                run_on(spec, app_scenarios, plan, record)
        clusters = run_clusters(chosen, args.runs, out, stamp)
    print(f"\n{machine()}; {plan.describe()}; median of {args.runs} runs (min–max)")
    print(f"raw results: {out_path}")
    print("† generator-limited in most runs: the server can do at least this much")
    if scenarios and servers:
        names = [s.name for s in servers]
        peers: list[str] = [p for p in ("python-socketio", "node-socketio") if p in names]
        print_table("Protocol scenarios", scenarios, names, peers, table)
    if app_scenarios and app_servers:
        names = [s.name for s in app_servers]
        peers = [p for p in APP_PEERS if p in names]
        print_table("Application scenarios", app_scenarios, names, peers, table)
    all_names = list(dict.fromkeys(s.name for s in [*servers, *app_servers]))
    print_cpu_table([*scenarios, *app_scenarios], all_names, table)
    print_cluster_table(clusters)


def _usable(spec: ServerSpec) -> bool:
    if installed(spec):
        return True
    print(f"skipping {spec.name}: run `make bench` (or npm ci in benchmarks/peers/node)")
    return False


def run_clusters(
    chosen: list[str], runs: int, out: IO[str], stamp: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each cluster scenario on two Switchboard nodes, then on two Node servers (unpinned)."""
    wanted = [name for name in chosen if name in CLUSTER_SCENARIOS]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not wanted:
        return results
    kinds = [k for k in CLUSTER_SERVERS if installed(CLUSTER_SERVERS[k])]
    for kind in kinds:
        cluster = RunningCluster(kind)
        try:
            for name in wanted:
                for run in range(runs):
                    try:
                        result = run_cluster_scenario(cluster, CLUSTER_SCENARIOS[name])
                    except Exception as exc:
                        result = {"error": str(exc)[-1500:]}
                    row = {"ts": stamp, "server": kind, "scenario": name, "run": run,
                           "pinning": "unpinned", **result}  # fmt: skip
                    out.write(msgspec.json.encode(row).decode() + "\n")
                    results.setdefault((name, kind), []).append(result)
                    print(f"  {kind:>19} {name:<17} run {run + 1}: {result}", flush=True)
        finally:
            cluster.stop()
    return results


def print_cluster_table(results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    if not results:
        return
    print("\n| scenario (2 nodes) | figure | switchboard-cluster | node-cluster | ratio |")
    print("|---|---|---|---|---|")
    for name in CLUSTER_SCENARIOS:
        for figure in ("deliveries_per_s", "p99_ms"):
            cells, medians = [], {}
            for kind in CLUSTER_SERVERS:
                values = [r[figure] for r in results.get((name, kind), []) if figure in r]
                cells.append(fmt(values) if values else "n/a")
                if values:
                    medians[kind] = statistics.median(values)
            ratio = ""
            if len(medians) == 2 and all(medians.values()):
                a, b = medians["switchboard-cluster"], medians["node-cluster"]
                ratio = f"{(a / b if figure == 'deliveries_per_s' else b / a):.1f}×"
            print(f"| {name} | {figure} | {cells[0]} | {cells[1]} | {ratio} |")


if __name__ == "__main__":
    main()
