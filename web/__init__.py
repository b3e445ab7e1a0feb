"""The front door: same-port router, native WebSocket path, Quart-Trio app, namespace tables, CLI.

``web.create_app(settings, namespaces)`` builds the app (imported lazily, so that importing a
submodule such as ``web.settings`` does not load Quart).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from web.app import create_app

        return create_app
    raise AttributeError(name)
