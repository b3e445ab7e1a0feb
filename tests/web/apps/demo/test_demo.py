"""Demo traffic: ``serve --demo`` posts marked traffic through the public APIs, and
``switchboard reset-demo`` deletes exactly that traffic while the server is stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import REPO_ROOT, ProductServer, server_env
from tests.support.tokens import DEMO_SECRET
from tests.support.waiting import wait_until


def count(server: ProductServer, sql: str, *params: Any) -> int:
    rows = server.query(sql, *params)
    return int(rows[0][0]) if rows else 0


def cli(*args: str, server: ProductServer | None = None) -> subprocess.CompletedProcess[str]:
    """``switchboard ARGS`` (on ``server``'s database, when it is on PostgreSQL)."""
    database = ["--database-url", server.database_url] if server and server.database_url else []
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args, *database],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def reset(server: ProductServer, data: Path) -> subprocess.CompletedProcess[str]:
    return cli("reset-demo", "--data-dir", str(data), "--port", str(server.port), server=server)


DEMO_EVENTS = (
    "SELECT count(*) FROM analytics_events WHERE session_id LIKE 'demo-%' OR user_id LIKE 'demo-%'"
)
GUILD_EVENTS = "SELECT count(*) FROM guild_events WHERE guild_id = 'demo-guild'"


async def test_demo_traffic_is_marked_and_reset_demo_deletes_only_it(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer(
            "--demo", "--demo-events-per-second", "10", secret=DEMO_SECRET, data_dir=tmp_path
        )
    )
    kept = httpx.post(
        f"{server.url}/api/events",
        json={"eventName": "keep-me", "userId": "real-user", "country": "SE"},
        timeout=10,
    )
    assert kept.status_code == 200, kept.text

    await wait_until(lambda: count(server, DEMO_EVENTS) >= 20, timeout=20)
    await wait_until(lambda: count(server, GUILD_EVENTS) >= 1, timeout=20)
    unmarked = count(
        server,
        "SELECT count(*) FROM analytics_events "
        "WHERE NOT (coalesce(session_id, '') LIKE 'demo-%' OR coalesce(user_id, '') LIKE 'demo-%')",
    )
    assert unmarked == 1  # every demo event is marked; ours is not

    refused = reset(server, tmp_path)
    assert refused.returncode == 2, refused
    assert "stop it before reset-demo" in refused.stdout

    assert server.stop() == 0
    done = reset(server, tmp_path)
    assert done.returncode == 0, done
    assert "deleted" in done.stdout
    assert count(server, DEMO_EVENTS) == 0
    assert count(server, GUILD_EVENTS) == 0
    assert count(server, "SELECT count(*) FROM chat_chats WHERE created_by = 'demo-host'") == 0
    assert count(server, "SELECT count(*) FROM analytics_events WHERE name = 'keep-me'") == 1

    again = reset(server, tmp_path)
    assert again.returncode == 0 and "deleted 0 demo rows" in again.stdout, again


def test_demo_needs_a_fixed_port() -> None:
    refused = cli("check-config", "--demo", "true", "--port", "0")
    assert refused.returncode == 2
    assert "--demo" in refused.stderr
