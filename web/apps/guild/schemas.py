"""The guild monitor's shapes at its doors: the ingest body and answer, subscription acks and
the ``error`` event. (Live events and analytics updates are the actors' own, in
:mod:`actors.guild.model` and :mod:`actors.guild.analytics`.)"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from actors.guild.model import EventBatch, EventIn
from web.platform.openapi import REF


class IngestAnswer(msgspec.Struct, kw_only=True, rename="camel"):
    """The events were committed (they are broadcast next); ``duplicates`` = ids already
    stored, acknowledged but not stored again."""

    success: bool
    guild_id: str
    accepted: int
    stored: int
    duplicates: int


class Subscribed(msgspec.Struct, kw_only=True, rename="camel"):
    """The ack of ``subscribe:*`` and ``unsubscribe:*``."""

    success: bool
    guild_id: str


class ErrorEvent(msgspec.Struct):
    """``error``: a refused subscription, or a refused ``guild:event`` without an ack."""

    message: str


def _batch_schema() -> dict[str, Any]:
    """``{"events": [...]}`` as JSON Schema (its events refer to the single event's schemas)."""
    _, components = msgspec.json.schema_components([EventBatch], ref_template=REF)
    schema: dict[str, Any] = components[EventBatch.__name__]
    return schema


# For the OpenAPI document only (the route decodes the JSON, then ``parse_events`` checks it).
# msgspec cannot put tagged and untagged objects in one union, so the third shape is written
# out as the schema of :class:`EventBatch` on a member that takes any JSON.
IngestBody = Annotated[
    EventIn
    | list[EventIn]
    | Annotated[msgspec.Raw, msgspec.Meta(extra_json_schema=_batch_schema())],
    msgspec.Meta(
        title="GuildEvents",
        description="One event, an array of events, or {events: [...]} (all or nothing).",
    ),
]
