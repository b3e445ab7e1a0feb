"""The chat tests' helpers: the server, tokens, the REST API, and a recording python-socketio
client on ``/chat``. python-socketio is asyncio-based: tests are sync functions calling
:func:`~tests.support.clients.scenarios.run`; every wait is for an event, bounded by a timeout.
The test clock is on: ``server.advance(seconds)`` moves it."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import socketio

from tests.support.processes import ProductServer
from tests.support.tokens import CHAT_SECRET, DAY, Tokens

WAIT = 5.0
NS = "/chat"

token = Tokens(CHAT_SECRET, ttl=30 * DAY, names=str.capitalize)


def start_server(factory: Callable[..., Any], *flags: str, data_dir: str | None = None) -> Any:
    """A real ``switchboard serve`` on a free port, a fresh data dir (unless given), the test
    clock on."""
    data = data_dir or tempfile.mkdtemp(prefix="chat-test-")
    server = ProductServer(
        "--log-level", "warning", *flags, secret=CHAT_SECRET, data_dir=data, test_clock=True
    )
    return factory(server)


def rest(server: Any, user: str, role: str = "user") -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token(user, role=role)}"}
    )


def create_chat(server: Any, owner: str, *others: str, name: str = "Room") -> str:
    with rest(server, owner) as http:
        answer = http.post(
            "/api/chats", json={"name": name, "description": "about", "participants": others}
        )
    assert answer.status_code == 201, answer.text
    chat_id: str = answer.json()["chat"]["chatId"]
    return chat_id


class Client:
    """A python-socketio AsyncClient on ``/chat`` that records every event it receives."""

    def __init__(self, server: Any, user: str, *, role: str = "user", tok: str | None = None):
        self.server = server
        self.user = user
        self.token = tok if tok is not None else token(user, role=role)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.connect_errors: asyncio.Queue[Any] = asyncio.Queue()
        self.sio.on("*", self._record, namespace=NS)
        self.sio.on("connect_error", self._error, namespace=NS)

    async def _record(self, event: str, *args: Any) -> None:
        self.queues[event].put_nowait(args[0] if len(args) == 1 else args)

    async def _error(self, data: Any = None) -> None:
        self.connect_errors.put_nowait(data)

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid(NS)
        assert sid is not None
        return sid

    async def connect(self, transports: list[str] | None = None) -> Client:
        await self.sio.connect(
            self.server.url,
            namespaces=[NS],
            auth={"token": self.token},
            transports=transports or ["websocket"],
            wait_timeout=WAIT,
        )
        return self

    async def call(self, event: str, data: Any = None) -> Any:
        if data is None:
            return await self.sio.call(event, namespace=NS, timeout=WAIT)
        return await self.sio.call(event, data, namespace=NS, timeout=WAIT)

    async def ok(self, event: str, data: Any = None) -> Any:
        answer = await self.call(event, data)
        assert answer["success"] is True, (event, answer)
        return answer

    async def emit(self, event: str, data: Any) -> None:
        await self.sio.emit(event, data, namespace=NS)

    async def next(self, event: str, timeout: float = WAIT) -> Any:
        return await asyncio.wait_for(self.queues[event].get(), timeout)

    async def next_where(
        self, event: str, predicate: Callable[[Any], bool], timeout: float = WAIT
    ) -> Any:
        """The next ``event`` whose payload satisfies ``predicate`` (others are skipped)."""

        async def find() -> Any:
            while True:
                item = await self.queues[event].get()
                if predicate(item):
                    return item

        return await asyncio.wait_for(find(), timeout)

    def pending(self, event: str) -> list[Any]:
        """Events received and not consumed yet (does not wait)."""
        queue = self.queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def close(self) -> None:
        await self.sio.disconnect()


async def connected(server: Any, *users: str, role: str = "user") -> list[Client]:
    return list(await asyncio.gather(*(Client(server, u, role=role).connect() for u in users)))


async def barrier(client: Client) -> None:
    """A round trip on ``client``'s connection: events the server sent it before are in."""
    await client.ok("connection:session-info")
