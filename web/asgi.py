"""The app for any ASGI server (trio worker): ``hypercorn --worker-class trio web.asgi:app``.

Settings come from the environment (``SWITCHBOARD_*``). All WebSocket traffic then takes the
ASGI route (slower than the native path of ``switchboard serve``, same behaviour).
"""

from __future__ import annotations

from web import apps
from web.platform.app import create_app
from web.platform.settings import from_sources

app = create_app(from_sources(), apps.install)
