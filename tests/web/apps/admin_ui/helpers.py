"""Helpers for the Admin UI tests: a server with the UI on, and python-socketio clients that
record what they receive (the UI's admin namespace, and ordinary clients to watch). Every wait
is for an event, bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import bcrypt
import socketio

from tests.support.processes import ProductServer
from tests.support.tokens import ADMIN_UI_SECRET, Tokens

WAIT = 5.0
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
token = Tokens(ADMIN_UI_SECRET)
#: the Admin UI on (user ``ops``), its figures every 0.2 s
ADMIN_UI_FLAGS = (
    "--log-level", "warning",
    "--admin-ui", "true",
    "--admin-ui-username", "ops",
    "--admin-ui-password-hash", PASSWORD_HASH,
    "--admin-ui-stats-interval-seconds", "0.2",
    "--chat-connect-attempts-per-ip", "0",
)  # fmt: skip


def admin_server(factory: Callable[..., Any], *flags: str) -> Any:
    """``switchboard serve`` with the Admin UI on, started by ``factory``."""
    return factory(ProductServer(*ADMIN_UI_FLAGS, *flags, secret=ADMIN_UI_SECRET))


class Recorder:
    """A python-socketio AsyncClient on one namespace, keeping every event per name."""

    def __init__(self, url: str, namespace: str = "/", **options: Any) -> None:
        self.url = url
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False, **options)
        self.queues: dict[str, asyncio.Queue[tuple[Any, ...]]] = defaultdict(asyncio.Queue)
        self.connect_errors: asyncio.Queue[Any] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._record, namespace=namespace)
        self.sio.on("connect_error", self.connect_errors.put_nowait, namespace=namespace)
        self.sio.on("disconnect", self.disconnected.set, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        self.queues[event].put_nowait(args)

    async def connect(self, auth: dict[str, Any], transports: list[str] | None = None) -> Any:
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth=auth,
            transports=transports or ["websocket"],
            wait_timeout=WAIT,
        )
        return self

    async def refused(self, auth: dict[str, Any]) -> Any:
        """Connect, expecting a refusal: its CONNECT_ERROR data."""
        try:
            await self.connect(auth)
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("the connection was accepted")
        return await asyncio.wait_for(self.connect_errors.get(), WAIT)

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid(self.namespace)
        assert sid is not None
        return sid

    async def next(self, event: str, timeout: float = WAIT) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queues[event].get(), timeout)

    async def next_where(
        self, event: str, match: Callable[[tuple[Any, ...]], bool], timeout: float = WAIT
    ) -> tuple[Any, ...]:
        async def find() -> tuple[Any, ...]:
            while True:
                args = await self.queues[event].get()
                if match(args):
                    return args

        return await asyncio.wait_for(find(), timeout)

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, args if len(args) != 1 else args[0], namespace=self.namespace)

    async def close(self) -> None:
        await self.sio.disconnect()


async def admin(url: str, **auth: Any) -> Recorder:
    """A signed-in admin client (an admin JWT unless ``auth`` says otherwise)."""
    recorder = Recorder(url, "/admin")
    return await recorder.connect(auth or {"token": token("root", "admin")})


async def user(url: str, name: str = "alice", namespace: str = "/") -> Recorder:
    recorder = Recorder(url, namespace)
    return await recorder.connect({"token": token(name)})
