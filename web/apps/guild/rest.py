"""The guild monitor's REST door: bots post events with ``POST /api/guilds/<guildId>/events``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from quart import Blueprint, Response
from quart_schema import document_request, document_response, security_scheme

from actors.guild.model import GUILD_ID_RULE, valid_guild_id
from web.apps.guild.schemas import IngestAnswer, IngestBody
from web.platform.http import ApiError, Failure, json_response, read_body, required_caller
from web.platform.openapi import BEARER

if TYPE_CHECKING:
    from web.apps.guild import GuildMonitor


def blueprint(monitor: GuildMonitor) -> Blueprint:
    bp = Blueprint("guild", __name__)

    @bp.post("/api/guilds/<guildId>/events")
    @security_scheme(BEARER)
    @document_request(IngestBody)
    @document_response(IngestAnswer, 200)
    @document_response(Failure, 400)
    @document_response(Failure, 401)
    @document_response(Failure, 403)
    @document_response(Failure, 413)
    @document_response(Failure, 429)
    @document_response(Failure, 503)
    async def post_events(guildId: str) -> Response:
        """Report guild events as a bot (role ``bot`` for its guilds, or ``admin``).

        The body is one event, an array of events or ``{"events": [...]}``, at most
        ``guild_max_batch_events``; a batch is all or nothing. The answer comes once the events
        are committed; then they are broadcast to the guild's dashboards. 400: invalid JSON,
        guild id or event (the message names the field, e.g. ``$[3].channelId``); 401: token;
        403: role or guild; 413: body over ``guild_max_body_bytes``; 429: over
        ``guild_events_per_bot_per_second`` (per event, with ``Retry-After``); 503: the store
        could not commit.
        """
        identity = required_caller(monitor.runtime.authenticator)
        if not valid_guild_id(guildId):
            raise ApiError(400, f"Invalid guild id: {GUILD_ID_RULE}")
        body = await _read_json(monitor.settings.guild_max_body_bytes)
        return json_response(200, await monitor.ingest(identity, guildId, body))

    return bp


async def _read_json(limit: int) -> object:
    """The body as JSON values (``parse_events`` checks their shape, naming the culprit)."""
    body = await read_body(limit, f"Request body too large: at most {limit} bytes")
    try:
        decoded: object = msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise ApiError(400, f"Invalid JSON: {err}") from None
    return decoded
