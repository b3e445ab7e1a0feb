"""The Origin policy, one function for polling and both WebSocket paths.

Allowed: no Origin header (not a browser: python-socketio, Node, curl), the same origin as the
Host the client addressed, and any origin listed in ``cors_origins`` (``*`` allows all). Refused:
everything else, including the literal ``null`` origin (sandboxed frames, file: pages) unless
``null`` is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit


def origin_policy(allowed: Sequence[str]) -> Callable[[str | None, str | None], bool]:
    allow_all = "*" in allowed
    listed = {o.rstrip("/").lower() for o in allowed}

    def origin_allowed(origin: str | None, host: str | None) -> bool:
        if origin is None or allow_all:
            return True
        origin = origin.strip().lower()
        if origin in listed:
            return True
        if origin == "null" or not host:
            return False
        return urlsplit(origin).netloc == host.lower()

    return origin_allowed
