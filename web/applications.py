"""The applications Switchboard serves, in one explicit list.

Each application is a module with ``install(runtime)``: it registers its Socket.IO event tables on
``runtime.namespace(...)``, its REST routes with ``runtime.add_blueprint(...)``, its database schema
with ``runtime.store.add_schema(...)``, and its actors with ``runtime.on_start(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web import analytics, chat, dashboard, guild, visitors

APPLICATIONS: list[Callable[[Any], None]] = [
    analytics.install,
    guild.install,
    chat.install,
    dashboard.install,
    visitors.install,
]
