"""``/suppression``: the global do-not-send list (viewer reads, marketer writes).

Removal is split (:func:`owner_only`): a marketer may remove the entries people added by
hand (reason "manual"); an entry that protects the server's reputation or a person's
rights (a bounce, a complaint, an unsubscribe, the hash of an erased person) is removed
by an owner only.

Calls :mod:`courriel.marketing.suppression`, as ``/api/v1/suppression`` does: adding is
idempotent (an entry that exists keeps its first reason), entries added here have the
reason "manual". Pages of :data:`PAGE` entries in id order, by cursor (``?after=``).

The search answers "would mail to this address be blocked, and why": an address is
blocked by its own entry, its hash (an erased person) or a domain entry for its domain or
a parent domain (the same test the senders use, ``is_suppressed``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.suppression import (
    SUPPRESSION_KINDS,
    Suppression,
    SuppressionKind,
    get_suppression,
    is_suppressed,
    list_suppressions,
    normalise_value,
    suppress,
    unsuppress,
)
from courriel.web.app import Services
from courriel.web.dashboard.access import PageForbidden, require_session
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, notice

__all__ = ["PAGE", "ROUTES", "owner_only"]

PAGE = 100
_NOTICES = {
    "added": "Suppressed: no marketing mail goes to it.",
    "removed": "Removed from the suppression list: marketing mail may go to it again.",
}


def owner_only(entry: Suppression) -> bool:
    """May only an owner remove ``entry``? Everything but a hand-made address/domain entry."""
    return entry.kind == "hash" or entry.reason != "manual"


def _kind(value: str) -> SuppressionKind:
    for kind in SUPPRESSION_KINDS:
        if kind == value:
            return kind
    raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}", field="kind")


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 19 else 0


async def _search(services: Services, query: str) -> dict[str, Any]:
    """The answer to the search box: is mail to the address ``query`` blocked?"""
    if not query:
        return {}
    try:
        async with services.db.read() as conn:
            blocked = await is_suppressed(conn, query)
    except InvalidInput as exc:
        return {"search_error": str(exc)}
    return {"blocked": blocked}


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    params = request.query_params
    kind = params.get("kind", "")
    kind = kind if kind in SUPPRESSION_KINDS else ""
    after = _int(params.get("after", ""))
    query = params.get("q", "").strip()[:320]
    async with services.db.read() as conn:
        entries = await list_suppressions(
            conn, kind=_kind(kind) if kind else None, after_id=after, limit=PAGE
        )
    for key in ("error", "done", "value"):
        context.setdefault(key, "")
    context.setdefault("add_kind", "address")
    return page(
        request,
        "suppression/list.html",
        status=status,
        active="suppression",
        title="Suppression",
        entries=entries,
        kind=kind,
        kinds=SUPPRESSION_KINDS,
        after=after,
        next_after=entries[-1].id if len(entries) == PAGE else 0,
        q=query,
        search=await _search(services, query),
        owner_only=owner_only,
        **context,
    )


@get("/suppression", **guarded("marketing"))
async def suppression_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """A page of entries (of one kind with ``?kind=``), the search, the add form."""
    return await _list_page(request, services, done=notice(request, _NOTICES))


@post("/suppression", **guarded("marketing"))
async def add_entry(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Suppress an address or a domain (idempotent, reason "manual")."""
    kind_text = field(data, "kind", limit=16)
    value = field(data, "value", limit=320)
    try:
        if kind_text not in ("address", "domain"):
            raise InvalidInput("choose an address or a domain", field="kind")
        normalise_value(kind_text, value)
        async with services.db.write() as conn:
            await suppress(
                conn, kind=_kind(kind_text), value=value, reason="manual", now=services.clock()
            )
    except InvalidInput as exc:
        return await _list_page(
            request, services, status=422, error=str(exc), value=value, add_kind=kind_text
        )
    return Redirect(path="/suppression?done=added", status_code=303)


@post("/suppression/remove", **guarded("marketing"))
async def remove_entry(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Remove one entry (mail to it may be sent again); protective ones need an owner."""
    value = field(data, "value", limit=320)
    owner = require_session(request).admin.at_least("owner")
    try:
        kind = _kind(field(data, "kind", limit=16))
        async with services.db.write() as conn:
            entry = await get_suppression(conn, kind=kind, value=value)
            if entry is None:
                raise NotFound(f"{value} is not on the suppression list.")
            if owner_only(entry) and not owner:
                raise PageForbidden(
                    detail=f"only an owner can remove a {entry.kind} entry "
                    f"with the reason {entry.reason!r}"
                )
            await unsuppress(conn, kind=kind, value=value)
    except InvalidInput as exc:
        return await _list_page(request, services, status=422, error=str(exc))
    except NotFound as exc:
        return await _list_page(request, services, status=404, error=str(exc))
    return Redirect(path="/suppression?done=removed", status_code=303)


ROUTES = [suppression_page, add_entry, remove_entry]
