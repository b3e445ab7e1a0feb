"""The benchmark harness: Switchboard (native and ASGI-only paths) side by side with
python-socketio and Node's socket.io, same machine, same run, same load generator.

    python -m benchmarks.run [--runs 3] [--servers ...] [--scenarios ...]     (make bench)

Each server is started on a free port and stopped after its scenarios; each scenario run is a
fresh generator process (``benchmarks.scenario``). Prints a table of medians (min–max) with the
ratio against python-socketio, and appends every raw result as a JSON line to
``benchmarks/results/<timestamp>.jsonl`` (git-ignored). Loopback only; every scenario is bounded
in count and time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: tuple[str, ...]


SERVERS = {
    "switchboard": ServerSpec("switchboard", (sys.executable, "-m", "benchmarks.server")),
    "switchboard-asgi": ServerSpec(
        "switchboard-asgi", (sys.executable, "-m", "benchmarks.server", "--asgi-only")
    ),
    "python-socketio": ServerSpec(
        "python-socketio", (sys.executable, "-m", "benchmarks.peers.python_socketio_server")
    ),
    # socket.io 4.8.1 pinned in benchmarks/peers/node/package.json (`make bench` runs npm ci)
    "node-socketio": ServerSpec("node-socketio", ("node", "benchmarks/peers/node/server.js")),
}
NODE_PEER_MODULES = ROOT / "benchmarks" / "peers" / "node" / "node_modules"


@dataclass(frozen=True)
class Scenario:
    name: str
    args: tuple[str, ...]
    figure: str  # the headline figure of the table
    higher_is_better: bool = True
    fresh_server: bool = False  # memory figures need a server that has served nothing else


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
    "idle-10000": Scenario(
        "idle-10000", ("idle", "--clients", "10000", "--seconds", "10"), "kib_per_conn", False, True
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


# Application scenarios: Switchboard only (the peers have no chat or ingest); each command starts
# its own `switchboard serve` and prints its figures as a JSON last line.
APP_SCENARIOS = {
    "ingest": (("benchmarks.ingest",), "events_per_s"),
    "chat": (("benchmarks.chat",), "durable_messages_per_s"),
}


def run_app_scenario(module: tuple[str, ...], timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", *module], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module[0]} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, spec: ServerSpec, *extra: str) -> None:
        self.spec = spec
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="bench-")
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": self.data, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [*spec.command, "--port", str(self.port), *extra],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "ready on" in line:
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"{spec.name} exited with {self.proc.returncode}")
        self._wait_listening(deadline)

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
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


def run_scenario(
    server: RunningServer, scenario: Scenario, timeout: float = 300, procs: int = 1
) -> dict[str, Any]:
    extra = ["--procs", str(procs)] if procs > 1 and scenario.args[0] == "fanout" else []
    command = [
        sys.executable,
        "-m",
        "benchmarks.scenario",
        *scenario.args,
        "--port",
        str(server.port),
        "--server-pid",
        str(server.proc.pid),
        *extra,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario.name} on {server.spec.name} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--scenarios", default=",".join([*SCENARIOS, *APP_SCENARIOS, *CLUSTER_SCENARIOS])
    )
    parser.add_argument(
        "--loadgen-procs",
        type=int,
        default=1,
        help="spread fan-out members over N generator processes (for machines with more cores)",
    )
    args = parser.parse_args()
    servers = [SERVERS[name] for name in args.servers.split(",")]
    if SERVERS["node-socketio"] in servers and not NODE_PEER_MODULES.is_dir():
        print("skipping node-socketio: run `make bench` (or npm ci in benchmarks/peers/node)")
        servers.remove(SERVERS["node-socketio"])
    chosen = args.scenarios.split(",")
    scenarios = [SCENARIOS[name] for name in chosen if name in SCENARIOS]
    apps = [name for name in chosen if name in APP_SCENARIOS]
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = RESULTS / f"{stamp}.jsonl"
    table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with out_path.open("w") as out:
        for spec in servers:
            shared: RunningServer | None = None
            for scenario in scenarios:
                for run in range(args.runs):
                    if scenario.fresh_server:
                        server = RunningServer(spec)
                    else:
                        shared = shared or RunningServer(spec)
                        server = shared
                    try:
                        result = run_scenario(server, scenario, procs=args.loadgen_procs)
                    except Exception as exc:  # keep going: one failure is a row, not the end
                        result = {"error": str(exc)[:500]}
                    finally:
                        if server is not shared:
                            server.stop()
                    row = {
                        "ts": stamp,
                        "server": spec.name,
                        "scenario": scenario.name,
                        "run": run,
                        **result,
                    }
                    out.write(msgspec.json.encode(row).decode() + "\n")
                    out.flush()
                    table.setdefault((scenario.name, spec.name), []).append(result)
                    print(
                        f"  {spec.name:>17} {scenario.name:<13} run {run + 1}: {result}", flush=True
                    )
            if shared is not None:
                shared.stop()
        app_results: dict[str, list[dict[str, Any]]] = {}
        for name in apps:
            module, _ = APP_SCENARIOS[name]
            for run in range(args.runs):
                try:
                    result = run_app_scenario(module)
                except Exception as exc:
                    result = {"error": str(exc)[:500]}
                row = {"ts": stamp, "server": "switchboard", "scenario": name, "run": run, **result}
                out.write(msgspec.json.encode(row).decode() + "\n")
                out.flush()
                app_results.setdefault(name, []).append(result)
                print(f"  {'switchboard':>17} {name:<13} run {run + 1}: {result}", flush=True)
        clusters = run_clusters(chosen, args.runs, out, stamp)
    print(f"\n{machine()}; median of {args.runs} runs (min–max); raw results: {out_path}\n")
    names = [s.name for s in servers]
    peers = [p for p in ("python-socketio", "node-socketio") if p in names]
    print(
        "| scenario | figure | "
        + " | ".join(names)
        + "".join(f" | switchboard vs {p}" for p in peers)
        + " |"
    )
    print("|---|---|" + "---|" * (len(names) + len(peers)))
    for scenario in scenarios:
        cells = []
        medians: dict[str, float] = {}
        for name in names:
            values = [
                r[scenario.figure]
                for r in table.get((scenario.name, name), [])
                if scenario.figure in r
            ]
            cells.append(fmt(values) if values else "failed")
            if values:
                medians[name] = statistics.median(values)
        ratios = []
        for peer in peers:
            ratio = ""
            if "switchboard" in medians and medians.get(peer):
                a, b = medians["switchboard"], medians[peer]
                ratio = f"{(a / b if scenario.higher_is_better else b / a):.1f}×"
            ratios.append(ratio)
        row = " | ".join([*cells, *ratios])
        print(f"| {scenario.name} | {scenario.figure} | {row} |")
    for name in apps:
        figure = APP_SCENARIOS[name][1]
        values = [r[figure] for r in app_results.get(name, []) if figure in r]
        cells = [fmt(values) if values else "failed"] + ["n/a"] * (len(names) - 1)
        print(f"| {name} | {figure} | " + " | ".join(cells) + " |" + "  |" * len(peers))
    print_cluster_table(clusters)


def run_clusters(
    chosen: list[str], runs: int, out: Any, stamp: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each cluster scenario on two Switchboard nodes, then on two Node servers."""
    wanted = [name for name in chosen if name in CLUSTER_SCENARIOS]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not wanted:
        return results
    kinds = [k for k in CLUSTER_SERVERS if k != "node-cluster" or NODE_PEER_MODULES.is_dir()]
    for kind in kinds:
        cluster = RunningCluster(kind)
        try:
            for name in wanted:
                for run in range(runs):
                    try:
                        result = run_cluster_scenario(cluster, CLUSTER_SCENARIOS[name])
                    except Exception as exc:
                        result = {"error": str(exc)[:500]}
                    row = {"ts": stamp, "server": kind, "scenario": name, "run": run, **result}
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
