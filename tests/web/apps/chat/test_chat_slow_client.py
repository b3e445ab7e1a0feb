"""A client that stops reading, in a busy room, is disconnected as a slow consumer while the
others keep receiving everything (the server runs with a small outbox bound)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Callable
from typing import Any

from tests.support.clients.chat import barrier, connected, create_chat, start_server, token
from tests.support.clients.scenarios import close_all, run

MESSAGES = 1400  # > the ~4 MB a loopback socket buffers in the kernel, + the outbox
SIZE = 3900


def ws_frame(text: str) -> bytes:
    """One masked client text frame."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    elif n < 65536:
        header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawClient:
    """Engine.IO/Socket.IO by hand over one TCP socket with a tiny receive buffer; it reads only
    when told to, so it can stop reading altogether."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, port: int) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        client = cls(sock)
        await client.loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await client.loop.sock_sendall(
            sock,
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        while b"\r\n\r\n" not in client.buffer:
            await client._fill()
        head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert (await client.read())[0] == "0"  # OPEN
        return client

    async def _fill(self) -> None:
        chunk = await self.loop.sock_recv(self.sock, 65536)
        assert chunk, "server closed the connection"
        self.buffer += chunk

    async def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def read(self) -> str:
        _, second = await self._take(2)
        n = second & 0x7F
        if n == 126:
            n = int.from_bytes(await self._take(2), "big")
        elif n == 127:
            n = int.from_bytes(await self._take(8), "big")
        return (await self._take(n)).decode()

    async def send(self, text: str) -> None:
        await self.loop.sock_sendall(self.sock, ws_frame(text))

    async def until(self, prefix: str) -> str:
        while True:
            packet = await self.read()
            if packet.startswith(prefix):
                return packet

    def close(self) -> None:
        self.sock.close()


def test_slow_consumer_is_cut_off_others_keep_receiving(
    server_factory: Callable[..., Any],
) -> None:
    server = start_server(
        server_factory,
        "--max-outbox-bytes",
        "65536",
        "--chat-message-rate-per-minute",
        "0",
    )
    chat = create_chat(server, "busy", "fast", "slowpoke")

    async def scenario() -> None:
        busy, fast = await connected(server, "busy", "fast")
        slow = await RawClient.open(server.port)
        try:
            await slow.send("40/chat," + json.dumps({"token": token("slowpoke")}))
            assert (await slow.until("40/chat,")).startswith("40/chat,{")
            await slow.send('42/chat,1["join:chat",' + json.dumps({"chatId": chat}) + "]")
            ack = await slow.until("43/chat,1")
            assert json.loads(ack[len("43/chat,1") :])[0]["success"] is True
            for c in (busy, fast):
                await c.ok("join:chat", {"chatId": chat})
            # the slow client stops reading from here on
            text = "x" * SIZE
            for start in range(0, MESSAGES, 100):
                answers = await asyncio.gather(
                    *(
                        busy.call("message:send", {"chatId": chat, "content": f"{i} {text}"})
                        for i in range(start, start + 100)
                    )
                )
                assert all(a["success"] for a in answers)
            left = await fast.next_where(
                "user:left", lambda e: e["userId"] == "slowpoke", timeout=10
            )
            assert left["chatId"] == chat
            got = [await fast.next("message:new") for _ in range(MESSAGES)]
            assert len({m["id"] for m in got}) == MESSAGES
            await barrier(busy)
            assert len(busy.pending("message:new")) == MESSAGES
            health = (await fast.ok("monitoring:health"))["health"]
            assert health["figures"]["slowConsumerDisconnects"] >= 1
            assert health["status"] in ("warning", "critical")
            assert any("slow consumers" in issue for issue in health["issues"])
            events = (await fast.ok("monitoring:events", {"userId": "slowpoke"}))["events"]
            assert [e["type"] for e in events][:1] == ["disconnect"]
        finally:
            slow.close()
            await close_all(busy, fast)

    run(scenario, timeout=60)
