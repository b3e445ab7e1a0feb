"""Every JWT secret the tests start a server with, and the token factories that sign for them.

Each suite keeps a secret of its own (a token made for one suite's server is refused by any
other's). :class:`Tokens` signs with one secret and the defaults its suite relies on::

    token = Tokens(CHAT_SECRET, ttl=30 * DAY, names=str.capitalize)
    token("eve")                        # user "eve", name "Eve", valid 30 days
    token("root", "admin", ttl=-10)     # an expired admin token
    token.bearer("eve")                 # {"Authorization": "Bearer ..."}

The interop server's secret is short on purpose; PyJWT's key-length warning is silenced here,
where the tokens are made, so that a module-level token needs no ``catch_warnings``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jwt.warnings import InsecureKeyLengthWarning

from web.platform.auth import Authenticator

DAY = 86400

# tests/support/servers/interop_server.py signs with this one (the cluster tests' nodes too)
INTEROP_SECRET = "interop-secret"
# product servers (``switchboard serve --jwt-secret ...``), one secret per suite
ADMIN_UI_SECRET = "admin-ui-test-secret-0123456789abcdef"
ANALYTICS_SECRET = "analytics-test-secret-0123456789abcdef"
AUTH_ATTACKS_SECRET = "hardening-secret-long-enough-for-hs256-0123456789"
BROWSER_SECRET = "browser-test-secret-0123456789abcdef"
CHAT_SECRET = "chat-test-secret-0123456789-abcdefghijklmnop"
DEMO_SECRET = "demo-test-secret-0123456789abcdef"
GUILD_SECRET = "guild-test-secret-0123456789-abcdefghijklmnop"
OPERATIONS_SECRET = "operations-secret-of-a-decent-length"
RETENTION_SECRET = "retention-secret-of-a-decent-length-0123"
SCHEMATHESIS_SECRET = "schemathesis-secret-of-a-decent-length"
TOKEN_EXPIRY_SECRET = "token-expiry-secret-of-enough-length"
VISITORS_SECRET = "visitors-test-secret-0123456789abcdef"
WORKERS_SECRET = "workers-test-secret-0123456789abcdef"


@dataclass(frozen=True)
class Tokens:
    """Tokens signed with ``secret``; ``sub``/``role``/``ttl`` are the suite's defaults and
    ``names`` makes the display name from the subject."""

    secret: str
    sub: str = "user"
    role: str = "user"
    ttl: int = DAY
    names: Callable[[str], str] = str

    @property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.secret)

    def __call__(
        self,
        sub: str | None = None,
        role: str | None = None,
        *,
        name: str | None = None,
        guilds: Iterable[str] = (),
        ttl: int | None = None,
        now: float | None = None,
    ) -> str:
        subject = self.sub if sub is None else sub
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return self.authenticator.issue(
                subject,
                name=name or self.names(subject),
                role=role or self.role,
                guilds=list(guilds),
                ttl_seconds=self.ttl if ttl is None else ttl,
                now=now,
            )

    def bearer(self, sub: str | None = None, role: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(sub, role)}"}

    def expired(self, sub: str = "old") -> str:
        """Signed right, expired an hour ago."""
        return self(sub, ttl=60, now=time.time() - 3600)


def forged(sub: str = "mallory") -> str:
    """A well-formed token signed with a secret no test server has."""
    return Tokens("not-the-secret")(sub)


interop_token = Tokens(INTEROP_SECRET)
