"""A private PostgreSQL server for the tests: a fresh cluster in a temporary folder, on a free port.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(``runuser``); as anyone else it belongs to that user. The server listens on 127.0.0.1 only, on a
port nobody uses, with its socket in the cluster's folder, so a PostgreSQL the machine already
runs (port 5432) is never touched. ``fsync=off``: the tests kill Switchboard, never the database
server, so durability across an OS crash is not what they measure, and initdb + start take about
a second. Each test that needs a clean slate takes a database of its own
(:meth:`PostgresServer.create_database`).
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_SECONDS = 30
_names = itertools.count()


def _binaries() -> Path | None:
    """The folder of the newest installed server's ``initdb`` and ``pg_ctl``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(candidates[-1]).parent if candidates else None


def _major(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


class PostgresServer:
    """initdb + pg_ctl start on a free port; :meth:`stop` removes everything it made."""

    def __init__(self) -> None:
        from tests.support.processes import free_port  # (processes imports this module)

        bin_dir = _binaries()
        if bin_dir is None:
            pytest.fail("PostgreSQL's server is not installed: `make test` installs it")
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.folder / "data"
        self.as_root = os.geteuid() == 0
        self.user = "switchboard"
        self.started = False

    def _run(self, *argv: str) -> None:
        command = [*argv]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")

    def start(self) -> None:
        """initdb (the first time), then start the server; again after :meth:`halt`."""
        if not self.data.exists():
            if self.as_root:
                shutil.chown(self.folder, "postgres", "postgres")
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
                "-E", "UTF8", "--no-sync", "--locale", "C",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.folder / "log"), "-w", "-t", str(START_TIMEOUT_SECONDS), "start",
        )  # fmt: skip
        self.started = True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def halt(self) -> None:
        """Stop the server as a crash would (``-m immediate``), keeping its data."""
        if self.started:
            self.started = False
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        """Stop the server and remove everything it made."""
        try:
            self.halt()
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # best effort: the folder goes anyway
        shutil.rmtree(self.folder, ignore_errors=True)


# --- the suite's PostgreSQL --------------------------------------------------------------------
# ``SWITCHBOARD_TEST_BACKEND=postgresql`` runs the product servers the tests start on PostgreSQL
# instead of SQLite (``make test`` does so for the applications' suites, a second time): one
# private server for the whole run, one database per data folder, so a test that restarts a
# server on the same folder finds its data again.
BACKEND_ENV = "SWITCHBOARD_TEST_BACKEND"
_shared: PostgresServer | None = None
_by_folder: dict[Path, str] = {}


def backend_under_test() -> str:
    return os.environ.get(BACKEND_ENV, "sqlite")


def shared_server() -> PostgresServer:
    """The run's private PostgreSQL, started on first use and stopped when the run ends."""
    global _shared
    if _shared is None:
        server = PostgresServer()
        server.start()
        atexit.register(server.stop)
        _shared = server
    return _shared


def database_for(folder: Path) -> str:
    """The database of the server whose data folder is ``folder`` (made on first use)."""
    key = folder.resolve()
    if key not in _by_folder:
        _by_folder[key] = shared_server().create_database()
    return _by_folder[key]


def query(
    database_url: str, sqlite_file: Path, sql: str, params: Sequence[object] = ()
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on PostgreSQL (``database_url``) or else the SQLite file; the statement is
    written for SQLite (``?``), as the Store's are. A missing table reads as no rows."""
    from actors.store.sql import table_names

    if database_url:
        import psycopg

        from actors.store.sql import PostgresConnection

        with psycopg.connect(database_url, autocommit=True) as connection:
            db = PostgresConnection(connection)
            if not _tables_present(sql, table_names(db)):
                return []
            return [tuple(row) for row in db.execute(sql, params)]
    if not sqlite_file.exists():
        return []
    conn = sqlite3.connect(sqlite_file)
    try:
        if not _tables_present(sql, table_names(conn)):
            return []
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def _tables_present(sql: str, tables: set[str]) -> bool:
    named = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql, re.I)
    return all(name in tables for name in named)
