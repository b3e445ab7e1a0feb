"""One benchmark scenario against a running server, as a process of its own; prints one JSON line.

    python -m benchmarks.scenario fanout --port N [--in-flight 16] [--clients 1000]
    python -m benchmarks.scenario echo|connect|idle --port N [--clients N] [--server-pid PID]

With ``--server-pid`` the server's CPU share during the measured phase is reported too (read from
/proc), so a reader can see which side was the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import msgspec
import trio

from benchmarks import loadgen

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def idle(
    host: str, port: int, clients: int, seconds: float, pid: int | None
) -> dict[str, float]:
    """Hold ``clients`` idle connections (heartbeats only): RSS per connection, CPU while idle."""
    async with trio.open_nursery() as nursery:
        probe = (await loadgen.open_clients(host, port, 1, 1, nursery))[0]
        rss_before = float((await probe.emit_with_ack("rss"))[0])
        started = time.perf_counter()
        await loadgen.open_clients(host, port, clients, 500, nursery)
        connect_seconds = time.perf_counter() - started
        rss_after = float((await probe.emit_with_ack("rss"))[0])
        cpu_before = process_cpu_seconds(pid) if pid else 0.0
        await trio.sleep(seconds)  # the measured idle window
        cpu_idle = process_cpu_seconds(pid) - cpu_before if pid else float("nan")
        nursery.cancel_scope.cancel()
    return {
        "kib_per_conn": (rss_after - rss_before) / clients / 1024,
        "idle_cpu_percent": 100 * cpu_idle / seconds,
        "seconds_to_all": connect_seconds,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cpu_before = process_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    wall_before = time.perf_counter()
    host, port = args.host, args.port
    if args.scenario == "fanout":
        result = await loadgen.fanout(
            host,
            port,
            clients=args.clients or 1000,
            broadcasts=args.broadcasts,
            in_flight=args.in_flight,
            other_ports=tuple(int(p) for p in args.other_ports.split(",") if p),
        )
    elif args.scenario == "echo":
        result = await loadgen.echo(host, port, clients=args.clients or 100, seconds=args.seconds)
    elif args.scenario == "connect":
        result = await loadgen.connect(host, port, clients=args.clients or 1000)
    elif args.scenario == "idle":
        result = await idle(host, port, args.clients or 10000, args.seconds, args.server_pid)
    else:
        raise SystemExit(f"unknown scenario {args.scenario}")
    if args.server_pid and args.scenario != "idle":
        wall = time.perf_counter() - wall_before
        result["server_cpu_share"] = (process_cpu_seconds(args.server_pid) - cpu_before) / wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=["fanout", "echo", "connect", "idle"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--broadcasts", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument(
        "--other-ports", default="", help="fanout: the cluster's other nodes (comma-separated)"
    )
    parser.add_argument(
        "--procs", type=int, default=1, help="fanout: spread the members over N processes"
    )
    args = parser.parse_args()
    if args.scenario == "fanout" and args.procs > 1:
        cpu_before = process_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        wall = time.perf_counter()
        result = loadgen.fanout_processes(
            args.host,
            args.port,
            clients=args.clients or 1000,
            broadcasts=args.broadcasts,
            in_flight=args.in_flight,
            procs=args.procs,
        )
        if args.server_pid:
            used = process_cpu_seconds(args.server_pid) - cpu_before
            result["server_cpu_share"] = used / (time.perf_counter() - wall)
    else:
        result = trio.run(main_async, args)
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
