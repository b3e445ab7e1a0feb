"""Demo traffic: ``serve --demo`` posts marked traffic through the public APIs, and
``switchboard reset-demo`` deletes exactly that traffic while the server is stopped."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import REPO_ROOT, ProductServer, server_env
from tests.support.tokens import DEMO_SECRET
from tests.support.waiting import wait_until


def count(database: Path, sql: str, *params: Any) -> int:
    db = sqlite3.connect(database)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        table = sql.split(" FROM ")[1].split()[0]
        if table not in tables:
            return 0
        return int(db.execute(sql, params).fetchone()[0])
    finally:
        db.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


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
    database = tmp_path / "switchboard.sqlite3"
    kept = httpx.post(
        f"{server.url}/api/events",
        json={"eventName": "keep-me", "userId": "real-user", "country": "SE"},
        timeout=10,
    )
    assert kept.status_code == 200, kept.text

    await wait_until(lambda: count(database, DEMO_EVENTS) >= 20, timeout=20)
    await wait_until(lambda: count(database, GUILD_EVENTS) >= 1, timeout=20)
    unmarked = count(
        database,
        "SELECT count(*) FROM analytics_events "
        "WHERE NOT (coalesce(session_id, '') LIKE 'demo-%' OR coalesce(user_id, '') LIKE 'demo-%')",
    )
    assert unmarked == 1  # every demo event is marked; ours is not

    refused = cli("reset-demo", "--data-dir", str(tmp_path), "--port", str(server.port))
    assert refused.returncode == 2, refused
    assert "stop it before reset-demo" in refused.stdout

    assert server.stop() == 0
    done = cli("reset-demo", "--data-dir", str(tmp_path), "--port", str(server.port))
    assert done.returncode == 0, done
    assert "deleted" in done.stdout
    assert count(database, DEMO_EVENTS) == 0
    assert count(database, GUILD_EVENTS) == 0
    assert count(database, "SELECT count(*) FROM chat_chats WHERE created_by = 'demo-host'") == 0
    assert count(database, "SELECT count(*) FROM analytics_events WHERE name = 'keep-me'") == 1

    again = cli("reset-demo", "--data-dir", str(tmp_path), "--port", str(server.port))
    assert again.returncode == 0 and "deleted 0 demo rows" in again.stdout, again


def test_demo_needs_a_fixed_port() -> None:
    refused = cli("check-config", "--demo", "true", "--port", "0")
    assert refused.returncode == 2
    assert "--demo" in refused.stderr
