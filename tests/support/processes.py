"""Processes the tests start: servers (waited for, stopped, their stderr kept) and Node clients.

* :func:`free_port` - a TCP port nobody listens on right now; :func:`wait_for_port` - until a
  process listens on one (for servers that print no ready line: Redis, HAProxy, other
  implementations).
* :class:`ServerProcess` - runs a server script (``python SCRIPT --port N ...``) as a subprocess
  from the repository root, waits for its ``ready on N`` line (bounded by a timeout, never a
  fixed sleep), and stops it (SIGTERM, then SIGKILL). Its stderr is kept in a file and printed
  when the server dies early, fails to start, or a test using it fails.
* :class:`ProductServer` - ``switchboard serve`` with a data folder and a suite's JWT secret
  (tests/support/tokens.py); with ``test_clock`` its clock moves with ``advance()``.
* :func:`interop` - the interop server with ``--set NAME=VALUE`` overrides.
* :func:`server_pool` - starts servers and stops them when it closes (the ``server_factory``
  fixtures of tests/conftest.py are pools).
* :func:`node_client` - runs ``node tests/node/<script>`` with arguments and returns the one JSON
  object it prints on stdout (with a timeout).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from tests.support import postgres
from tests.support.servers import INTEROP_SERVER, PRODUCT_READY, PRODUCT_SERVER
from tests.support.waiting import wait_until_blocking

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
NODE_DIR = TESTS_DIR / "node"

SERVER_START_TIMEOUT = 20.0
SERVER_STOP_TIMEOUT = 5.0
NODE_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now (the OS picks it; a tiny race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int,
    timeout: float = SERVER_START_TIMEOUT,
    *,
    alive: Callable[[], bool] = lambda: True,
    what: str = "the server",
) -> None:
    """Until something accepts TCP connections on ``port``; fails at once if ``alive()`` turns
    false (the process exited) and after ``timeout`` seconds."""

    def listening() -> bool:
        if not alive():
            raise RuntimeError(f"{what} exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until_blocking(
        listening, timeout, message=f"{what} did not listen on {port} within {timeout}s"
    )


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + old if old else "")
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class ServerStartError(RuntimeError):
    pass


class ServerProcess:
    """One server subprocess. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        script: str | Path,
        *args: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        ready_marker: str = "ready on",
        start_timeout: float = SERVER_START_TIMEOUT,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.script = str(script)
        self.args = list(args)
        self.port = port or free_port(host)
        self.host = host
        self.cwd = cwd
        self.env = server_env(env)
        self.python = python
        self.ready_marker = ready_marker
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self._stderr_file: IO[bytes] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def command(self) -> list[str]:
        return [self.python, self.script, "--port", str(self.port), *self.args]

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> ServerProcess:
        self._stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if not self._ready.wait(self.start_timeout) or not self.alive:
            reason = (
                f"exited with code {self.proc.poll()}"
                if not self.alive
                else f"did not print {self.ready_marker!r} within {self.start_timeout}s"
            )
            self.stop()
            raise ServerStartError(
                f"server {self.command} {reason}\n--- stdout ---\n{''.join(self.stdout_lines)}"
                f"--- stderr ---\n{self.stderr()}"
            )
        return self

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            if self.ready_marker in line:
                self._ready.set()
        self._ready.set()  # EOF: the process is gone; start() notices it is not alive

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        f = self._stderr_file
        if f is None or f.closed:
            return ""
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def close(self) -> None:
        self.stop()
        if self._stderr_file is not None:
            self._stderr_file.close()

    def report(self) -> str:
        return (
            f"server {self.command} (alive={self.alive})\n"
            f"--- stderr ---\n{self.stderr() or '(empty)'}"
        )

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProductServer(ServerProcess):
    """``switchboard serve`` (tests/support/servers/product_server.py) with a data folder (a new
    temporary one unless given) and ``secret`` as its JWT secret; ``test_clock`` turns on
    ``POST /api/test/clock``. ``database_url``: PostgreSQL instead of SQLite (also the default
    when the run is on PostgreSQL: :mod:`tests.support.postgres`)."""

    def __init__(
        self,
        *flags: str,
        secret: str,
        data_dir: str | Path | None = None,
        test_clock: bool = False,
        port: int | None = None,
        database_url: str | None = None,
    ) -> None:
        folder = Path(data_dir or tempfile.mkdtemp(prefix="switchboard-test-"))
        clock = ["--test-clock", "true"] if test_clock else []
        args = ["--data-dir", str(folder), "--jwt-secret", secret, *clock, *flags]
        if database_url is None and postgres.backend_under_test() == "postgresql":
            database_url = postgres.database_for(folder)
        if database_url:
            args += ["--database-url", database_url]
        super().__init__(PRODUCT_SERVER, *args, port=port, ready_marker=PRODUCT_READY)
        self.data_dir = folder
        self.database_url = database_url or ""

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``?`` placeholders) on this server's database, whichever it is; a
        table that does not exist yet reads as no rows."""
        return postgres.query(self.database_url, self.data_dir / "switchboard.sqlite3", sql, params)

    def advance(self, seconds: float) -> float:
        """Move the server's clock forward; returns its offset from real time."""
        answer = httpx.post(
            f"{self.url}/api/test/clock", json={"advance_seconds": seconds}, timeout=10.0
        )
        return _offset(answer)

    async def advance_async(self, seconds: float) -> float:
        """:meth:`advance` without blocking the event loop (trio or asyncio)."""
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(
                f"{self.url}/api/test/clock", json={"advance_seconds": seconds}
            )
        return _offset(answer)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def _offset(answer: httpx.Response) -> float:
    assert answer.status_code == 200, answer.text
    return float(answer.json()["offset_seconds"])


def interop(
    factory: Callable[..., ServerProcess], *settings: str, max_payload: int = 10_000
) -> Any:
    """Start the interop server with ``--set NAME=VALUE`` overrides."""
    args: list[str] = ["--max-payload", str(max_payload)]
    for item in settings:
        args += ["--set", item]
    return factory(INTEROP_SERVER, *args)


# --- pools ---------------------------------------------------------------------------------------
#: every server started by a pool and not stopped yet (their stderr goes into failure reports)
STARTED: list[ServerProcess] = []

S = TypeVar("S", bound=ServerProcess)


@contextlib.contextmanager
def server_pool(build: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """``start(*args, **kw)`` builds a server with ``build``, starts it, and stops it when the
    pool closes; failing tests show its stderr (see ``pytest_runtest_makereport``)."""
    servers: list[S] = []

    def start(*args: Any, **kwargs: Any) -> S:
        server = build(*args, **kwargs)
        servers.append(server)
        STARTED.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
            if server in STARTED:
                STARTED.remove(server)


def data_dir_pool(
    make: Callable[..., S], folder: Path
) -> contextlib.AbstractContextManager[Callable[..., S]]:
    """A :func:`server_pool` whose ``start(*flags, data_dir=None)`` gives each server a data
    folder of its own under ``folder`` (``make(data_dir, *flags)`` builds it)."""
    numbers = itertools.count()

    def build(*flags: str, data_dir: Path | None = None) -> S:
        return make(data_dir or folder / f"data{next(numbers)}", *flags)

    return server_pool(build)


def built(*args: Any, **kwargs: Any) -> ServerProcess:
    """What a ``server_factory`` starts: a :class:`ServerProcess` made by the caller (a
    :class:`ProductServer`, say), or one built from ``(script, *args, **kw)``."""
    if len(args) == 1 and not kwargs and isinstance(args[0], ServerProcess):
        return args[0]
    return ServerProcess(*args, **kwargs)


# --- Node clients --------------------------------------------------------------------------------
class NodeClientError(AssertionError):
    pass


def node_client(
    script: str, *args: Any, timeout: float = NODE_TIMEOUT, expect_ok: bool = True
) -> dict[str, Any]:
    """Run ``node tests/node/<script> ARGS...`` and return its JSON result (its last stdout line).

    Non-string arguments are passed as JSON. With ``expect_ok`` a non-zero exit fails the test
    with the script's output.
    """
    argv = ["node", str(NODE_DIR / script)]
    argv += [a if isinstance(a, str) else json.dumps(a) for a in args]
    try:
        done = subprocess.run(
            argv,
            cwd=TESTS_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise NodeClientError(
            f"{script} did not finish within {timeout}s\nstdout: {err.stdout!r}\n"
            f"stderr: {err.stderr!r}"
        ) from None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if expect_ok and done.returncode != 0:
        raise NodeClientError(
            f"{script} exited with {done.returncode}\nstdout:\n{done.stdout}\n"
            f"stderr:\n{done.stderr}"
        )
    if not lines:
        raise NodeClientError(f"{script} printed nothing\nstderr:\n{done.stderr}")
    try:
        parsed: Any = json.loads(lines[-1])
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise NodeClientError(
            f"{script} printed no JSON object\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    result: dict[str, Any] = parsed
    result.setdefault("_exit_code", done.returncode)
    return result
