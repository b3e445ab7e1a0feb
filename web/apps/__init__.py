"""The applications Switchboard serves, and what each is handed: the composition root.

Every application is a package of its own that imports no other application. This module is
the one place that knows them all: it builds each with the platform's
:class:`~web.platform.runtime.Runtime` and, where one reads what another makes, hands it over
explicitly (the visitor analytics read the event log the ingest API appends to).
"""

from __future__ import annotations

from actors.eventlog.log import EventLog
from web.apps.admin_ui import AdminUI
from web.apps.analytics import Analytics
from web.apps.chat import ChatApp
from web.apps.dashboard import Dashboard
from web.apps.demo import DemoTraffic
from web.apps.guild import GuildMonitor
from web.apps.visitors import VisitorAnalytics
from web.platform.runtime import Runtime


def install(runtime: Runtime) -> None:
    """Install the whole product on ``runtime``."""
    runtime.namespace("/")  # the default namespace, JWT-protected (analytics:* and guilds)
    log = EventLog(runtime.store)
    visitors = VisitorAnalytics(runtime, log)
    Analytics(runtime, log, followers=[visitors], current_stats=visitors)
    GuildMonitor(runtime)
    ChatApp(runtime)
    Dashboard(runtime)
    if runtime.settings.demo:
        DemoTraffic(runtime)
    if runtime.settings.admin_ui:
        AdminUI(runtime)
