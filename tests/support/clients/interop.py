"""The interop suites' targets: which server (the native WebSocket path, or the ASGI-only server)
and which transports a client uses (WebSocket only, long-polling only, polling upgraded)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    url: str
    transports: list[str]
    final_transport: str

    def node_config(self) -> dict[str, Any]:
        """The same target, as tests/node/interop_client.js takes it."""
        return {
            "url": self.url,
            "transports": self.transports,
            "expectTransport": self.final_transport,
        }


#: (server, transport) pairs every scenario runs with
VARIANTS = [
    ("native", "websocket"),
    ("asgi", "websocket"),
    ("native", "polling"),
    ("native", "upgrade"),
    ("asgi", "upgrade"),
]
#: those the authentication scenarios run with
AUTH_VARIANTS = [("native", "websocket"), ("asgi", "websocket"), ("native", "polling")]
TRANSPORTS = {
    "websocket": (["websocket"], "websocket"),
    "polling": (["polling"], "polling"),
    "upgrade": (["polling", "websocket"], "websocket"),
}


def variant_id(variant: tuple[str, str]) -> str:
    return f"{variant[0]}-{variant[1]}"
