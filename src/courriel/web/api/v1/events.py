"""``POST /api/v1/events``: server-side events (Klaviyo-style "track").

The caller names the person by address (the contact is created when unknown, without any
consent) or by contact id. ``unique_key`` makes a retry harmless: a second event with the
same key from the API is not stored again (answer 200 with ``duplicate: true``).

Invariants:
- Events from the API carry ``source = "api"``; the API cannot write into another source's
  deduplication space (shop webhooks, the tracker).
- A time without a UTC offset is refused: an event time is never guessed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Response, post
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput
from courriel.marketing.commerce import EventData, append_event
from courriel.web.api.v1.common import aware, email_or_contact
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "EventIn"]

SOURCE = "api"


class EventIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """One event about a person."""

    name: str  # "Placed Order", "Viewed Product", or a custom name
    email: str | None = None
    contact_id: int | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    value: float | None = None  # the money value in major units, if any
    time: datetime | None = None  # RFC 3339 with offset; default: now
    unique_key: str | None = None  # deduplicates retries


@post("/api/v1/events", summary="Record an event", tags=["events"], **requires("events:write"))
async def track(services: Services, data: JSONBody[EventIn]) -> Response[dict[str, Any]]:
    """Record an event; 201 with its id, or 200 ``duplicate`` when the unique key was seen."""
    if not data.name.strip():
        raise InvalidInput("an event needs a name", field="name")
    now = services.clock()
    occurred = aware(data.time, field="time") if data.time is not None else now
    async with services.db.write() as conn:
        contact_id = await email_or_contact(
            conn, email=data.email, contact_id=data.contact_id, source=SOURCE, now=now
        )
        event_id = await append_event(
            conn,
            EventData(
                name=data.name.strip(),
                properties=data.properties,
                occurred_at=occurred,
                value=data.value,
                source=SOURCE,
                unique_key=data.unique_key,
                contact_id=contact_id,
            ),
        )
    if event_id is None:
        body = {"id": None, "contact_id": contact_id, "duplicate": True}
        return Response(body, status_code=200)
    return Response({"id": event_id, "contact_id": contact_id, "duplicate": False}, status_code=201)


ROUTES: list[ControllerRouterHandler] = [track]
