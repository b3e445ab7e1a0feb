"""Chat benchmark: durable messages/s through ``message:send`` on ``/chat``, and ``message:new``
latency.

``--rooms`` chats with ``--per-room`` members each; every member sends ``message:send`` with an
ack, waits for the ack (the servers ack only after the message is committed), and sends again,
for ``--seconds``. Durable messages/s = successful acks / elapsed. Each message's content is the
sender's ``perf_counter``; every ``message:new`` received gives one delivery latency.

The clients connect with trio (``/chat`` with a JWT, then ``join:chat``); the measured phase reads
every socket from one epoll loop (:func:`benchmarks.loadgen.pump`), so the generator costs far
less per message than the server. ``--procs N`` splits the rooms over N generator processes.

Without ``--port`` it starts the server itself (``--server switchboard``: ``switchboard serve``;
``--server node-app``: the Node application peer) on a free port with a fresh data folder and
stops it afterwards; with ``--port`` it uses a running one started with the benchmark secret
(:mod:`benchmarks.apps`)::

    python -m benchmarks.chat [--server node-app] [--rooms 10] [--per-room 20] [--seconds 10]
    python -m benchmarks.chat --port N [--server-pid PID]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

import httpx
import msgspec
import trio

from benchmarks.apps import token
from benchmarks.cpu import Meter
from benchmarks.loadgen import Client, FrameReader, client_frame, detach, percentile, pump

PREFIX = b"/chat,"
ACK = b"43" + PREFIX
NEW = b'42/chat,["message:new",'
CONTENT = b'"content":"'


def user_of(index: int) -> str:
    return f"bench-user-{index}"


async def create_chats(port: int, rooms: int, per_room: int) -> list[str]:
    """``rooms`` chats through ``POST /api/chats``, members ``bench-user-<i>``; their ids."""
    admin = token("bench-admin", role="admin")
    chat_ids = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for r in range(rooms):
            members = [user_of(i) for i in range(r * per_room, (r + 1) * per_room)]
            answer = await http.post(
                "/api/chats",
                json={"name": f"bench-{r}", "participants": members},
                headers={"Authorization": f"Bearer {admin}"},
            )
            answer.raise_for_status()
            chat_ids.append(answer.json()["chat"]["chatId"])
    return chat_ids


async def connect_members(ports: list[int], members: list[tuple[str, str]]) -> list[FrameReader]:
    """Connect one client per ``(user, chat id)``, joined to its chat, in that order; member
    ``i`` on ``ports[i % len(ports)]`` (the nodes of a cluster take turns)."""
    clients: list[Client | None] = [None] * len(members)
    async with trio.open_nursery() as nursery:
        limiter = trio.CapacityLimiter(50)

        async def connect(index: int, user: str, chat_id: str) -> None:
            async with limiter:
                port = ports[index % len(ports)]
                client = await Client.connect("127.0.0.1", port, namespace="/chat")
                nursery.start_soon(client.read_loop)
                await client.join_namespace({"token": token(user)})
                joined = await client.emit_with_ack("join:chat", {"chatId": chat_id})
                assert joined[0]["success"], joined
                clients[index] = client

        async with trio.open_nursery() as openers:
            for index, (user, chat_id) in enumerate(members):
                openers.start_soon(connect, index, user, chat_id)
        await trio.sleep(0.5)  # let the joins' broadcasts drain before the measured phase
        nursery.cancel_scope.cancel()
    return await detach([c for c in clients if c is not None])


def chat_phase(
    readers: list[FrameReader], chat_ids: list[str], seconds: float
) -> tuple[int, int, list[float], list[float], float]:
    """Every reader sends to its chat, waits for the ack, sends again; until ``seconds`` have
    passed and every ack is in. (acks, refusals, ack latencies, message:new latencies, elapsed)"""
    bodies = {
        r: b'["message:send",{"chatId":' + msgspec.json.encode(c) + b',"content":"'
        for r, c in zip(readers, chat_ids, strict=True)
    }
    sent_at: dict[FrameReader, float] = {}
    next_id: dict[FrameReader, int] = {}
    ack_latencies: list[float] = []
    latencies: list[float] = []
    state = {"acks": 0, "refused": 0, "outstanding": 0}
    deadline = time.perf_counter() + seconds

    def send(reader: FrameReader, now: float) -> None:
        ack = next_id.get(reader, 0)
        next_id[reader] = ack + 1
        sent_at[reader] = now
        body = bodies[reader] + repr(now).encode() + b'","type":"text"}]'
        reader.sock.sendall(client_frame(b"42" + PREFIX + str(ack).encode() + body))

    def on_text(reader: FrameReader, text: bytes, now: float) -> None:
        if text.startswith(NEW):
            at = text.find(CONTENT) + len(CONTENT)
            latencies.append(now - float(text[at : text.index(b'"', at)]))
        elif text.startswith(ACK):
            ack_latencies.append(now - sent_at[reader])
            if text.find(b'"success":true', 0, 64) >= 0:
                state["acks"] += 1
            else:
                state["refused"] += 1
            if now < deadline:
                send(reader, now)
            else:
                state["outstanding"] -= 1

    started = time.perf_counter()
    for reader in readers:
        send(reader, started)
    state["outstanding"] = len(readers)

    def done() -> bool:
        return state["outstanding"] == 0

    elapsed = pump(readers, on_text, done, seconds + 60)
    return state["acks"], state["refused"], ack_latencies, latencies, elapsed


def _worker(ports: list[int], members: list[tuple[str, str]], seconds: float, pipe: Any) -> None:
    readers = trio.run(connect_members, ports, members)
    pipe.send("ready")
    pipe.recv()
    pipe.send(chat_phase(readers, [c for _, c in members], seconds))
    pipe.recv()  # stay alive until the coordinator has read this process's CPU time
    for reader in readers:
        reader.sock.close()


def bench(
    port: int | list[int],
    rooms: int,
    per_room: int,
    seconds: float,
    server_pid: int = 0,
    procs: int = 1,
) -> dict[str, float]:
    """``port``: the server, or the nodes of a cluster (members spread over them)."""
    ports = [port] if isinstance(port, int) else port
    chat_ids = trio.run(create_chats, ports[0], rooms, per_room)
    members = [(user_of(i), chat_ids[i // per_room]) for i in range(rooms * per_room)]
    meter = Meter(server_pid, coordinator_works=procs <= 1)
    if procs <= 1:
        readers = trio.run(connect_members, ports, members)
        meter.start()
        results = [chat_phase(readers, [c for _, c in members], seconds)]
        for reader in readers:
            reader.sock.close()
    else:  # whole rooms per process: a room's deliveries all land in one process
        context = multiprocessing.get_context("spawn")
        workers = []
        for p in range(procs):
            share = [m for i, m in enumerate(members) if (i // per_room) % procs == p]
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(ports, share, seconds, theirs))
            process.start()
            workers.append((process, ours))
        for process, pipe in workers:
            assert pipe.recv() == "ready"
            assert process.pid is not None
            meter.add_generator(process.pid)
        meter.start()
        for _, pipe in workers:
            pipe.send("go")
        results = [pipe.recv() for _, pipe in workers]
    shares = meter.stop()
    if procs > 1:
        for process, pipe in workers:
            pipe.send("bye")
            process.join(10)
    elapsed = max(r[4] for r in results)
    latencies = [x for r in results for x in r[3]]
    ack_latencies = [x for r in results for x in r[2]]
    return {
        "durable_messages_per_s": sum(r[0] for r in results) / elapsed,
        "deliveries_per_s": len(latencies) / elapsed,
        "message_new_p50_ms": percentile(latencies, 0.5) * 1000,
        "message_new_p99_ms": percentile(latencies, 0.99) * 1000,
        "ack_p50_ms": percentile(ack_latencies, 0.5) * 1000,
        "ack_p99_ms": percentile(ack_latencies, 0.99) * 1000,
        "refused": float(sum(r[1] for r in results)),
        **shares,
    }


def main() -> None:
    from benchmarks.run import APP_SERVERS, RunningServer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="switchboard", choices=list(APP_SERVERS))
    parser.add_argument("--port", type=int, default=0, help="a running server (default: start)")
    parser.add_argument("--server-pid", type=int, default=0, help="with --port: its CPU share")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--per-room", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    args = parser.parse_args()
    figures = (args.rooms, args.per_room, args.seconds)
    if args.port:
        result = bench(args.port, *figures, server_pid=args.server_pid, procs=args.procs)
    else:
        server = RunningServer(APP_SERVERS[args.server])
        try:
            result = bench(server.port, *figures, server_pid=server.proc.pid, procs=args.procs)
        finally:
            server.stop()
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
