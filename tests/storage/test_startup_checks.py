"""Start-up checks the database before listening: a garbage, truncated, corrupt or wrong-schema
file, or a data folder that cannot be written, makes ``serve`` exit non-zero within seconds with
one line naming the file and the problem, and ``check-config`` says the same."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import REPO_ROOT, free_port, server_env
from tests.support.storage import chat_database, corrupt_pages, page_count, read_only_folder

START_LIMIT = (
    10.0  # seconds: a refusal comes within this (the old behaviour took 27 s and listened)
)
DB_NAME = "switchboard.sqlite3"


def switchboard(command: str, data: Path) -> tuple[int, str, float]:
    """Run ``switchboard COMMAND`` on ``data``; (exit code, stderr, seconds it took)."""
    args = [sys.executable, "-m", "web.cli", command, "--data-dir", str(data)]
    args += ["--jwt-secret", "s" * 32, "--log-level", "warning"]
    if command == "serve":
        args += ["--port", str(free_port())]
    started = time.monotonic()
    done = subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=3 * START_LIMIT,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stderr.strip(), time.monotonic() - started


def assert_refused(data: Path, culprit: Path, problem: str) -> None:
    for command, code in (("serve", 1), ("check-config", 2)):
        returncode, stderr, seconds = switchboard(command, data)
        assert returncode == code, (command, returncode, stderr)
        assert seconds < START_LIMIT, (command, seconds)
        last = stderr.splitlines()[-1]
        assert last.startswith(f"switchboard: {culprit}: "), (command, stderr)
        assert problem in last, (command, last)
        assert "Traceback" not in stderr, stderr


def a_chat_database(data: Path, messages: int = 400) -> Path:
    database = data / DB_NAME
    chat_database(database, "chat-1", ("kim", "lee"), messages)
    return database


def test_a_garbage_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DB_NAME).write_bytes(os.urandom(64 * 1024))
    assert_refused(data, data / DB_NAME, "is not a SQLite database")


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = a_chat_database(data)
    with open(database, "r+b") as f:
        f.truncate(database.stat().st_size // 3)
    assert_refused(data, database, "corrupt")


def test_corrupted_pages_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = a_chat_database(data)
    pages = page_count(database)
    corrupt_pages(database, pages // 2, pages // 2 + 3)
    assert_refused(data, database, "corrupt")


def test_a_database_of_another_schema_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    other = sqlite3.connect(data / DB_NAME)
    other.execute("CREATE TABLE chat_messages (x INTEGER, note TEXT NOT NULL)")
    other.commit()
    other.close()
    assert_refused(data, data / DB_NAME, "has a different schema")


def test_a_data_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    with read_only_folder(tmp_path / "ro") as data:
        assert_refused(data, data, "not writable")


def test_a_sound_database_passes_and_check_config_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = a_chat_database(data, messages=10)
    before = database.read_bytes()
    returncode, stderr, _ = switchboard("check-config", data)
    assert returncode == 0, stderr
    assert database.read_bytes() == before
    assert not (data / "jwt-secret").exists()
