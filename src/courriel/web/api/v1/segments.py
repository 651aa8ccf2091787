"""``/api/v1/segments``: saved segments, their size and their members (docs/segments.md).

Membership is computed when asked (segments are dynamic), at the time of the services'
clock. Members are contact ids in ascending order, paged by cursor like every list.
A definition that does not parse is a 422 whose ``field`` is the path inside the body
(``definition/conditions/2/within_days``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete as delete_route
from litestar import get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput
from courriel.marketing.segments import service
from courriel.marketing.segments.parse import parse_segment, to_json
from courriel.marketing.segments.tree import Node
from courriel.web.api.v1.common import After, Limit, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "DefinitionIn", "SegmentIn", "SegmentPatch"]

_TAG = "segments"


class SegmentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A segment to save."""

    name: str
    definition: dict[str, Any]  # the condition tree, see docs/segments.md


class SegmentPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A rename and/or a new definition (absent: unchanged)."""

    name: str | None = None
    definition: dict[str, Any] | None = None


class DefinitionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A definition to count without saving it."""

    definition: dict[str, Any]


def _to_dict(segment: service.Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "definition": to_json(segment.definition),
        "created_at": segment.created_at.isoformat(),
        "updated_at": segment.updated_at.isoformat(),
    }


def _parse(definition: dict[str, Any]) -> Node:
    try:
        return parse_segment(definition)
    except InvalidInput as exc:
        where = f"definition/{exc.field}" if exc.field else "definition"
        raise InvalidInput(str(exc), field=where) from None


@get(
    "/api/v1/segments",
    summary="Every saved segment, by name (one page: segments are few)",
    tags=[_TAG],
    **requires("segments:read"),
)
async def index(services: Services) -> dict[str, Any]:
    """Every saved segment, by name (one page: segments are few)."""
    return {"data": [_to_dict(s) for s in await service.list(services.db)], "next": None}


@post(
    "/api/v1/segments",
    summary="Save a segment (409 when the name is taken)",
    tags=[_TAG],
    **requires("segments:write"),
)
async def create(services: Services, data: JSONBody[SegmentIn]) -> dict[str, Any]:
    """Save a segment (409 when the name is taken)."""
    made = await service.create(
        services.db, name=data.name, definition=data.definition, now=services.clock()
    )
    return _to_dict(made)


@get(
    "/api/v1/segments/{segment_id:int}",
    summary="One saved segment",
    tags=[_TAG],
    **requires("segments:read"),
)
async def read(services: Services, segment_id: FromPath[int]) -> dict[str, Any]:
    """One saved segment."""
    return _to_dict(await service.get(services.db, segment_id))


@patch(
    "/api/v1/segments/{segment_id:int}",
    summary="Rename a segment and/or replace its definition",
    tags=[_TAG],
    **requires("segments:write"),
)
async def change(
    services: Services, segment_id: FromPath[int], data: JSONBody[SegmentPatch]
) -> dict[str, Any]:
    """Rename a segment and/or replace its definition."""
    updated = await service.update(
        services.db,
        segment_id,
        name=data.name,
        definition=data.definition,
        now=services.clock(),
    )
    return _to_dict(updated)


@delete_route(
    "/api/v1/segments/{segment_id:int}",
    summary="Delete a saved segment (contacts are untouched)",
    tags=[_TAG],
    **requires("segments:write"),
)
async def remove(services: Services, segment_id: FromPath[int]) -> None:
    """Delete a saved segment (contacts are untouched)."""
    await service.delete(services.db, segment_id)


@post(
    "/api/v1/segments/count",
    summary="How many contacts a definition selects now (nothing is saved)",
    tags=[_TAG],
    status_code=200,
    **requires("segments:read"),
)
async def count_definition(services: Services, data: JSONBody[DefinitionIn]) -> dict[str, int]:
    """How many contacts a definition selects now (nothing is saved)."""
    node = _parse(data.definition)
    return {"count": await service.count(services.db, node, now=services.clock())}


@get(
    "/api/v1/segments/{segment_id:int}/count",
    summary="How many contacts a saved segment selects now",
    tags=[_TAG],
    **requires("segments:read"),
)
async def count_saved(services: Services, segment_id: FromPath[int]) -> dict[str, int]:
    """How many contacts a saved segment selects now."""
    return {"count": await service.count(services.db, segment_id, now=services.clock())}


@get(
    "/api/v1/segments/{segment_id:int}/members",
    summary="Contact ids of a saved segment's members, ascending, paged by cursor",
    tags=[_TAG],
    **requires("segments:read"),
)
async def members(
    services: Services, segment_id: FromPath[int], after: After = 0, limit: Limit = 100
) -> dict[str, Any]:
    """Contact ids of a saved segment's members, ascending, paged by cursor."""
    ids = await service.members(
        services.db, segment_id, after_id=after, limit=limit, now=services.clock()
    )
    return page(ids, limit=limit, key=lambda i: i, render=lambda i: i)


ROUTES: list[ControllerRouterHandler] = [
    index,
    create,
    read,
    change,
    remove,
    count_definition,
    count_saved,
    members,
]
