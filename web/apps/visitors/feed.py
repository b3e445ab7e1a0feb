"""The raw visitor feed: ``/ws/visitors`` and, with ``visitor_ws_port``, ``/`` on that port.

Both listeners serve the same feed from the same session aggregator: each accepted connection
becomes a :class:`~actors.visitors.feed.Dashboard` whose writer task drains its outbox to the
socket while a reader task answers what the dashboard sends.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeVar
from urllib.parse import parse_qs

import msgspec
import trio
import trio_websocket
from quart import Blueprint, websocket
from quart.wrappers import Websocket

from actors.eventlog.events import iso
from actors.identity import Identity
from actors.visitors import actions
from actors.visitors.aggregator import CloseAll, Join, Leave, RequestDetailed, VisitorAggregator
from actors.visitors.feed import SLOW_CONSUMER, ActionRecorded, Dashboard, FeedError, feed_text
from actors.visitors.model import Filter
from web.apps.visitors.schemas import FilterIn, RequestDetailedIn, TrackActionIn
from web.platform.auth import TokenError, bearer
from web.platform.http import NO_TOKEN, ApiError, Failure
from web.platform.runtime import Runtime

log = logging.getLogger("switchboard.visitors")

FEED_PATH = "/ws/visitors"
PORT_FEED = "visitor_ws_port"
POLICY_VIOLATION = 1008
GOING_AWAY = 1001

M = TypeVar("M", bound=msgspec.Struct)
_encode = msgspec.json.encode


class ClientError(Exception):
    """A dashboard's message that cannot be served; ``str()`` is sent back as ``error``."""


class FeedSocket(Protocol):
    """What the feed needs of a WebSocket (Quart's and trio-websocket's are adapted to it)."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...  # None: the client has gone

    async def close(self, code: int, reason: str) -> None: ...


class QuartSocket:
    def __init__(self, ws: Websocket) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> str | bytes | None:
        received = await self.ws.receive()
        return b"" if received is None else received

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)


class TrioSocket:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send_message(text)

    async def receive(self) -> str | bytes | None:
        try:
            return await self.ws.get_message()
        except trio_websocket.ConnectionClosed:
            return None

    async def close(self, code: int, reason: str) -> None:
        await self.ws.aclose(code, reason)


def error_text(message: str) -> str:
    return feed_text("error", FeedError(message))


class VisitorFeed:
    """Both listeners of the feed, and each dashboard's reader and writer."""

    def __init__(self, runtime: Runtime, aggregator: VisitorAggregator) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.aggregator = aggregator
        self.max_chars = runtime.settings.ingest_max_string_chars
        self.actions_recorded = 0
        self.port_scope = trio.CancelScope()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("visitors_feed", __name__)

        @bp.websocket(FEED_PATH)
        async def feed() -> None:
            """The raw visitor feed: JSON text frames ``{type, data}`` (see the app's docs).

            The token from ``?token=`` or ``Authorization: Bearer``; with ``anonymous_dashboards``
            none is needed, but a token that is given must be valid (else ``error`` and close
            1008). A forbidden ``Origin`` is refused with 403 before the upgrade.
            """
            headers = {k.lower(): v for k, v in websocket.headers.items()}
            if not self.runtime.origin_allowed(headers.get("origin"), websocket.host):
                raise ApiError(403, "Origin not allowed")
            token = websocket.args.get("token") or bearer(headers)
            await websocket.accept()
            ws: Websocket = websocket._get_current_object()  # type: ignore[attr-defined]
            await self.serve_dashboard(QuartSocket(ws), FEED_PATH, token)

        return bp

    # --- life cycle ----------------------------------------------------------------------------
    async def count_actions(self) -> None:
        self.actions_recorded = await self.runtime.store.read(actions.count)

    async def serve_port(
        self,
        handlers: trio.Nursery,
        *,
        task_status: trio.TaskStatus[trio_websocket.WebSocketServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The separate feed listener (until a graceful stop; its dashboards live in the
        server's nursery)."""
        s = self.settings
        with self.port_scope:
            await trio_websocket.serve_websocket(
                self._port_handler,
                s.host,
                s.visitor_ws_port,
                None,
                handler_nursery=handlers,
                max_message_size=max(
                    s.visitor_feed_max_message_bytes, s.max_http_buffer_size_bytes
                ),
                task_status=task_status,
            )

    async def stop(self) -> None:
        """A graceful stop: every dashboard is closed with 1001 (at most 2 s are spent here)."""
        self.port_scope.cancel()  # no new dashboards on the separate port
        with trio.move_on_after(2.0):
            closing: list[Dashboard] = await self.aggregator.ask(
                lambda r: CloseAll(GOING_AWAY, "server shutdown", r)
            )
            for d in closing:
                await d.finished.wait()

    async def _port_handler(self, req: trio_websocket.WebSocketRequest) -> None:
        path, _, query = req.path.partition("?")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
        if path != "/":
            await req.reject(404, body=_encode(Failure(False, "Not found")))
            return
        if not self.runtime.origin_allowed(headers.get("origin"), headers.get("host", "")):
            await req.reject(403, body=_encode(Failure(False, "Origin not allowed")))
            return
        token = (parse_qs(query).get("token") or [""])[0] or bearer(headers)
        try:
            conn = await req.accept()
        except trio_websocket.ConnectionClosed:
            return
        await self.serve_dashboard(TrioSocket(conn), PORT_FEED, token)

    # --- one dashboard -------------------------------------------------------------------------
    def identify(self, token: str | None) -> Identity | None:
        """``anonymous_dashboards`` as everywhere (:func:`web.platform.http.caller`): without a
        token a dashboard is let in (None) when the setting is on; a token that is given must
        be valid, even then (:class:`TokenError` otherwise)."""
        if token is None:
            if self.settings.anonymous_dashboards:
                return None
            raise TokenError(NO_TOKEN)
        return self.runtime.authenticator.verify(token)

    async def serve_dashboard(self, sock: FeedSocket, feed: str, token: str | None) -> None:
        """Run one accepted feed connection until the client or the server ends it."""
        try:
            identity = self.identify(token)
        except TokenError as err:
            await _refuse(sock, str(err))
            return
        dashboard = Dashboard(
            feed,
            self.settings.visitor_feed_max_queued_messages,
            identity.user_id if identity is not None else None,
        )
        await self.aggregator.tell(Join(dashboard))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, sock, dashboard, nursery.cancel_scope)
                if identity is not None and identity.expires_at is not None:
                    nursery.start_soon(self._expire_at, dashboard, identity.expires_at)
                await self._read(sock, dashboard)
                nursery.cancel_scope.cancel()
        finally:
            dashboard.close(GOING_AWAY, "gone")
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                await self.aggregator.tell(Leave(dashboard))

    async def _write(self, sock: FeedSocket, d: Dashboard, scope: trio.CancelScope) -> None:
        try:
            async for text in d.outbox:
                if d.close_reason == SLOW_CONSUMER:  # what is queued no longer matters
                    break
                await sock.send(text)
            d.outbox.close()  # (frees what a slow consumer left queued)
            if d.close_code is not None and d.close_reason != "gone":
                await sock.close(d.close_code, d.close_reason)
        except Exception as err:  # the client went away while we wrote: the reader notices too
            log.debug("visitors: feed write ended: %r", err)
        finally:
            d.finished.set()
        scope.cancel()

    async def _expire_at(self, d: Dashboard, expires_at: float) -> None:
        while (remaining := expires_at - self.clock.now()) > 0:
            await self.clock.sleep(remaining)
        message = "Authentication failed: token expired"
        d.offer(error_text(message))
        d.close(POLICY_VIOLATION, message)

    async def _read(self, sock: FeedSocket, d: Dashboard) -> None:
        while not d.closed:
            received = await sock.receive()
            if received is None:
                return
            try:
                await self._client_message(d, received)
            except ClientError as err:
                d.offer(error_text(str(err)))

    # --- what a dashboard sends ----------------------------------------------------------------
    async def _client_message(self, d: Dashboard, received: str | bytes) -> None:
        message, kind = self._decode(received)
        if kind == "request_detailed_stats":
            await self._request_detailed(d, _convert(message, RequestDetailedIn, kind))
        elif kind == "track_dashboard_action":
            await self._track_action(d, _convert(message, TrackActionIn, kind))
        else:
            shown = kind if len(kind) <= 64 else kind[:64] + "..."
            raise ClientError(
                f"Unknown message type {shown!r}: expected request_detailed_stats or "
                "track_dashboard_action"
            )

    def _decode(self, received: str | bytes) -> tuple[dict[str, object], str]:
        """A JSON object with a string ``type`` (and its type), or :class:`ClientError`."""
        if isinstance(received, bytes):
            raise ClientError("Binary messages are not supported: send JSON text")
        cap = self.settings.visitor_feed_max_message_bytes
        if len(received) > cap:
            raise ClientError(f"Message too large: at most {cap} bytes")
        try:
            message = msgspec.json.decode(received)
        except RecursionError:
            raise ClientError("Invalid JSON: nested too deeply") from None
        except msgspec.DecodeError:
            raise ClientError("Invalid JSON") from None
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str):
            raise ClientError("A message must be a JSON object with a string `type`")
        return message, kind

    async def _request_detailed(self, d: Dashboard, asked: RequestDetailedIn) -> None:
        """``request_detailed_stats``: the aggregator sends ``detailed_stats`` to ``d``."""
        f = asked.filter or FilterIn()
        for name, value in (("country", f.country), ("page", f.page)):
            if value is not None and len(value) > self.max_chars:
                raise ClientError(
                    f"{asked.type}: filter.{name}: longer than {self.max_chars} characters"
                )
        await self.aggregator.tell(RequestDetailed(d, Filter(f.country or None, f.page or None)))

    async def _track_action(self, d: Dashboard, track: TrackActionIn) -> None:
        """``track_dashboard_action``: stored, then ``dashboard_action_recorded``."""
        kind = track.type
        if not 0 < len(track.action) <= self.max_chars:
            raise ClientError(f"{kind}: action: must be 1 to {self.max_chars} characters")
        now = self.clock.now()
        op = actions.record(now, d.feed, d.user, track.action, track.details)
        try:
            action_id = await self.runtime.store.write(op)
        except Exception:
            log.exception("visitors: a dashboard action could not be stored")
            raise ClientError(f"{kind}: the action could not be recorded") from None
        self.actions_recorded += 1
        recorded = ActionRecorded(id=action_id, action=track.action, recorded_at=iso(now))
        d.offer(feed_text("dashboard_action_recorded", recorded))


def _convert(message: dict[str, object], kind: type[M], name: str) -> M:
    try:
        return msgspec.convert(message, kind)
    except msgspec.ValidationError as err:
        raise ClientError(f"{name}: {_problem(err)}") from None


def _problem(err: msgspec.ValidationError) -> str:
    text = str(err)
    if " - at `$." in text:
        problem, _, path = text.partition(" - at `$.")
        return f"{path.rstrip('`')}: {problem}"
    return text


async def _refuse(sock: FeedSocket, message: str) -> None:
    try:
        await sock.send(error_text(message))
        await sock.close(POLICY_VIOLATION, message)
    except Exception as err:  # the client did not wait for the reason
        log.debug("visitors: refusal not delivered: %r", err)
