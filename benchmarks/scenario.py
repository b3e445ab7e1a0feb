"""One benchmark scenario against a running server, as a process of its own; prints one JSON line.

    python -m benchmarks.scenario fanout --port N [--in-flight 16] [--clients 1000]
    python -m benchmarks.scenario echo|connect|idle --port N [--clients N] [--server-pid PID]
    python -m benchmarks.scenario echo|fanout --port N --parser msgpack   (MessagePack clients)

With ``--server-pid`` the server's CPU share during the measured phase is reported beside the
generator's (read from /proc, :mod:`benchmarks.cpu`), so a reader can see which side was the
bottleneck.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import msgspec
import trio

from benchmarks import loadgen
from benchmarks.cpu import Meter


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
        meter = Meter(pid or 0)
        meter.start()
        await trio.sleep(seconds)  # the measured idle window
        shares = meter.stop()
        nursery.cancel_scope.cancel()
    return {
        "kib_per_conn": (rss_after - rss_before) / clients / 1024,
        "idle_cpu_percent": 100 * shares.get("server_cpu_share", float("nan")),
        "seconds_to_all": connect_seconds,
        **shares,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    host, port, pid = args.host, args.port, args.server_pid
    if args.scenario == "fanout":
        result = await loadgen.fanout(
            host,
            port,
            clients=args.clients or 1000,
            broadcasts=args.broadcasts,
            in_flight=args.in_flight,
            other_ports=tuple(int(p) for p in args.other_ports.split(",") if p),
            server_pid=pid,
            parser=args.parser,
        )
    elif args.scenario == "echo":
        result = await loadgen.echo(
            host,
            port,
            clients=args.clients or 100,
            seconds=args.seconds,
            server_pid=pid,
            parser=args.parser,
        )
    elif args.scenario == "connect":
        result = await loadgen.connect(host, port, clients=args.clients or 1000, server_pid=pid)
    elif args.scenario == "idle":
        result = await idle(host, port, args.clients or 10000, args.seconds, pid)
    else:
        raise SystemExit(f"unknown scenario {args.scenario}")
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
    parser.add_argument(
        "--parser", choices=loadgen.PARSERS, default="json", help="fanout, echo: clients' parser"
    )
    args = parser.parse_args()
    if args.scenario == "fanout" and args.procs > 1:
        result = loadgen.fanout_processes(
            args.host,
            args.port,
            clients=args.clients or 1000,
            broadcasts=args.broadcasts,
            in_flight=args.in_flight,
            procs=args.procs,
            server_pid=args.server_pid,
            parser=args.parser,
        )
    else:
        result = trio.run(main_async, args)
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
