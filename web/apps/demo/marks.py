"""What marks the demo's data, so that ``switchboard reset-demo`` deletes exactly that: session
and user ids start with ``demo-``, events carry ``demo: true``, the chat is created by
``demo-host``, the guild is ``demo-guild``."""

from __future__ import annotations

DEMO_PREFIX = "demo-"
DEMO_GUILD = "demo-guild"
DEMO_BOT = "demo-bot"
DEMO_CHAT_NAME = "Demo room"
DEMO_CHAT_HOST = "demo-host"
