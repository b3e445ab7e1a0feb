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

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.processes import free_port

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

    def stop(self) -> None:
        if self.started:
            self.started = False
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # best effort: the folder goes anyway
        shutil.rmtree(self.folder, ignore_errors=True)
