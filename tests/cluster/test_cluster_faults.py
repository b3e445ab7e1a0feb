"""Faults: Redis restarted, the subscription killed or wedged, garbage on the channels, a node
SIGKILLed. Local clients are served throughout; the nodes reconnect; /health says what
happened."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.cluster.helpers import Client, RedisServer, switchboard_node, token
from tests.support.processes import ServerProcess
from tests.support.waiting import wait_until_asyncio

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

WAIT_SECONDS = 15.0


def health(node: ServerProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{node.url}/health", timeout=5).json()
    return answer


async def eventually(check: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    """Wait (bounded) until ``check()`` holds, looking every 50 ms."""
    await wait_until_asyncio(check, timeout, interval=POLL_SECONDS)


POLL_SECONDS = 0.05


def redis_cli(redis: RedisServer, *command: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(redis.port), *command], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def see_each_other(nodes: list[ServerProcess]) -> None:
    names = {health(n)["cluster"]["node_id"] for n in nodes}

    async def wait() -> None:
        await eventually(
            lambda: all(names <= set(health(n)["cluster"]["nodes_alive"]) for n in nodes)
        )

    asyncio.run(wait())


@pytest.fixture
def pair(redis: RedisServer, server_factory: Callable[..., ServerProcess]) -> list[ServerProcess]:
    nodes = [server_factory(switchboard_node(redis.url)) for _ in range(2)]
    see_each_other(nodes)
    return nodes


async def crossing(a: Client, b: Client, room: str, n: int) -> bool:
    """Does broadcast number ``n`` from ``b`` reach ``a`` within a second? (Earlier ones that
    arrive late are skipped.)"""
    await b.call("bcast", {"room": room, "event": "cross", "args": [n]})
    try:
        async with asyncio.timeout(1.0):
            while await a.next("cross") != (n,):
                pass
    except TimeoutError:
        return False
    return True


def test_redis_restarted_mid_run(pair: list[ServerProcess], redis: RedisServer) -> None:
    async def scenario() -> None:
        a = await Client(pair[0].url, {"token": token()}).connect(["websocket"])
        b = await Client(pair[1].url, {"token": token()}).connect(["websocket"])
        await a.call("join", "faults")
        assert await crossing(a, b, "faults", 1)
        redis.stop()
        await eventually(lambda: health(pair[0])["cluster"]["redis"] == "disconnected")
        down = health(pair[0])
        assert down["status"] == "degraded"
        assert await a.call("echo", "still here") == "still here"  # local clients go on
        redis.start()
        await eventually(lambda: health(pair[0])["cluster"]["redis"] == "connected")
        await eventually(lambda: health(pair[1])["cluster"]["redis"] == "connected")
        up = health(pair[0])
        assert up["status"] == "ok" and up["cluster"]["reconnects"] >= 1
        n = 2
        while not await crossing(a, b, "faults", n):  # the registry settles within a lease
            n += 1
            assert n < 20
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_the_subscription_killed_or_wedged_comes_back(
    pair: list[ServerProcess], redis: RedisServer
) -> None:
    async def scenario() -> None:
        a = await Client(pair[0].url, {"token": token()}).connect(["websocket"])
        b = await Client(pair[1].url, {"token": token()}).connect(["websocket"])
        await a.call("join", "wedge")
        before = health(pair[0])["cluster"]
        redis_cli(redis, "CLIENT", "KILL", "TYPE", "pubsub")  # every subscriber connection
        await eventually(lambda: health(pair[0])["cluster"]["reconnects"] > before["reconnects"])
        await eventually(lambda: health(pair[0])["cluster"]["redis"] == "connected")
        assert await crossing(a, b, "wedge", 1)
        # wedged: the connection stays open but nothing arrives (writes paused for 3 s)
        killed = health(pair[0])["cluster"]
        redis_cli(redis, "CLIENT", "PAUSE", "3000", "WRITE")
        await eventually(
            lambda: health(pair[0])["cluster"]["wedged_restarts"] > killed["wedged_restarts"]
        )
        await eventually(lambda: health(pair[0])["cluster"]["redis"] == "connected")
        n = 2
        while not await crossing(a, b, "wedge", n):
            n += 1
            assert n < 30, (health(pair[0]), health(pair[1]))
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_garbage_on_the_channels_is_counted_and_dropped(
    pair: list[ServerProcess], redis: RedisServer
) -> None:
    before = health(pair[0])["cluster"]["bad_messages"]
    for channel in ("socket.io#/#", "socket.io#/#room#", "socket.io-request#/#"):
        redis_cli(redis, "PUBLISH", channel, "\x93garbage")
    redis_cli(redis, "PUBLISH", "socket.io-request#/#", '{"type": "no"}')

    async def scenario() -> None:
        await eventually(lambda: health(pair[0])["cluster"]["bad_messages"] >= before + 4)
        a = await Client(pair[0].url, {"token": token()}).connect(["websocket"])
        assert await a.call("echo", 1) == 1
        await a.close()

    asyncio.run(scenario())


def test_a_node_killed_leaves_the_others_serving(
    redis: RedisServer, server_factory: Callable[..., ServerProcess]
) -> None:
    nodes = [server_factory(switchboard_node(redis.url)) for _ in range(3)]
    see_each_other(nodes)
    victim_id = health(nodes[2])["cluster"]["node_id"]

    async def scenario() -> None:
        victim = await Client(nodes[2].url, {"token": token()}).connect(["polling"])
        survivor = await Client(nodes[0].url, {"token": token()}).connect(["websocket"])
        other = await Client(nodes[1].url, {"token": token()}).connect(["websocket"])
        sid = victim.sio.eio.sid
        assert nodes[2].proc is not None
        nodes[2].proc.send_signal(signal.SIGKILL)
        await eventually(lambda: victim_id not in health(nodes[0])["cluster"]["nodes_alive"])
        # its sessions are gone: a request for one of them, on a survivor, says so
        answer = httpx.get(f"{nodes[0].url}/socket.io/?EIO=4&transport=polling&sid={sid}")
        assert (answer.status_code, answer.json()) == (
            400,
            {"code": 1, "message": "Session ID unknown"},
        )
        await survivor.call("join", "after-kill")
        assert await crossing(survivor, other, "after-kill", 1)
        await survivor.close()
        await other.close()

    asyncio.run(scenario())
