"""The kernel's view of a test's TCP connection, from the server's end.

Servers under test run on this machine, so ``/proc/net/tcp`` (and ``tcp6``) list their sockets:
whether the server still holds a connection open, and whether it has read what we sent, are
black-box facts for any server implementation, without guessing with a sleep.
"""

from __future__ import annotations

from dataclasses import dataclass

ESTABLISHED = "01"


@dataclass(frozen=True)
class ServerEnd:
    state: str  # the kernel's TCP state, hex ("01" established)
    unread_bytes: int  # the receive queue: bytes the server process has not read yet


def server_end(server_port: int, client_port: int) -> ServerEnd | None:
    """The server's socket for our connection from ``client_port``, or None once it is gone."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return ServerEnd(fields[3], int(fields[4].split(":")[1], 16))
    return None
