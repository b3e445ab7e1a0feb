"""Structured logs: one JSON object per line (or text for people), a connection or request id on
every line, and no secrets, ever.

The id comes from a context variable set by the task serving a connection or request (trio tasks
inherit the context they were started in). Redaction runs on the final line, whatever put the
secret there (a message, an argument, an exception): JWTs, ``token=`` query parameters and
token-named JSON fields are replaced.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from typing import Any

import msgspec

from web.sockets.log_context import connection_id

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_QUERY_TOKEN = re.compile(r"((?:^|[?&\s])(?:token|access_token|recoveryToken)=)[^&\s\"']+", re.I)
_JSON_TOKEN = re.compile(
    r"""(["']?(?:token|recoveryToken|access_token|authorization)["']?\s*[:=]\s*["'])[^"']+""",
    re.I,
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)


def redact(text: str) -> str:
    text = _JWT.sub("[redacted]", text)
    text = _QUERY_TOKEN.sub(r"\1[redacted]", text)
    text = _JSON_TOKEN.sub(r"\1[redacted]", text)
    return _BEARER.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "conn": connection_id.get(),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return redact(msgspec.json.encode(entry).decode())


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(conn)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.conn = connection_id.get()
        return redact(super().format(record))


def configure(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Route every logger (ours, Hypercorn's, Quart's) through one redacting handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("hypercorn.error", "hypercorn.access", "quart.app", "quart.serving"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
