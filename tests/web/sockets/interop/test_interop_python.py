"""python-socketio's AsyncClient against the interop server
(tests/support/servers/interop_server.py).

Every scenario runs over WebSocket only, long-polling only, and polling upgraded to WebSocket;
the WebSocket variants run on both the native path and the ASGI-only server. python-socketio is
asyncio-based, so the tests are plain functions that call ``asyncio.run``; every wait is for an
event, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import socketio

from tests.support.clients.interop import Target
from tests.support.clients.scenarios import run
from tests.support.tokens import forged, interop_token
from tests.support.waiting import wait_until_asyncio

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

WAIT = 5.0
token = replace(interop_token, sub="alice")


class Client:
    """An AsyncClient that records every event it receives, per namespace and event name."""

    def __init__(self, target: Target, namespaces: tuple[str, ...] = ("/",)) -> None:
        self.target = target
        self.namespaces = list(namespaces)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queues: dict[tuple[str, str], asyncio.Queue[tuple[Any, ...]]] = defaultdict(
            asyncio.Queue
        )
        self.connect_errors: dict[str, list[Any]] = defaultdict(list)
        for ns in self.namespaces:
            self.sio.on("*", self._recorder(ns), namespace=ns)
            self.sio.on("connect_error", self._error_recorder(ns), namespace=ns)
            self.sio.on("question", self._question, namespace=ns)

    def _recorder(self, ns: str) -> Callable[..., Awaitable[None]]:
        async def record(event: str, *args: Any) -> None:
            self.queues[(ns, event)].put_nowait(args)

        return record

    def _error_recorder(self, ns: str) -> Callable[..., Awaitable[None]]:
        async def record(*data: Any) -> None:
            self.connect_errors[ns].append(data[0] if len(data) == 1 else data)

        return record

    async def _question(self, *args: Any) -> tuple[Any, ...]:
        self.queues[("/", "question")].put_nowait(args)
        return ("got", *args)

    async def connect(self, **kw: Any) -> Client:
        kw.setdefault("auth", {"token": token()})
        await self.sio.connect(
            kw.pop("url", self.target.url),
            transports=self.target.transports,
            namespaces=self.namespaces,
            wait_timeout=WAIT,
            **kw,
        )
        return self

    async def call(self, event: str, *args: Any, namespace: str = "/") -> Any:
        """Emit with an ack; returns the ack's argument (a tuple when it has several)."""
        data: Any = args[0] if len(args) == 1 else args
        if not args:
            data = None
        return await self.sio.call(event, data, namespace=namespace, timeout=WAIT)

    async def next(self, event: str, namespace: str = "/") -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queues[(namespace, event)].get(), WAIT)

    def received(self, event: str, namespace: str = "/") -> int:
        return self.queues[(namespace, event)].qsize()

    async def close(self) -> None:
        await self.sio.disconnect()


async def wait_transport(client: Client, expected: str) -> None:
    """The upgrade may complete just after connect() returns: wait for it, bounded."""
    await wait_until_asyncio(
        lambda: client.sio.transport() == expected,
        WAIT,
        message=lambda: f"transport is {client.sio.transport()!r}",
    )


# --- scenarios -----------------------------------------------------------------------------------
def test_connect_echo_and_identity(target: Target) -> None:
    async def scenario() -> None:
        c = await Client(target).connect(auth={"token": token("alice", role="admin")})
        try:
            await wait_transport(c, target.final_transport)
            assert await c.call("echo", "hello") == "hello"
            answer = await c.call("echo", 1, "two", {"three": [True, None, 3.5]})
            assert answer == (1, "two", {"three": [True, None, 3.5]})
            assert await c.call("echo", "ünïcødé ✓ 🚀") == "ünïcødé ✓ 🚀"
            me = await c.call("whoami")
            assert me == {"user_id": "alice", "name": "alice", "role": "admin", "namespace": "/"}
            assert c.sio.transport() == target.final_transport
        finally:
            await c.close()

    run(scenario)


def test_binary_both_ways(target: Target) -> None:
    blob = bytes(range(256)) * 3
    small = b"\x00\xff\x00"

    async def scenario() -> None:
        c = await Client(target).connect()
        try:
            await wait_transport(c, target.final_transport)
            assert await c.call("binary-echo", blob) == blob
            assert await c.next("binary-back") == (blob,)
            nested = {"a": small, "list": [1, blob, "x"], "text": "t"}
            assert await c.call("binary-echo", "head", nested) == ("head", nested)
            assert await c.next("binary-back") == ("head", nested)
        finally:
            await c.close()

    run(scenario)


def test_server_to_client_emit_with_ack(target: Target) -> None:
    async def scenario() -> None:
        c = await Client(target).connect()
        try:
            await wait_transport(c, target.final_transport)
            assert await c.call("ask-client", "ping?", 42) == {"ok": True}
            assert await c.next("question") == ("ping?", 42)
            assert await c.next("answer") == ("got", "ping?", 42)
            assert c.received("answer-timeout") == 0
        finally:
            await c.close()

    run(scenario)


def test_two_namespaces_on_one_connection(target: Target) -> None:
    async def scenario() -> None:
        c = await Client(target, ("/", "/admin")).connect(auth={"token": token("bob", "bot")})
        try:
            await wait_transport(c, target.final_transport)
            sids = {ns: c.sio.get_sid(ns) for ns in ("/", "/admin")}
            assert all(sids.values()) and sids["/"] != sids["/admin"], sids
            root = await c.call("whoami")
            admin = await c.call("whoami", namespace="/admin")
            assert root == {"user_id": "bob", "name": "bob", "role": "bot", "namespace": "/"}
            assert admin == {**root, "namespace": "/admin"}
            # one Engine.IO connection carries both
            assert c.sio.eio.sid is not None
            assert await c.call("echo", "still here") == "still here"
        finally:
            await c.close()

    run(scenario)


def test_rooms_broadcast(target: Target) -> None:
    async def scenario() -> None:
        a, b, c = Client(target), Client(target), Client(target)
        await asyncio.gather(
            a.connect(auth={"token": token("a")}),
            b.connect(auth={"token": token("b")}),
            c.connect(auth={"token": token("c")}),
        )
        try:
            for cl in (a, b, c):
                await wait_transport(cl, target.final_transport)
            assert await a.call("join", "red") == {"ok": True, "room": "red"}
            assert await b.call("join", "red") == {"ok": True, "room": "red"}
            assert await c.call("join", "blue") == {"ok": True, "room": "blue"}

            # to a room: members get it, the non-member does not
            msg = {"room": "red", "event": "news", "args": [1, "x", {"y": None}]}
            assert await a.call("bcast", msg) == {"ok": True}
            assert await a.next("news") == (1, "x", {"y": None})
            assert await b.next("news") == (1, "x", {"y": None})
            # a marker sent to c after the delivery to "red" finished: frames to one client keep
            # their order, so had c been sent "news" it would be queued before the marker
            marker = {"room": "blue", "event": "marker", "args": ["m1"]}
            await a.call("bcast", marker)
            assert await c.next("marker") == ("m1",)
            assert c.received("news") == 0

            # excluding the sender
            others = {"room": "red", "event": "others", "args": ["o"]}
            assert await a.call("bcast-others", others) == {"ok": True}
            assert await b.next("others") == ("o",)
            await a.call("bcast", {"room": "red", "event": "marker", "args": ["m2"]})
            assert await a.next("marker") == ("m2",)
            assert await b.next("marker") == ("m2",)
            assert a.received("others") == 0

            # after leaving, b is no longer a member
            assert await b.call("leave", "red") == {"ok": True, "room": "red"}
            await c.call("bcast", {"room": "red", "event": "late", "args": []})
            assert await a.next("late") == ()
            await a.call("bcast", {"room": b.sio.get_sid("/"), "event": "marker", "args": ["m3"]})
            assert await b.next("marker") == ("m3",)
            assert b.received("late") == 0
            assert c.received("late") == 0
        finally:
            await asyncio.gather(a.close(), b.close(), c.close())

    run(scenario)


# --- authentication ----------------------------------------------------------------------------
EXPIRED = token.expired("old")
FORGED = forged("mallory")


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (None, "Authentication failed: no token provided"),
        ({"token": "not.a.jwt"}, "Authentication failed: invalid token"),
        ({"token": FORGED}, "Authentication failed: invalid token"),
        ({"token": EXPIRED}, "Authentication failed: token expired"),
    ],
    ids=["no-token", "garbage-token", "bad-signature", "expired"],
)
def test_auth_failure(auth_target: Target, auth: Any, message: str) -> None:
    async def scenario() -> None:
        c = Client(auth_target, ("/", "/admin"))
        with pytest.raises(socketio.exceptions.ConnectionError) as err:
            await c.connect(auth=auth)
        assert "failed to connect" in str(err.value)
        assert c.connect_errors["/"] == [{"message": message}]
        assert c.connect_errors["/admin"] == [{"message": message}]
        await c.close()

    run(scenario)


def test_token_in_query_and_bearer_header(native_server: Any) -> None:
    target = Target(native_server.url, ["websocket"], "websocket")

    async def scenario() -> None:
        q = await Client(target).connect(auth=None, url=f"{target.url}?token={token('q')}")
        h = await Client(Target(target.url, ["polling"], "polling")).connect(
            auth=None, headers={"Authorization": f"Bearer {token('h')}"}
        )
        try:
            assert (await q.call("whoami"))["user_id"] == "q"
            assert (await h.call("whoami"))["user_id"] == "h"
        finally:
            await asyncio.gather(q.close(), h.close())

    run(scenario)


def test_mixed_transports_share_rooms(native_server: Any) -> None:
    """A polling client and a WebSocket client in one room on one server see each other."""
    ws = Target(native_server.url, ["websocket"], "websocket")
    poll = Target(native_server.url, ["polling"], "polling")

    async def scenario() -> None:
        a = await Client(ws).connect()
        b = await Client(poll).connect()
        try:
            await a.call("join", "mix")
            await b.call("join", "mix")
            await b.call("bcast", {"room": "mix", "event": "hi", "args": [b"\x01\x02"]})
            assert await a.next("hi") == (b"\x01\x02",)
            assert await b.next("hi") == (b"\x01\x02",)
        finally:
            await asyncio.gather(a.close(), b.close())

    run(scenario)
