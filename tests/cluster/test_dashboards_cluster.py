"""The analytics, visitor and guild dashboards across three nodes behind a round-robin balancer.

Each test starts a :class:`~tests.cluster.helpers.ProductCluster` (three ``switchboard serve``
nodes on one Redis and one PostgreSQL database, the test clock on); clients connect to each
node's own url, POSTs go through the balancer. The expectations are the single-node tests'
(``tests/web/apps/{analytics,visitors,guild}``): exact numbers, exact payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.cluster.helpers import LoadBalancer, ProductCluster, RedisServer
from tests.support.clients.analytics import Client, token
from tests.support.clients.guild import GUILD_EVENTS, base_time, post_events
from tests.support.clients.guild import Client as GuildClient
from tests.support.clients.guild import token as guild_token
from tests.support.clients.scenarios import close_all, run
from tests.support.clients.visitors import Feed, open_feed
from tests.support.clients.visitors import bearer as visitor_bearer
from tests.support.clients.visitors import token as visitor_token
from tests.support.processes import ProductServer
from tests.support.stamps import iso
from tests.support.tokens import ANALYTICS_SECRET, GUILD_SECRET, VISITORS_SECRET
from tests.web.apps.analytics.test_dashboard import (
    check_live_events,
    expected_dashboard,
    script,
    without_performance,
)
from tests.web.apps.guild import scenario as sc

HOUR = 3600.0
DAY = 86400.0
WAIT = 10.0


FAST_PUSH = ("--dashboard-push-interval-seconds", "0.2")


def cluster(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
    *flags: str,
    secret: str = ANALYTICS_SECRET,
) -> ProductCluster:
    prefix = ("--redis-key-prefix", f"sb-{uuid.uuid4().hex[:8]}")  # the module shares Redis
    return ProductCluster(
        redis, database_url, balancer, server_factory, *prefix, *flags, secret=secret
    )


def post(url: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=WAIT)


def move_to_noon(nodes: ProductCluster) -> float:
    """Every node's clock to 12:00:30 UTC tomorrow (advanced on one node); returns that time."""
    real = time.time()
    target = (real // DAY + 1) * DAY + 12 * HOUR + 30
    nodes.nodes[0].advance(target - real)
    return target


def dashboard(url: str) -> dict[str, Any]:
    answer = httpx.get(
        url + "/api/metrics/dashboard",
        headers={"Authorization": f"Bearer {token()}"},
        timeout=WAIT,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def current_hour(d: dict[str, Any]) -> str:
    return str(d["eventVolumeData"][-1]["time"])


# --- the shared test clock -----------------------------------------------------------------------
def test_advancing_the_clock_on_one_node_moves_every_node(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
) -> None:
    nodes = cluster(redis, database_url, balancer, server_factory)
    real = time.time()
    target = (real // DAY + 3) * DAY + 12 * HOUR + 30  # noon, three days from now
    offset = nodes.nodes[0].advance(target - real)
    assert offset >= target - real - 1
    hour = iso(target // HOUR * HOUR)
    for node in nodes.nodes:  # the advance answered once every node had moved
        assert current_hour(dashboard(node.url)) == hour
    # a second advance through another node adds to the first
    assert nodes.nodes[2].advance(HOUR) == offset + HOUR
    for node in nodes.nodes:
        assert current_hour(dashboard(node.url)) == iso(target // HOUR * HOUR + HOUR)
    # a node started later (here: killed and started again) reads the shared offset
    nodes.nodes[1].kill()
    restarted: ProductServer = nodes.restart(1)
    assert current_hour(dashboard(restarted.url)) == iso(target // HOUR * HOUR + HOUR)
    assert restarted.advance(0) == offset + HOUR


# --- the metrics dashboard -----------------------------------------------------------------------
def post_script(url: str, t: float) -> None:
    """The single-node test's script, every request through the balancer (so over the nodes)."""
    before, earlier, now = script(t)
    assert post(url, "/api/events/batch", before).status_code == 200
    assert post(url, "/api/events/batch", {"events": earlier}).status_code == 200
    for event in now:
        answer = post(url, "/api/events", event)
        assert answer.status_code == 200, answer.text


def test_every_node_shows_the_same_dashboard_events_and_live_metrics(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
) -> None:
    nodes = cluster(redis, database_url, balancer, server_factory, *FAST_PUSH)
    t = move_to_noon(nodes)

    async def scenario() -> None:
        dashes = [
            await Client(node.url, "/ws/metrics").connect(auth={"token": token()})
            for node in nodes.nodes
        ]
        for dash in dashes:
            assert (await dash.wait_for("dashboard_data"))["totalEvents"] == 0
        await asyncio.to_thread(post_script, nodes.url, t)
        for dash in dashes:
            data = await dash.wait_for("dashboard_data", lambda d: d["totalEvents"] == 8)
            assert without_performance(data) == expected_dashboard(t)
            check_live_events(data["liveEvents"], t)
        for node in nodes.nodes:  # the REST view of every node
            assert without_performance(dashboard(node.url)) == expected_dashboard(t)

        # `events`: on every node every committed event once, in commit order
        order = ["e9", "e10", "e11", "e12", "e5", "e6", "e7", "e8", "e1", "e2", "e3", "e4"]
        for dash in dashes:
            await dash.wait_for(
                "events", lambda _, d=dash: sum(map(len, d.received["events"])) >= 12
            )
            items = [item for push in dash.received["events"] for item in push]
            assert [item["id"] for item in items] == order

        # analytics:liveMetrics from every node: the log's figures are the cluster's
        for node in nodes.nodes:
            live = await Client(node.url).connect(auth={"token": token("viewer", "user")})
            assert await live.call("analytics:requestLiveMetrics") == {"success": True}
            values = {m["name"]: m["value"] for m in live.received["analytics:liveMetrics"][0]}
            assert values["Active Users"] == 3
            assert values["Events per Minute"] == 0.8
            assert values["Connected Clients"] == 2  # this node's: its dashboard and this one
            await live.disconnect()

        # a day later (advanced on one node) every node has moved the windows
        pushed = [len(dash.received["dashboard_data"]) for dash in dashes]
        nodes.nodes[1].advance(DAY)
        for dash, n in zip(dashes, pushed, strict=True):
            later = await dash.wait_for("dashboard_data", lambda d: d["totalEvents"] == 0, after=n)
            assert later["totalEventsChange"] == -100.0
            assert len(later["liveEvents"]) == 12
        for dash in dashes:
            await dash.disconnect()

    run(scenario)


def test_a_node_killed_under_ingest_loses_no_acknowledged_event_and_rebuilds_the_same_numbers(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
) -> None:
    nodes = cluster(redis, database_url, balancer, server_factory)
    move_to_noon(nodes)
    victim = nodes.nodes[2]

    async def load() -> tuple[int, int]:
        """Batches posted straight to every node, the victim killed midway; returns (events
        acknowledged, requests refused or cut off)."""
        acknowledged = failed = 0
        async with httpx.AsyncClient(timeout=WAIT) as http:

            async def sender(node: ProductServer, n: int) -> None:
                nonlocal acknowledged, failed
                for b in range(20):
                    events = [
                        {"eventName": "order", "userId": f"n{n}-b{b}-{i}", "session_id": f"s{n}"}
                        for i in range(50)
                    ]
                    try:
                        answer = await http.post(node.url + "/api/events/batch", json=events)
                    except httpx.HTTPError:
                        failed += 1
                        continue
                    if answer.status_code == 200:
                        acknowledged += int(answer.json()["data"]["stored"])
                    else:
                        failed += 1
                    if n == 2 and b == 5:
                        victim.kill()  # while the others are still sending

            await asyncio.gather(*(sender(node, n) for n, node in enumerate(nodes.nodes)))
        return acknowledged, failed

    acknowledged, _ = run(load)
    assert acknowledged >= 2 * 20 * 50  # the two survivors' batches, at least
    stored = victim.query("SELECT count(*) FROM analytics_events")[0][0]
    assert stored >= acknowledged  # nothing acknowledged was lost (a cut-off one may be in)
    survivors = [dashboard(node.url) for node in nodes.nodes[:2]]
    for d in survivors:
        assert d["totalEvents"] == stored
    restarted = nodes.restart(2)
    again = dashboard(restarted.url)
    assert without_performance(again) == without_performance(survivors[0])
    assert [e["id"] for e in again["liveEvents"]] == [e["id"] for e in survivors[0]["liveEvents"]]
    # read-your-writes on the restarted node: its answer counts what it just stored
    answer = post(
        restarted.url, "/api/events", {"type": "pageview", "page": "/x", "session_id": "z"}
    )
    assert answer.json()["data"]["current_stats"]["total_today"] == stored + 1


# --- the visitor analytics -----------------------------------------------------------------------
ALERT = "High visitor activity detected!"


def pageviews(prefix: str, count: int, page: str = "/home") -> list[dict[str, Any]]:
    return [
        {"type": "pageview", "page": page, "session_id": f"{prefix}{i}", "country": "EG"}
        for i in range(1, count + 1)
    ]


async def visitors_get(url: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        answer = await http.get(url + path, headers=visitor_bearer())
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


async def visitors_post(url: str, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        return await http.post(url + path, json=body)


async def test_every_visitor_dashboard_sees_the_same_feed_and_the_alert_once(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
) -> None:
    nodes = cluster(redis, database_url, balancer, server_factory, secret=VISITORS_SECRET)
    headers = [("Authorization", f"Bearer {visitor_token()}")]
    async with contextlib.AsyncExitStack() as stack:
        feeds: list[Feed] = [
            await stack.enter_async_context(open_feed(f"{node.ws_url}/ws/visitors", headers))
            for node in nodes.nodes
        ]
        for feed in feeds:  # each node counts the dashboards it serves
            assert (await feed.expect("user_connected"))["total_dashboards"] == 1

        async def each_feed(kinds: list[str]) -> list[list[dict[str, Any]]]:
            return [[await feed.expect(kind) for kind in kinds] for feed in feeds]

        answer = await visitors_post(nodes.url, "/api/events/batch", pageviews("a", 10))
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["current_stats"]["total_active"] == 10  # read your writes
        seen = await each_feed(["visitor_update", "session_activity"] * 10)
        assert seen[0] == seen[1] == seen[2]  # the same messages, stats and sessions
        assert seen[0][-2]["stats"]["total_active"] == 10
        for feed in feeds:
            await feed.detailed()  # the next message after the batch: no alert at 10

        answer = await visitors_post(nodes.url, "/api/events", pageviews("a", 11)[-1])
        assert answer.json()["data"]["current_stats"]["total_active"] == 11
        await each_feed(["visitor_update", "session_activity"])
        alert = {
            "level": "info",
            "message": ALERT,
            "details": {"visitors_last_minute": 11, "threshold": 10},
        }
        assert await each_feed(["alert"]) == [[alert]] * 3  # once per dashboard, every node
        more = [{**e, "session_id": e["session_id"] + "x"} for e in pageviews("a", 5, "/cart")]
        assert (await visitors_post(nodes.url, "/api/events/batch", more)).status_code == 200
        await each_feed(["visitor_update", "session_activity"] * 5)
        for feed in feeds:
            await feed.detailed()  # 16 visitors, but an alert went out less than a minute ago

        await nodes.nodes[1].advance_async(61)  # on one node: every node's minute moves on
        answer = await visitors_post(nodes.url, "/api/events/batch", pageviews("b", 11))
        assert answer.status_code == 200
        await each_feed(["visitor_update", "session_activity"] * 11)
        assert await each_feed(["alert"]) == [[alert]] * 3
        for feed in feeds:
            await feed.detailed()

        # summary, sessions and journeys: the same on every node
        journey = {"type": "pageview", "page": "/cart", "session_id": "a1", "country": "EG"}
        assert (await visitors_post(nodes.url, "/api/events", journey)).status_code == 200
        summaries = [await visitors_get(n.url, "/api/analytics/summary") for n in nodes.nodes]
        sessions = [await visitors_get(n.url, "/api/analytics/sessions") for n in nodes.nodes]
        assert [s["summary"] for s in summaries] == [summaries[0]["summary"]] * 3
        assert summaries[0]["summary"]["total_active"] == 27
        assert summaries[0]["summary"]["total_today"] == 28  # 10 + 1 + 5 + 11 + 1
        assert sessions[0] == sessions[1] == sessions[2]
        assert sessions[0]["total_count"] == 27
        a1 = next(s for s in sessions[0]["sessions"] if s["session_id"] == "a1")
        assert a1["journey"] == ["/home", "/cart"]
        for node in nodes.nodes:
            status = await visitors_get(node.url, "/api/status")
            assert status["websocket"]["alerts_sent"] == 2  # this node's dashboards got both


# --- the guild monitor ---------------------------------------------------------------------------
GUILD = "100000000000000001"


def test_guild_dashboards_on_every_node_see_each_event_once_and_one_throttled_update(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
) -> None:
    nodes = cluster(redis, database_url, balancer, server_factory, secret=GUILD_SECRET)
    t = base_time()
    bot = guild_token("bot-1", role="bot", guilds=[GUILD])

    async def scenario() -> None:
        dashes = [
            await GuildClient(node, guild_token(f"dash{i}", guilds=[GUILD])).connect()
            for i, node in enumerate(nodes.nodes[:2])
        ]
        bot_socket = await GuildClient(nodes.nodes[2], bot).connect()
        # on the third node a dashboard of the live events only (no analytics subscription)
        watcher = await GuildClient(nodes.nodes[2], guild_token("w", guilds=[GUILD])).connect()
        assert await watcher.call("subscribe:guild", GUILD) == {"success": True, "guildId": GUILD}
        for dash in dashes:
            assert await dash.call("subscribe:guild", GUILD) == {"success": True, "guildId": GUILD}
            await dash.emit("subscribe:analytics", GUILD)
            (snapshot,) = [p for _, p in await dash.wait_count(1, "analytics:update")]
            assert sc.data_of(snapshot) == sc.EMPTY

        # batch 1 through the balancer: live events once each, in order, on both nodes
        answer = post_events(nodes, GUILD, sc.first_batch(t), bot)
        assert answer.status_code == 200, answer.text
        expected_live = sc.first_live(t)
        for dash in [*dashes, watcher]:
            assert await dash.wait_count(len(expected_live), *GUILD_EVENTS) == expected_live
        for dash in dashes:
            updates = await dash.wait_count(2, "analytics:update")
            assert sc.data_of(updates[1][1]) == sc.AFTER_FIRST  # the leading edge

        # batch 2 over the bot's socket (a third node): held back for the interval
        ack = await bot_socket.call("guild:event", GUILD, sc.second_batch(t))
        assert ack["success"] and ack["stored"] == 1
        for dash in dashes:
            await dash.wait_count(len(expected_live) + 1, *GUILD_EVENTS)
        nodes.nodes[2].advance(29)
        nodes.nodes[0].advance(1)  # 30 s after the first update: one node publishes it
        for dash in dashes:
            updates = await dash.wait_count(3, "analytics:update")
            assert sc.data_of(updates[2][1]) == sc.AFTER_SECOND

        answer = post_events(nodes, GUILD, sc.third_batch(t), bot)  # changes no figure
        assert answer.status_code == 200, answer.text
        nodes.nodes[1].advance(30)
        answer = post_events(nodes, GUILD, {"events": sc.fourth_batch(t)}, bot)
        assert answer.status_code == 200, answer.text
        for dash in dashes:
            updates = await dash.wait_count(4, "analytics:update")
            assert sc.data_of(updates[3][1]) == sc.AFTER_FOURTH

        # a week later the window empties, published once; then every update, exactly once
        nodes.nodes[2].advance(7 * 86400 + 3600)
        for dash in dashes:
            updates = await dash.wait_count(5, "analytics:update")
            assert sc.data_of(updates[4][1]) == sc.EMPTY
        await bot_socket.call("guild:event", GUILD, sc.third_batch(t + 7 * 86400))  # a marker
        for dash in dashes:
            await dash.wait_count(len(expected_live) + 3 + 2, *GUILD_EVENTS)
            assert [sc.data_of(p) for p in dash.payloads("analytics:update")] == [
                sc.EMPTY,
                sc.AFTER_FIRST,
                sc.AFTER_SECOND,
                sc.AFTER_FOURTH,
                sc.EMPTY,
            ]
            live = dash.events(*GUILD_EVENTS)
            assert len(live) == len(expected_live) + 5  # batch 2 (1), 3 (2), the marker (2)
        # both nodes' dashboards got the same published updates (one node sent each)
        stamps = [[p["timestamp"] for p in d.payloads("analytics:update")[1:]] for d in dashes]
        assert stamps[0] == stamps[1]
        assert watcher.payloads("analytics:update") == []
        assert len(watcher.events(*GUILD_EVENTS)) == len(expected_live) + 5
        await close_all(*dashes, watcher, bot_socket)

    run(scenario)
