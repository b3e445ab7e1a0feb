"""JWT identity: issuing tokens, verifying them, and the connect middleware that uses them.

Algorithms are pinned (HS256 with a secret), ``exp`` is required, ``iss``/``aud`` are checked when
configured. A token is taken from the Socket.IO ``auth.token``, then the ``token`` query
parameter, then ``Authorization: Bearer``. Refusals say what was wrong, never more.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt

from actors.identity import ROLES, Identity
from actors.sockets.session import Session
from web.sockets.namespace import ConnectRefused, Middleware

SECRET_FILE = "jwt-secret"


class TokenError(Exception):
    """A token that does not prove an identity; ``str()`` is safe to show the client."""


def load_or_create_secret(data_dir: Path, configured: str = "") -> str:
    """The configured secret, else the one kept in the data folder (created on first use)."""
    if configured:
        return configured
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret


class Authenticator:
    algorithm = "HS256"

    def __init__(self, secret: str, *, issuer: str = "", audience: str = "") -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience

    def issue(
        self,
        sub: str,
        *,
        name: str | None = None,
        role: str = "user",
        guilds: Iterable[str] = (),
        ttl_seconds: int = 86400,
        now: float | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "name": name or sub,
            "role": role,
            "guilds": list(guilds),
            "iat": issued,
            "exp": issued + ttl_seconds,
        }
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._secret, algorithm=self.algorithm)

    def verify(self, token: str) -> Identity:
        options: dict[str, Any] = {"require": ["exp", "sub"]}
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                issuer=self.issuer or None,
                audience=self.audience or None,
                options={**options, "verify_aud": bool(self.audience)},  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("Authentication failed: token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("Authentication failed: token not yet valid") from None
        except jwt.MissingRequiredClaimError as err:
            raise TokenError(f"Authentication failed: token has no '{err.claim}' claim") from None
        except jwt.InvalidIssuerError:
            raise TokenError("Authentication failed: wrong token issuer") from None
        except jwt.InvalidAudienceError:
            raise TokenError("Authentication failed: wrong token audience") from None
        except jwt.InvalidTokenError:
            raise TokenError("Authentication failed: invalid token") from None
        role = claims.get("role", "user")
        guilds = claims.get("guilds", [])
        if role not in ROLES or not isinstance(guilds, list):
            raise TokenError("Authentication failed: invalid token claims")
        return Identity(
            user_id=str(claims["sub"]),
            name=str(claims.get("name") or claims["sub"]),
            role=role,
            guilds=frozenset(str(g) for g in guilds),
            expires_at=float(claims["exp"]),
        )

    # --- tokens for one purpose only -----------------------------------------------------------
    def issue_scoped(self, purpose: str, sub: str, *, ttl_seconds: int, now: float) -> str:
        """A token that proves ``sub`` for ``purpose`` alone (e.g. an Admin UI sign-in kept
        across reloads): signed with a key derived from the secret and the purpose, so it is
        never accepted as an identity token, nor for another purpose."""
        issued = int(now)
        claims = {"sub": sub, "purpose": purpose, "iat": issued, "exp": issued + ttl_seconds}
        return jwt.encode(claims, self._key_for(purpose), algorithm=self.algorithm)

    def verify_scoped(self, purpose: str, token: str) -> tuple[str, float]:
        """The ``sub`` and expiry of a token from :meth:`issue_scoped` for ``purpose``."""
        try:
            claims = jwt.decode(
                token,
                self._key_for(purpose),
                algorithms=[self.algorithm],
                options={"require": ["exp", "sub"]},
            )
        except jwt.InvalidTokenError:
            raise TokenError("Authentication failed: invalid session") from None
        if claims.get("purpose") != purpose:
            raise TokenError("Authentication failed: invalid session")
        return str(claims["sub"]), float(claims["exp"])

    def _key_for(self, purpose: str) -> bytes:
        return hmac.new(self._secret.encode(), purpose.encode(), hashlib.sha256).digest()


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def token_of(session: Session) -> str | None:
    """The token a connecting client presented: auth.token, ?token=, or Authorization: Bearer."""
    token = session.auth.get("token") if isinstance(session.auth, dict) else None
    if isinstance(token, str) and token:
        return token
    hs = session.handshake
    if hs is None:
        return None
    query_token = hs.query.get("token")
    if query_token:
        return str(query_token)
    return bearer(hs.headers)


def jwt_middleware(authenticator: Authenticator) -> Middleware:
    """Connect middleware: refuse without a valid token, else set ``session.identity``."""

    async def require_token(session: Session) -> None:
        token = token_of(session)
        if token is None:
            raise ConnectRefused("Authentication failed: no token provided")
        try:
            session.identity = authenticator.verify(token)
        except TokenError as err:
            raise ConnectRefused(str(err)) from None

    return require_token
