"""The servers of the application scenarios (``chat``, ``ingest``): Switchboard's full server
(``switchboard serve``) and the Node application peer (``benchmarks/peers/node/app.js``), started
the same way, with the same JWT secret, on a free port and a fresh data folder.

Every client of a benchmark comes from 127.0.0.1, so Switchboard's per-address limits are off
(chat message and connect limits, the ingest rate, connections per address); the Node peer has
none.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-0123456789abcdef0123"
NODE_APP = ROOT / "benchmarks" / "peers" / "node" / "app.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def switchboard_command(port: int, data_dir: str) -> list[str]:
    return [
        sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--data-dir", data_dir,
        "--jwt-secret", SECRET, "--log-level", "warning",
        "--chat-message-rate-per-minute", "0", "--chat-connect-attempts-per-ip", "0",
        "--chat-handshakes-per-ip-per-minute", "0", "--ingest-rate-per-ip-per-minute", "0",
        "--max-connections-per-ip", "0",
    ]  # fmt: skip


def node_app_command(port: int, data_dir: str) -> list[str]:
    return [
        "node",
        str(NODE_APP),
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--jwt-secret",
        SECRET,
    ]


def token(sub: str, role: str = "user") -> str:
    """A JWT both servers accept (HS256 with :data:`SECRET`)."""
    from web.platform.auth import Authenticator

    return Authenticator(SECRET).issue(sub, role=role, ttl_seconds=3600)
