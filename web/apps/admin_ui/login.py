"""Signing in to the Admin UI: the admin namespace's connect middleware.

A client proves it is an operator in one of three ways, tried in this order:

1. an ``admin``-role JWT, as on every other namespace (``auth.token``, ``?token=`` or
   ``Authorization: Bearer``); any other role is refused;
2. the session id a previous sign-in handed out (``auth.sessionId``, which the UI keeps and
   sends when it reloads): a token signed for this purpose only, valid
   ``admin_ui_session_seconds``, on every node of a cluster (no store behind it);
3. the UI's sign-in form (``auth.username``/``auth.password``): the configured user name and the
   password its bcrypt hash was made from, or, with any user name, an admin JWT pasted as the
   password. Form attempts are limited per client address; the hash is checked in a worker
   thread, one at a time, so sign-in attempts never hold up the event loop.

A form sign-in gets a ``session`` event with a new session id right after it connects. A
refusal says ``invalid credentials`` (the message the UI recognises and shows on its form),
"Forbidden: the admin role is required" for a valid token of another role, or a token's own
error.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import bcrypt
import trio

from actors.clock import Clock
from actors.identity import Identity
from actors.ratelimit import SlidingWindowLimiter
from actors.sockets.session import Session
from web.platform.auth import Authenticator, TokenError, token_of
from web.sockets.namespace import ConnectRefused

SESSION_PURPOSE = "admin-ui-session"
INVALID = "invalid credentials"
FORBIDDEN = "Forbidden: the admin role is required"
TOO_MANY = "Too many sign-in attempts. Please try again later."
BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; longer passwords cannot match


@dataclass(frozen=True, slots=True)
class SignedIn:
    """``Session.state`` of an admin socket: the session id to hand out, if it used the form."""

    new_session_id: str | None = None


class AdminLogin:
    """The connect middleware of the admin namespace (see the module summary)."""

    def __init__(
        self,
        authenticator: Authenticator,
        clock: Clock,
        limiter: SlidingWindowLimiter,
        *,
        username: str,
        password_hash: str,
        session_seconds: int,
    ) -> None:
        self.authenticator = authenticator
        self.clock = clock
        self.limiter = limiter
        self.username = username
        self.password_hash = password_hash.encode()
        self.session_seconds = session_seconds
        self.hashing = trio.CapacityLimiter(1)

    async def __call__(self, session: Session) -> None:
        auth = session.auth if isinstance(session.auth, dict) else {}
        token = token_of(session)
        if token is not None:
            session.identity = self._admin(token)
        elif isinstance(auth.get("sessionId"), str) and auth["sessionId"]:
            session.identity = self._resumed(auth["sessionId"])
        else:
            session.identity = await self._form(session, auth.get("username"), auth.get("password"))
            session.state = SignedIn(self._new_session(session.identity))
            return
        session.state = SignedIn()

    def _admin(self, token: str) -> Identity:
        try:
            identity = self.authenticator.verify(token)
        except TokenError as err:
            raise ConnectRefused(str(err)) from None
        if not identity.is_admin:
            raise ConnectRefused(FORBIDDEN)
        return identity

    def _resumed(self, session_id: str) -> Identity:
        try:
            user, expires_at = self.authenticator.verify_scoped(SESSION_PURPOSE, session_id)
        except TokenError:
            raise ConnectRefused(INVALID) from None
        return Identity(user, user, "admin", expires_at=expires_at)

    async def _form(self, session: Session, username: object, password: object) -> Identity:
        if not isinstance(username, str) or not isinstance(password, str) or not password:
            raise ConnectRefused(INVALID)
        address = session.handshake.remote_addr if session.handshake is not None else ""
        if not self.limiter.allow(address):
            raise ConnectRefused(TOO_MANY)
        if self.username and hmac.compare_digest(username.encode(), self.username.encode()):
            if await self._password_matches(password):
                return Identity(self.username, self.username, "admin")
        try:  # an admin JWT pasted into the form's password field
            identity = self.authenticator.verify(password)
        except TokenError:
            raise ConnectRefused(INVALID) from None
        if not identity.is_admin:
            raise ConnectRefused(FORBIDDEN)
        return identity

    async def _password_matches(self, password: str) -> bool:
        secret = password.encode()
        if len(secret) > BCRYPT_MAX_PASSWORD_BYTES:
            return False
        return await trio.to_thread.run_sync(
            bcrypt.checkpw, secret, self.password_hash, limiter=self.hashing
        )

    def _new_session(self, identity: Identity) -> str:
        ttl = self.session_seconds
        if identity.expires_at is not None:  # never outlive the token it came from
            ttl = max(1, min(ttl, int(identity.expires_at - self.clock.now())))
        return self.authenticator.issue_scoped(
            SESSION_PURPOSE, identity.user_id, ttl_seconds=ttl, now=self.clock.now()
        )
