"""The connection (or request) a log line is about, set by the task serving it.

trio tasks inherit the context they were started in, so every line logged while serving one
connection carries its Engine.IO sid (or a request number); the log formatters read it.
"""

from __future__ import annotations

import contextvars

connection_id: contextvars.ContextVar[str] = contextvars.ContextVar("connection_id", default="-")
