"""The analytics, visitor and guild dashboards across three nodes behind a round-robin balancer.

Each test starts a :class:`~tests.cluster.helpers.ProductCluster` (three ``switchboard serve``
nodes on one Redis and one PostgreSQL database, the test clock on); clients connect to each
node's own url, POSTs go through the balancer. The expectations are the single-node tests'
(``tests/web/apps/{analytics,visitors,guild}``): exact numbers, exact payloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.cluster.helpers import LoadBalancer, ProductCluster, RedisServer
from tests.support.clients.analytics import token
from tests.support.processes import ProductServer
from tests.support.stamps import iso
from tests.support.tokens import ANALYTICS_SECRET

HOUR = 3600.0
DAY = 86400.0
WAIT = 10.0


def cluster(
    redis: RedisServer,
    database_url: str,
    balancer: Callable[[list[int]], LoadBalancer],
    server_factory: Callable[..., Any],
    *flags: str,
) -> ProductCluster:
    return ProductCluster(
        redis, database_url, balancer, server_factory, *flags, secret=ANALYTICS_SECRET
    )


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
