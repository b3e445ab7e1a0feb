"""Storage faults made on purpose, for the tests of what the server does about them.

* :func:`small_disk` - a folder on a tmpfs of a few MiB (skips the test, saying why, where the
  machine cannot mount one); :func:`fill` fills it to the last byte, ``unlink()`` frees it.
* :func:`read_only_folder` - a tmpfs remounted read-only (root ignores file permissions).
* :func:`write_lock` - another process holding the database's write lock (``BEGIN IMMEDIATE``).
* :func:`corrupt_pages` - garbage written over some pages of a database file.
* :func:`chat_database` - a real chat database with many messages, made offline.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.chat import db as chat_db

PAGE = 4096
LOCK_TIMEOUT = 10.0


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here (root needed): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s file system; delete it to free them."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk[:size])
    return filler


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    with small_disk(folder, "1m"):
        (folder / "data").mkdir()
        done = subprocess.run(
            ["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount a tmpfs read-only: {done.stderr.strip()}")
        yield folder / "data"


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def write_lock(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``database``'s write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()  # the holder prints it once it holds the lock
        assert line.strip() == "locked", f"the lock holder said {line!r}"
        yield holder
    finally:
        with contextlib.suppress(OSError, ValueError):
            assert holder.stdin is not None
            holder.stdin.close()
        try:
            holder.wait(LOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def corrupt_pages(database: Path, first: int, last: int) -> None:
    """Overwrite pages ``first`` to ``last`` (1-based, inclusive) with garbage."""
    with open(database, "r+b") as f:
        for page in range(first, last + 1):
            f.seek((page - 1) * PAGE)
            f.write(os.urandom(PAGE))
        f.flush()
        os.fsync(f.fileno())


def page_count(database: Path) -> int:
    return database.stat().st_size // PAGE


def chat_database(
    database: Path, chat_id: str, members: tuple[str, ...], messages: int, size: int = 300
) -> list[str]:
    """A database of the chat's schema holding ``chat_id`` with ``messages`` messages of
    ``size`` characters (``m<i> xxx...``); returns their contents, oldest first."""
    database.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(database, isolation_level=None)
    for statement in chat_db.SCHEMA:
        db.execute(statement)
    for migration in chat_db.MIGRATIONS:
        migration(db)
    db.execute("BEGIN")
    chat_db.create_chat(chat_id, "Room", "", members[0], members[1:], 1_700_000_000.0)(db)
    contents = [f"m{i} " + "x" * size for i in range(messages)]
    for i, content in enumerate(contents):
        chat_db.insert_message(
            str(uuid.uuid4()), chat_id, members[0], members[0].title(), content, "text",
            1_700_000_000.0 + i,
        )(db)  # fmt: skip
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return contents
