"""``/api/v1/suppression``: the global do-not-send list (address, domain or address hash).

Adding is idempotent (the entry that exists is kept, with its first reason). Removing a
``hash`` entry with reason "forgotten" is allowed, because an operator may have to undo a
mistaken erasure; the API does not hide it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.suppression import (
    SUPPRESSION_KINDS,
    SuppressionKind,
    list_suppressions,
    normalise_value,
    suppress,
    suppression_to_dict,
    unsuppress,
)
from courriel.web.api.v1.common import After, Limit, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "SuppressionIn"]

_TAG = "suppression"


class SuppressionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """An entry to add."""

    kind: Literal["address", "domain", "hash"]
    value: str  # an address, a domain, or the SHA-256 hex of a normalised address
    reason: str = "manual"  # manual | bounce | complaint | unsubscribe | …
    detail: str | None = None


@get(
    "/api/v1/suppression",
    summary="Suppression entries in id order, paged by cursor",
    tags=[_TAG],
    **requires("suppression:read"),
)
async def index(
    services: Services,
    after: After = 0,
    limit: Limit = 100,
    kind: Annotated[
        Literal["address", "domain", "hash"] | None,
        QueryParameter(description="Only entries of this kind."),
    ] = None,
) -> dict[str, Any]:
    """Suppression entries in id order, paged by cursor."""
    async with services.db.read() as conn:
        found = await list_suppressions(conn, kind=kind, after_id=after, limit=limit)
    return page(found, limit=limit, key=lambda e: e.id, render=suppression_to_dict)


@post(
    "/api/v1/suppression",
    summary="Suppress an address, a domain or an address hash (idempotent)",
    tags=[_TAG],
    **requires("suppression:write"),
)
async def add(services: Services, data: JSONBody[SuppressionIn]) -> Response[dict[str, Any]]:
    """Suppress an address, a domain or an address hash (idempotent)."""
    stored = normalise_value(data.kind, data.value)
    async with services.db.write() as conn:
        await suppress(
            conn,
            kind=data.kind,
            value=data.value,
            reason=data.reason,
            detail=data.detail,
            now=services.clock(),
        )
    return Response({"kind": data.kind, "value": stored}, status_code=201)


def _kind(value: str) -> SuppressionKind:
    for kind in SUPPRESSION_KINDS:
        if kind == value:
            return kind
    raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}", field="kind")


@delete(
    "/api/v1/suppression/{kind:str}/{value:str}",
    summary="Remove one entry (404 when there is none)",
    tags=[_TAG],
    **requires("suppression:write"),
)
async def remove(services: Services, kind: FromPath[str], value: FromPath[str]) -> None:
    """Remove one entry (404 when there is none)."""
    async with services.db.write() as conn:
        if not await unsuppress(conn, kind=_kind(kind), value=value):
            raise NotFound("no such suppression entry")


ROUTES: list[ControllerRouterHandler] = [index, add, remove]
