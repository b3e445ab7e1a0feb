"""The chat's REST routes: create and list chats, and page through a chat's history."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from quart import Blueprint, Response, request
from quart_schema import (
    document_querystring,
    document_request,
    document_response,
    security_scheme,
)

from actors.chat import db
from actors.chat.model import NOT_FOUND, User
from web.apps.chat.schemas import (
    INVALID,
    NOT_AUTHENTICATED,
    ChatCreated,
    ChatList,
    CreateChatRequest,
    HistoryQuery,
    MessagePage,
)
from web.platform.http import ApiError, Failure, caller, decode_json, json_response, read_body
from web.platform.openapi import BEARER

if TYPE_CHECKING:
    from web.apps.chat import ChatApp


def blueprint(app: ChatApp) -> Blueprint:
    bp = Blueprint("chat", __name__)

    @bp.post("/api/chats")
    @security_scheme(BEARER)
    @document_request(CreateChatRequest)
    @document_response(ChatCreated, 201)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    @document_response(Failure, 413)
    async def create_chat() -> Response:
        """Create a chat; the caller is a participant.

        400: invalid JSON or fields (an empty ``name``); 401: "User not authenticated"; 413: body
        over ``chat_max_body_bytes``.
        """
        user = _caller(app)
        limit = app.settings.chat_max_body_bytes
        body = await read_body(limit, f"Request body too large: at most {limit} bytes")
        spec = decode_json(body, CreateChatRequest)
        if not spec.name.strip():
            raise ApiError(400, INVALID, error="name is empty")
        chat = await app.store.write(
            db.create_chat(
                str(uuid.uuid4()),
                spec.name.strip(),
                spec.description,
                user.user_id,
                spec.participants,
                app.clock.now(),
            )
        )
        return json_response(201, ChatCreated(True, "Chat created successfully", chat.summary()))

    @bp.get("/api/chats")
    @security_scheme(BEARER)
    @document_response(ChatList, 200)
    @document_response(Failure, 401)
    async def list_chats() -> Response:
        """The caller's chats, the most recently active first.

        401: "User not authenticated".
        """
        user = _caller(app)
        records = await app.store.read(db.chats_of(user.user_id))
        return json_response(200, ChatList(True, "", [c.summary() for c in records]))

    @bp.get("/api/chats/<chatId>/messages")
    @security_scheme(BEARER)
    @document_querystring(HistoryQuery)
    @document_response(MessagePage, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    @document_response(Failure, 404)
    async def messages(chatId: str) -> Response:
        """A page of a chat's messages, newest first (participants and admins).

        400: ``limit`` not an integer from 1 to ``chat_history_page_max``, or ``before`` not a
        message of this chat; 401: "User not authenticated"; 404: "Chat not found or access
        denied" (also for a chat that does not exist).
        """
        user = _caller(app)
        chat = await app.store.read(db.load_chat(chatId))
        if chat is None or not chat.allows(user):
            raise ApiError(404, NOT_FOUND)
        limit = _limit(request.args.get("limit", "50"), app.settings.chat_history_page_max)
        before = request.args.get("before") or None
        page = await app.store.read(db.history(chatId, before, limit))
        if page is None:
            raise ApiError(400, INVALID, error="before is not a message of this chat")
        found, more = page
        wires = [m.wire() for m in found]
        next_before = wires[-1].id if more and wires else None
        return json_response(200, MessagePage(True, "", wires, more, next_before))

    return bp


def _caller(app: ChatApp) -> User:
    """The caller, from ``Authorization: Bearer``; any refusal is 401 "User not authenticated"."""
    try:
        ident = caller(app.runtime.authenticator)
    except ApiError:
        raise ApiError(401, NOT_AUTHENTICATED) from None
    assert ident is not None
    return User(ident.user_id, ident.name, ident.is_admin)


def _limit(raw: str, cap: int) -> int:
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, INVALID, error="limit must be an integer") from None
    if not 1 <= limit <= cap:
        raise ApiError(400, INVALID, error=f"limit must be between 1 and {cap}")
    return limit
