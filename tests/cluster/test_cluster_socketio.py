"""Socket.IO across three Switchboard nodes on Redis, behind HAProxy round-robin (no stickiness),
with a stock Node socket.io server and the Node emitter in the same cluster."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.cluster.helpers import (
    Client,
    LoadBalancer,
    RedisServer,
    node_server,
    switchboard_node,
    token,
)
from tests.support.processes import NODE_DIR, ServerProcess, node_client

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

CONNECTS_PER_MODE = 200


@pytest.fixture(scope="module")
def nodes(
    redis: RedisServer, module_server_factory: Callable[..., ServerProcess]
) -> list[ServerProcess]:
    return [module_server_factory(switchboard_node(redis.url)) for _ in range(3)]


@pytest.fixture(scope="module")
def lb(nodes: list[ServerProcess], balancer: Callable[[list[int]], LoadBalancer]) -> LoadBalancer:
    return balancer([n.port for n in nodes])


@pytest.fixture(scope="module")
def node_js(
    redis: RedisServer, module_server_factory: Callable[..., ServerProcess]
) -> ServerProcess:
    return module_server_factory(node_server(redis.url))


def emitter(redis: RedisServer, action: str, spec: dict[str, Any]) -> None:
    done = subprocess.run(
        ["node", str(NODE_DIR / "cluster_emitter.js"), redis.url, action, json.dumps(spec)],
        capture_output=True, text=True, timeout=30, cwd=NODE_DIR.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("transports", ["polling", "default", "websocket"])
def test_hundreds_of_stock_clients_through_the_balancer(lb: LoadBalancer, transports: str) -> None:
    result = node_client(
        "cluster_clients.js", lb.url, token(), transports, str(CONNECTS_PER_MODE), timeout=120
    )
    assert result["errors"] == []
    assert result["connected"] == result["received"] == CONNECTS_PER_MODE
    if transports != "polling":
        assert result["upgraded"] == CONNECTS_PER_MODE


def test_upgrades_through_the_asgi_route_are_relayed_to_their_owner(
    redis: RedisServer,
    module_server_factory: Callable[..., ServerProcess],
    balancer: Callable[[list[int]], LoadBalancer],
) -> None:
    """With the native path off, an upgrade for another node's session arrives through
    Hypercorn's ASGI route, which relays it message by message."""
    own_cluster = ("--asgi-only", "--set", "redis_key_prefix=asgi-cluster")
    asgi = [module_server_factory(switchboard_node(redis.url, *own_cluster)) for _ in range(2)]
    front = balancer([n.port for n in asgi])
    result = node_client("cluster_clients.js", front.url, token(), "default", "50", timeout=120)
    assert result["errors"] == []
    assert result["connected"] == result["received"] == result["upgraded"] == 50
    relayed = [httpx.get(f"{n.url}/health").json()["cluster"]["forwarded_upgrades"] for n in asgi]
    assert sum(relayed) > 0


def test_python_clients_of_every_transport_through_the_balancer(lb: LoadBalancer) -> None:
    async def scenario() -> None:
        for transports in (["polling"], ["polling", "websocket"], ["websocket"]):
            a = await Client(lb.url, {"token": token()}).connect(transports)
            b = await Client(lb.url, {"token": token()}).connect(transports)
            for i in range(10):
                assert await a.call("echo", i) == i
            await a.call("join", "py-room")
            await b.call("bcast", {"room": "py-room", "event": "news", "args": [1, b"\x00\xff"]})
            assert await a.next("news") == (1, b"\x00\xff")
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_a_dead_owner_means_session_id_unknown(
    nodes: list[ServerProcess], lb: LoadBalancer
) -> None:
    """A sid whose node is not in the registry is answered as any lost session."""
    others = httpx.get(f"{nodes[0].url}/socket.io/?EIO=4&transport=polling&sid=ZZZZZZabcdef")
    assert others.status_code == 400
    assert others.json() == {"code": 1, "message": "Session ID unknown"}


def test_broadcasts_both_ways_with_a_node_server(
    nodes: list[ServerProcess], node_js: ServerProcess, redis: RedisServer
) -> None:
    async def scenario() -> None:
        ours = await Client(nodes[1].url, {"token": token()}).connect(["websocket"])
        theirs = await Client(node_js.url).connect(["websocket"])
        await ours.call("join", "mixed")
        await theirs.call("join", "mixed")
        # Switchboard -> Node, binary included
        await ours.call("bcast", {"room": "mixed", "event": "from-us", "args": ["a", b"\x01\x02"]})
        assert await theirs.next("from-us") == ("a", b"\x01\x02")
        assert await ours.next("from-us") == ("a", b"\x01\x02")
        # Node -> Switchboard, binary included
        await theirs.call(
            "bcast", {"room": "mixed", "event": "from-node", "args": [{"n": 1}, b"\x03"]}
        )
        assert await ours.next("from-node") == ({"n": 1}, b"\x03")
        # the emitter: emit (with binary) into Switchboard's room
        emitter(
            redis, "emit", {"room": "mixed", "event": "from-emitter", "args": [7], "binary": "0a0b"}
        )
        assert await ours.next("from-emitter") == (7, b"\x0a\x0b")
        assert await theirs.next("from-emitter") == (7, b"\x0a\x0b")
        await ours.close()
        await theirs.close()

    asyncio.run(scenario())


def test_the_emitter_joins_leaves_and_disconnects_switchboard_sockets(
    nodes: list[ServerProcess], redis: RedisServer
) -> None:
    async def scenario() -> None:
        ours = await Client(nodes[2].url, {"token": token()}).connect(["websocket"])
        other = await Client(nodes[0].url, {"token": token()}).connect(["websocket"])
        await ours.call("join", "emitter-base")
        emitter(redis, "join", {"room": "emitter-base", "rooms": ["emitter-added"]})
        found = await other.call("cluster:fetch", ["emitter-added"])
        assert [s["id"] for s in found] == [ours.sid]
        await other.call("bcast", {"room": "emitter-added", "event": "joined", "args": [1]})
        assert await ours.next("joined") == (1,)
        emitter(redis, "leave", {"room": "emitter-base", "rooms": ["emitter-added"]})
        assert await other.call("cluster:fetch", ["emitter-added"]) == []
        emitter(redis, "disconnect", {"room": "emitter-base"})
        await asyncio.wait_for(ours.disconnected.wait(), 10)
        await other.close()

    asyncio.run(scenario())


def test_node_requests_complete_across_both_kinds_of_server(
    nodes: list[ServerProcess], node_js: ServerProcess
) -> None:
    """Node's fetchSockets(), serverSideEmit with ack and emitWithAck see Switchboard; ours
    see Node."""

    async def scenario() -> None:
        ours = await Client(nodes[0].url, {"token": token()}).connect(["websocket"])
        theirs = await Client(node_js.url).connect(["websocket"])
        ours.answers["question"] = "ours-answer"
        theirs.answers["question"] = "theirs-answer"
        await ours.call("join", "asking")
        await theirs.call("join", "asking")
        # Node asks
        fetched = await theirs.call("node:fetch", ["asking"])
        assert sorted(s["id"] for s in fetched) == sorted([ours.sid, theirs.sid])
        assert next(s for s in fetched if s["id"] == ours.sid)["rooms"] == [ours.sid, "asking"]
        side = await theirs.call("node:server-side", "x")
        assert side["error"] is None
        assert side["responses"] == [{"pong": "switchboard", "args": ["x"]}] * len(nodes)
        acks = await theirs.call("node:emit-with-ack", "asking", "question", 5)
        assert acks["error"] is None
        assert sorted(acks["responses"]) == ["ours-answer", "theirs-answer"]
        # Switchboard asks
        fetched = await ours.call("cluster:fetch", ["asking"])
        assert sorted(s["id"] for s in fetched) == sorted([ours.sid, theirs.sid])
        side = await ours.call("cluster:server-side", "ping", "y")
        pongs = sorted(json.dumps(r, sort_keys=True) for r in side)
        expected = [{"pong": "node", "args": ["y"]}] + [{"pong": "switchboard", "args": ["y"]}] * 2
        assert pongs == sorted(json.dumps(r, sort_keys=True) for r in expected)
        got = await ours.call("cluster:emit-with-ack", "asking", "question", 9)
        assert sorted(got["answers"]) == ["ours-answer", "theirs-answer"]
        assert (got["expected"], got["timed_out"]) == (2, 0)
        rooms = await ours.call("cluster:all-rooms")
        assert {"asking", ours.sid, theirs.sid} <= set(rooms)
        await ours.close()
        await theirs.close()

    asyncio.run(scenario())


def test_our_join_and_disconnect_reach_sockets_on_other_nodes(nodes: list[ServerProcess]) -> None:
    async def scenario() -> None:
        far = await Client(nodes[2].url, {"token": token()}).connect(["websocket"])
        near = await Client(nodes[0].url, {"token": token()}).connect(["websocket"])
        await far.call("join", "far-base")
        assert await near.call("cluster:join", ["far-base"], ["far-added"]) == {"ok": True}
        found = await near.call("cluster:fetch", ["far-added"])
        assert [s["id"] for s in found] == [far.sid]
        assert found[0]["node"] == ""  # remote sockets are described as the node sent them
        assert await near.call("cluster:disconnect", ["far-added"]) == {"ok": True}
        await asyncio.wait_for(far.disconnected.wait(), 10)
        await near.close()

    asyncio.run(scenario())


def test_health_shows_the_cluster(nodes: list[ServerProcess]) -> None:
    health = httpx.get(f"{nodes[0].url}/health").json()
    cluster = health["cluster"]
    assert health["status"] == "ok"
    assert cluster["redis"] == "connected"
    assert len(cluster["nodes_alive"]) >= len(nodes)
    assert cluster["seconds_since_last_message"] is not None
