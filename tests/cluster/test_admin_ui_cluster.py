"""The Admin UI in a cluster: signed in on one node, it sees and acts on every node."""

from __future__ import annotations

from collections.abc import Callable

from tests.cluster.helpers import RedisServer
from tests.support import postgres
from tests.support.clients.scenarios import run
from tests.support.processes import ProductServer, ServerProcess
from tests.support.tokens import ADMIN_UI_SECRET
from tests.web.apps.admin_ui.helpers import ADMIN_UI_FLAGS, admin, user


def product_node(redis: RedisServer, node_id: str, database_url: str) -> ProductServer:
    return ProductServer(
        *ADMIN_UI_FLAGS,
        "--redis-url", redis.url,
        "--node-id", node_id,
        "--cluster-node-lease-seconds", "1.5",
        "--cluster-probe-interval-seconds", "0.3",
        secret=ADMIN_UI_SECRET,
        database_url=database_url,
    )  # fmt: skip


def test_the_ui_sees_and_acts_on_every_node(
    redis: RedisServer, server_factory: Callable[..., ServerProcess]
) -> None:
    database = postgres.shared_server().create_database()  # the nodes share it
    one = server_factory(product_node(redis, "node-one", database))
    two = server_factory(product_node(redis, "node-two", database))

    async def scenario() -> None:
        early = await user(two.url, "early")  # there before the UI signs in
        ops = await admin(one.url)
        (sockets,) = await ops.next("all_sockets")
        assert early.sid in {s["id"] for s in sockets}
        seen = next(s for s in sockets if s["id"] == early.sid)
        assert seen["transport"] == "websocket" and seen["clientId"]  # from the other node
        servers: set[str] = set()
        while servers != {"node-one", "node-two"}:
            (stats,) = await ops.next("server_stats")
            servers.add(stats["serverId"])
        late = await user(two.url, "late")
        await ops.next_where("socket_connected", lambda a: a[0]["id"] == late.sid)
        await ops.emit("join", "/", "vip", late.sid)
        await ops.next_where("room_joined", lambda a: a[1:3] == ("vip", late.sid))
        await ops.emit("emit", "/", "vip", "notice", "from the UI")
        assert await late.next("notice") == ("from the UI",)
        late_sid = late.sid
        await ops.emit("_disconnect", "/", False, late_sid)
        await late.disconnected.wait()
        await ops.next_where("socket_disconnected", lambda a: a[1] == late_sid)
        assert not early.disconnected.is_set()
        for client in (early, ops):
            await client.close()

    run(scenario, timeout=60)
