"""A lean Socket.IO load generator: trio sockets speaking raw WebSocket/Engine.IO/Socket.IO frames.

No client library in the way: each simulated client is one TCP stream and one reader task; frames
are built by hand (masked with a zero key, which RFC 6455 allows and which leaves the payload as
is), and server frames are parsed with a minimal parser. ``parser="msgpack"`` speaks
socket.io-msgpack-parser instead of JSON: each Socket.IO packet one binary frame holding a
MessagePack map (``type``, ``nsp``, ``data``, ``id``), Engine.IO's own packets (open, ping) still
text. Latencies use ``time.perf_counter`` (CLOCK_MONOTONIC), comparable across processes on one
machine. Each measured phase reports both sides' CPU shares (:class:`benchmarks.cpu.Meter`), so a
reader can tell when the generator, not the server, is the bottleneck.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from benchmarks.cpu import Meter

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_pack = msgspec.msgpack.encode
_unpack = msgspec.msgpack.decode

PARSERS = ("json", "msgpack")
_EVENT, _ACK = 2, 3
# the first byte of a MessagePack map (fixmap, map 16, map 32): never an Engine.IO text packet's
_MAP_MARKERS = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame with a zero masking key (payload bytes unchanged)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload


PONG = client_frame(b"3")


def split_data_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """The payloads of the complete text and binary frames at the front of ``buf`` (server frames
    are unmasked), and what is left over. A binary payload (MessagePack) starts with a map marker,
    so the two never look alike."""
    out: list[bytes] = []
    n = len(buf)
    pos = 0
    while n - pos >= 2:
        length = buf[pos + 1] & 0x7F
        start = pos + 2
        if length == 126:
            if n - pos < 4:
                break
            length = int.from_bytes(buf[start : start + 2], "big")
            start += 2
        elif length == 127:
            if n - pos < 10:
                break
            length = int.from_bytes(buf[start : start + 8], "big")
            start += 8
        end = start + length
        if end > n:
            break
        if buf[pos] & 0x0F in (1, 2):
            out.append(buf[start:end])
        pos = end
    return out, buf[pos:] if pos else buf


def event_frame(parser: str, args: list[Any], ack_id: int | None = None, nsp: str = "/") -> bytes:
    """A client frame carrying an EVENT packet (with an ack id when given)."""
    if parser == "msgpack":
        packet: dict[str, Any] = {"type": _EVENT, "nsp": nsp, "data": args}
        if ack_id is not None:
            packet["id"] = ack_id
        return client_frame(_pack(packet), opcode=2)
    prefix = b"" if nsp == "/" else nsp.encode() + b","
    ack = b"" if ack_id is None else str(ack_id).encode()
    return client_frame(b"42" + prefix + ack + _encode(args))


def event_args(payload: bytes) -> list[Any] | None:
    """The arguments of a server EVENT on "/" (either parser), or None for any other packet."""
    if payload[:2] == b"42":
        args: list[Any] = _decode(payload[2:])
        return args
    if payload and payload[0] in _MAP_MARKERS:
        packet = _unpack(payload)
        if packet.get("type") == _EVENT:
            data: list[Any] = packet["data"]
            return data
    return None


def is_ack(payload: bytes) -> bool:
    """Whether a server packet is an ACK (either parser)."""
    if payload[:2] == b"43":
        return True
    return bool(payload) and payload[0] in _MAP_MARKERS and _unpack(payload).get("type") == _ACK


class Client:
    """One Socket.IO client on a raw WebSocket."""

    def __init__(
        self, stream: trio.SocketStream, namespace: str = "/", parser: str = "json"
    ) -> None:
        self.stream = stream
        self.namespace = namespace
        self.parser = parser
        # packets on a namespace other than "/" carry "/name," after their type
        self.prefix = b"" if namespace == "/" else namespace.encode() + b","
        self.buffer = b""
        self.acks: dict[int, trio.MemorySendChannel[Any]] = {}
        self.next_ack = 0
        self.on_event: Callable[[bytes], None] | None = None
        self.open_packet: bytes = b""
        self.connected = trio.Event()
        self.pongs_due = 0

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str = "/socket.io/",
        namespace: str = "/",
        parser: str = "json",
    ) -> Client:
        stream = await trio.open_tcp_stream(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("closed during handshake")
            head += data
        status, _, rest = head.partition(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(status.split(b"\r\n", 1)[0].decode())
        client = cls(stream, namespace, parser)
        client.buffer = rest
        return client

    async def send_text(self, text: bytes) -> None:
        await self.stream.send_all(client_frame(text))

    async def join_namespace(self, auth: Any = None) -> None:
        if self.parser == "msgpack":
            packet: dict[str, Any] = {"type": 0, "nsp": self.namespace}
            if auth is not None:
                packet["data"] = auth
            await self.stream.send_all(client_frame(_pack(packet), opcode=2))
        else:
            await self.send_text(b"40" + self.prefix + (_encode(auth) if auth is not None else b""))
        with trio.fail_after(30):
            await self.connected.wait()

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        ack_id = self.next_ack
        self.next_ack += 1
        send, receive = trio.open_memory_channel[Any](1)
        self.acks[ack_id] = send
        await self.stream.send_all(event_frame(self.parser, [event, *args], ack_id, self.namespace))
        return await receive.receive()

    async def emit(self, event: str, *args: Any) -> None:
        await self.stream.send_all(event_frame(self.parser, [event, *args], None, self.namespace))

    async def read_loop(self) -> None:
        """Parse server frames until the connection closes."""
        stream = self.stream
        while True:
            self._parse()
            if self.pongs_due:
                self.pongs_due, due = 0, self.pongs_due
                try:
                    await stream.send_all(PONG * due)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            try:
                data = await stream.receive_some(262144)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self.buffer = self.buffer + data if self.buffer else data

    def _parse(self) -> None:
        texts, self.buffer = split_data_frames(self.buffer)
        for text in texts:
            if text and text[0] in _MAP_MARKERS:
                self._on_packet(_unpack(text))
            else:
                self._on_text(text)

    def _on_packet(self, packet: dict[str, Any]) -> None:
        """A MessagePack Socket.IO packet (only the kinds the benchmarks need)."""
        kind = packet.get("type")
        if kind == _EVENT:
            if self.on_event is not None:
                self.on_event(b"42" + _encode(packet["data"]))  # as the JSON parser would
        elif kind == _ACK:
            send = self.acks.pop(packet["id"], None)
            if send is not None:
                send.send_nowait(packet.get("data"))
        elif kind == 0:
            self.connected.set()

    def _on_text(self, packet: bytes) -> None:
        kind = packet[:2]
        if self.prefix and packet[2:3] == b"/":  # drop the namespace: one client, one namespace
            packet = kind + packet[packet.index(b",") + 1 :]
        if kind == b"42":
            if self.on_event is not None:
                self.on_event(packet)
        elif kind == b"43":
            i = 2
            while packet[i : i + 1].isdigit():
                i += 1
            send = self.acks.pop(int(packet[2:i]), None)
            if send is not None:
                send.send_nowait(_decode(packet[i:]))
        elif packet[:1] == b"2":
            self.pongs_due += 1
        elif kind == b"40":
            self.connected.set()
        elif packet[:1] == b"0":
            self.open_packet = packet


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_clients(
    host: str,
    port: int,
    count: int,
    concurrency: int,
    nursery: trio.Nursery,
    parser: str = "json",
) -> list[Client]:
    clients: list[Client] = []
    limiter = trio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter:
            client = await Client.connect(host, port, parser=parser)
            nursery.start_soon(client.read_loop)
            await client.join_namespace()
            clients.append(client)

    async with trio.open_nursery() as openers:
        for _ in range(count):
            openers.start_soon(one)
    return clients


class FrameReader:
    """Incremental parser of server frames for one plain socket (used by the epoll pumps)."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket, buffer: bytes = b"") -> None:
        self.sock = sock
        self.buffer = buffer

    def texts(self, data: bytes) -> list[bytes]:
        texts, self.buffer = split_data_frames(self.buffer + data if self.buffer else data)
        return texts


async def connected_clients(
    host: str, port: int, count: int, join: str | None = None, parser: str = "json"
) -> list[FrameReader]:
    """Connect ``count`` clients with trio (and join a room), then hand their sockets to the
    measured phase, which reads them all from one epoll loop: no task wake-up per frame, so
    the generator's cost per delivery stays far below the server's."""
    async with trio.open_nursery() as nursery:
        clients = await open_clients(host, port, count, 200, nursery, parser)
        if join is not None:
            for client in clients:
                await client.emit_with_ack("join", join)
        nursery.cancel_scope.cancel()  # stop the trio readers; the sockets stay open
    return await detach(clients)


async def detach(clients: list[Client]) -> list[FrameReader]:
    """The clients' sockets as plain non-blocking sockets for an epoll pump (their trio readers
    must be stopped first); what a client had buffered goes with it."""
    readers = []
    for client in clients:
        sock = socket.socket(fileno=os.dup(client.stream.socket.fileno()))
        sock.setblocking(False)
        readers.append(FrameReader(sock, client.buffer))
        await client.stream.aclose()
    return readers


def pump(
    readers: list[FrameReader],
    on_text: Callable[[FrameReader, bytes, float], None],
    until: Callable[[], bool],
    timeout: float,
) -> float:
    """Read every socket in one epoll loop until ``until()`` or ``timeout``; PINGs answered."""
    poller = select.epoll()
    by_fd = {r.sock.fileno(): r for r in readers}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    perf = time.perf_counter
    started = perf()
    deadline = started + timeout
    try:
        while not until() and perf() < deadline:
            for fd, _ in poller.poll(0.2):
                reader = by_fd[fd]
                try:
                    data = reader.sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("the server closed a client")
                now = perf()
                for text in reader.texts(data):
                    if text == b"2":
                        reader.sock.sendall(PONG)
                    else:
                        on_text(reader, text, now)
    finally:
        poller.close()
    return perf() - started


def fanout_phase(
    readers: list[FrameReader],
    broadcasts: int,
    in_flight: int,
    timeout: float = 120.0,
    meter: Meter | None = None,
    parser: str = "json",
) -> dict[str, float]:
    """readers[0] publishes; at most ``in_flight`` broadcasts not yet delivered to everyone."""
    clients = len(readers)
    latencies: list[float] = []
    remaining: dict[int, int] = {}
    state = {"sent": 0, "outstanding": 0, "delivered": 0}
    publisher = readers[0].sock

    def publish() -> None:
        while state["outstanding"] < in_flight and state["sent"] < broadcasts:
            i = state["sent"]
            payload = {"i": i, "t": time.perf_counter()}
            publisher.sendall(event_frame(parser, ["bcast", {"room": "bench", "payload": payload}]))
            remaining[i] = clients
            state["sent"] += 1
            state["outstanding"] += 1

    def on_text(reader: FrameReader, text: bytes, now: float) -> None:
        args = event_args(text)
        if args is None:
            return
        payload = args[1]
        latencies.append(now - payload["t"])
        state["delivered"] += 1
        left = remaining[payload["i"]] - 1
        remaining[payload["i"]] = left
        if left == 0:
            state["outstanding"] -= 1
            publish()

    meter = meter or Meter()
    meter.start()
    publish()
    elapsed = pump(readers, on_text, lambda: state["delivered"] >= clients * broadcasts, timeout)
    return {
        "deliveries_per_s": state["delivered"] / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "delivered": float(state["delivered"]),
        **meter.stop(),
    }


def echo_phase(
    readers: list[FrameReader], seconds: float, meter: Meter | None = None, parser: str = "json"
) -> dict[str, float]:
    """Every client: ``echo`` with an ack, wait for it, again, for ``seconds``."""
    args = ["echo", {"hello": "world", "n": 42}]
    sent_at: dict[FrameReader, float] = {}
    next_id: dict[FrameReader, int] = {}
    rtts: list[float] = []

    def send(reader: FrameReader, now: float) -> None:
        ack = next_id.get(reader, 0)
        next_id[reader] = ack + 1
        sent_at[reader] = now
        reader.sock.sendall(event_frame(parser, args, ack))

    def on_text(reader: FrameReader, text: bytes, now: float) -> None:
        if is_ack(text):
            rtts.append(now - sent_at[reader])
            send(reader, now)

    meter = meter or Meter()
    meter.start()
    for reader in readers:
        send(reader, time.perf_counter())
    deadline = time.perf_counter() + seconds
    elapsed = pump(readers, on_text, lambda: time.perf_counter() >= deadline, seconds + 5)
    return {
        "acks_per_s": len(rtts) / elapsed,
        "p50_ms": percentile(rtts, 0.5) * 1000,
        "p99_ms": percentile(rtts, 0.99) * 1000,
        **meter.stop(),
    }


async def fanout(
    host: str,
    port: int,
    *,
    clients: int = 1000,
    broadcasts: int = 200,
    in_flight: int = 1,
    other_ports: tuple[int, ...] = (),
    server_pid: int = 0,
    parser: str = "json",
) -> dict[str, float]:
    """With ``other_ports`` (the other nodes of a cluster) the members are spread evenly over
    every port; the publisher is on ``port``. ``server_pid``: whose CPU share to report."""
    ports = (port, *other_ports)
    readers: list[FrameReader] = []
    for i, at in enumerate(ports):
        share = clients // len(ports) + (1 if i < clients % len(ports) else 0)
        readers += await connected_clients(host, at, share, "bench", parser)
    try:
        return await trio.to_thread.run_sync(
            fanout_phase, readers, broadcasts, in_flight, 120.0, Meter(server_pid), parser
        )
    finally:
        for reader in readers:
            reader.sock.close()


async def echo(
    host: str,
    port: int,
    *,
    clients: int = 100,
    seconds: float = 10.0,
    server_pid: int = 0,
    parser: str = "json",
) -> dict[str, float]:
    readers = await connected_clients(host, port, clients, None, parser)
    try:
        return await trio.to_thread.run_sync(
            echo_phase, readers, seconds, Meter(server_pid), parser
        )
    finally:
        for reader in readers:
            reader.sock.close()


async def connect(
    host: str, port: int, *, clients: int = 1000, concurrency: int = 200, server_pid: int = 0
) -> dict[str, float]:
    """Open ``clients`` connections (each joins ``/``); report rate and server RSS per conn."""
    meter = Meter(server_pid)
    async with trio.open_nursery() as nursery:
        probe = (await open_clients(host, port, 1, 1, nursery))[0]
        rss_before = float((await probe.emit_with_ack("rss"))[0])
        started = time.perf_counter()
        meter.start()
        await open_clients(host, port, clients, concurrency, nursery)
        elapsed = time.perf_counter() - started
        shares = meter.stop()
        rss_after = float((await probe.emit_with_ack("rss"))[0])
        nursery.cancel_scope.cancel()
    return {
        "connects_per_s": clients / elapsed,
        "seconds_to_all": elapsed,
        "kib_per_conn": (rss_after - rss_before) / clients / 1024,
        **shares,
    }


# --- several processes -------------------------------------------------------------------------
# One generator process can saturate a core before the server does. With ``procs > 1`` the members
# are split across worker processes; each reads its share in its own epoll loop and tells the
# coordinator (over a pipe) when its share of a broadcast has arrived, so "N in flight" still
# means N broadcasts not yet delivered to every member.


def _fanout_worker(host: str, port: int, count: int, parser: str, pipe: Any) -> None:
    readers = trio.run(connected_clients, host, port, count, "bench", parser)
    pipe.send("ready")
    broadcasts = pipe.recv()
    latencies: list[float] = []
    seen: dict[int, int] = {}
    state = {"delivered": 0}

    def on_text(reader: FrameReader, text: bytes, now: float) -> None:
        args = event_args(text)
        if args is None:
            return
        payload = args[1]
        latencies.append(now - payload["t"])
        state["delivered"] += 1
        i = payload["i"]
        seen[i] = seen.get(i, 0) + 1
        if seen[i] == count:
            pipe.send(i)

    pump(readers, on_text, lambda: state["delivered"] >= count * broadcasts, 120.0)
    pipe.send(("result", latencies, state["delivered"]))
    pipe.recv()  # stay alive until the coordinator has read this process's CPU time
    for reader in readers:
        reader.sock.close()


def fanout_processes(
    host: str,
    port: int,
    *,
    clients: int,
    broadcasts: int,
    in_flight: int,
    procs: int,
    server_pid: int = 0,
    parser: str = "json",
) -> dict[str, float]:
    """:func:`fanout` with the members spread over ``procs`` processes (this one publishes); the
    generator's CPU share sums them all."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    share = clients // procs
    workers = []
    for _ in range(procs - 1):
        ours, theirs = context.Pipe()
        process = context.Process(target=_fanout_worker, args=(host, port, share, parser, theirs))
        process.start()
        workers.append((process, ours))
    meter = Meter(server_pid)
    for process, pipe in workers:
        assert pipe.recv() == "ready"
        assert process.pid is not None
        meter.add_generator(process.pid)
    own = clients - share * (procs - 1)
    readers = trio.run(connected_clients, host, port, own, "bench", parser)
    for _, pipe in workers:
        pipe.send(broadcasts)
    pending: dict[int, int] = {}  # broadcast -> processes whose share has not all arrived
    own_seen: dict[int, int] = {}
    latencies: list[float] = []
    state = {"sent": 0, "outstanding": 0, "done": 0, "delivered": 0}
    publisher = readers[0].sock

    def publish() -> None:
        while state["outstanding"] < in_flight and state["sent"] < broadcasts:
            i = state["sent"]
            payload = {"i": i, "t": time.perf_counter()}
            publisher.sendall(event_frame(parser, ["bcast", {"room": "bench", "payload": payload}]))
            pending[i] = procs
            state["sent"] += 1
            state["outstanding"] += 1

    def share_done(i: int) -> None:
        pending[i] -= 1
        if pending[i] == 0:
            state["outstanding"] -= 1
            state["done"] += 1
            publish()

    def on_text(reader: FrameReader, text: bytes, now: float) -> None:
        args = event_args(text)
        if args is None:
            return
        payload = args[1]
        latencies.append(now - payload["t"])
        state["delivered"] += 1
        i = payload["i"]
        own_seen[i] = own_seen.get(i, 0) + 1
        if own_seen[i] == own:
            share_done(i)

    poller = select.epoll()
    by_fd = {r.sock.fileno(): r for r in readers}
    pipes = {pipe.fileno(): pipe for _, pipe in workers}
    for fd in [*by_fd, *pipes]:
        poller.register(fd, select.EPOLLIN)
    meter.start()
    started = time.perf_counter()
    deadline = started + 120
    publish()
    results: dict[int, Any] = {}  # a worker that has all its deliveries sends its result early
    while state["done"] < broadcasts and time.perf_counter() < deadline:
        for fd, _ in poller.poll(0.2):
            if fd in pipes:
                message = pipes[fd].recv()
                if isinstance(message, tuple):
                    results[fd] = message
                    poller.unregister(fd)
                else:
                    share_done(message)
                continue
            reader = by_fd[fd]
            try:
                data = reader.sock.recv(262144)
            except BlockingIOError:
                continue
            now = time.perf_counter()
            for text in reader.texts(data):
                if text == b"2":
                    reader.sock.sendall(PONG)
                else:
                    on_text(reader, text, now)
    elapsed = time.perf_counter() - started
    shares = meter.stop()
    poller.close()
    delivered = state["delivered"]
    for process, pipe in workers:
        message = results.get(pipe.fileno()) or pipe.recv()
        while not isinstance(message, tuple):
            message = pipe.recv()
        _, worker_latencies, worker_delivered = message
        latencies.extend(worker_latencies)
        delivered += worker_delivered
        pipe.send("bye")
        process.join(10)
    for reader in readers:
        reader.sock.close()
    return {
        "deliveries_per_s": delivered / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "delivered": float(delivered),
        **shares,
    }
