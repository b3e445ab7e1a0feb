"""Who a client is, once its token has been checked (the front door checks it; actors trust it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "user", "bot"]
ROLES: tuple[Role, ...] = ("admin", "user", "bot")


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    name: str
    role: Role = "user"
    guilds: frozenset[str] = frozenset()
    expires_at: float | None = None  # wall-clock epoch seconds (the token's exp)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
