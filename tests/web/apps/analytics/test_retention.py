"""Housekeeping deletes analytics events past ``event_retention_days`` on its own (driven by the
test clock), and the removal shows in /metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import ProductServer
from tests.support.tokens import DAY, RETENTION_SECRET, Tokens
from tests.support.waiting import wait_until_blocking


def test_events_past_retention_are_deleted_by_housekeeping(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer(
            "--housekeeping-interval-seconds",
            "60",
            "--event-retention-days",
            "30",
            secret=RETENTION_SECRET,
            data_dir=tmp_path,
            test_clock=True,
        )
    )
    admin = Tokens(RETENTION_SECRET)("ops", "admin", ttl=400 * DAY)
    auth = {"Authorization": f"Bearer {admin}"}

    def stored() -> int:
        return int(server.query("SELECT count(*) FROM analytics_events")[0][0])

    def metric(http: httpx.Client, name: str) -> float:
        for line in http.get("/metrics", headers=auth).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        raise AssertionError(f"no {name}")

    def sweep_after_advancing(http: httpx.Client, seconds: float) -> None:
        runs = metric(http, "switchboard_housekeeping_runs_total")
        server.advance(seconds)
        wait_until_blocking(
            lambda: metric(http, "switchboard_housekeeping_runs_total") > runs,
            10,
            message="no housekeeping sweep",
        )

    with httpx.Client(base_url=server.url, timeout=10) as http:
        batch = [{"type": "pageview", "page": "/", "session_id": f"s{i}"} for i in range(3)]
        assert http.post("/api/events/batch", json=batch).status_code == 200
        assert stored() == 3
        sweep_after_advancing(http, 29 * 86400)  # still within retention
        assert stored() == 3
        removed_before = metric(http, "switchboard_housekeeping_removed_total")
        sweep_after_advancing(http, 2 * 86400)  # past 30 days: this sweep deletes them
        # the delete commits after the sweep count
        wait_until_blocking(lambda: stored() == 0, 10, message=lambda: f"{stored()} events left")
        assert stored() == 0
        removed = metric(http, "switchboard_housekeeping_removed_total") - removed_before
        assert removed >= 3
