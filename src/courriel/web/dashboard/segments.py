"""Segments pages: the saved segments, the visual builder of a condition tree, its live preview.

Owns the routes under ``/segments`` (NAV key ``segments``, area ``marketing``). The builder
itself is plain JavaScript (``static/segments.js``) that keeps the tree as JSON in the form's
hidden ``definition`` field; these handlers only parse, count, list and save it through
:mod:`courriel.marketing.segments.service` and
:func:`~courriel.marketing.segments.parse.parse_segment`, the functions the REST API calls.

Invariants:
- Counts are computed on demand, one segment at a time (a "Count" button per row, the
  preview while editing), never for every segment when the list loads.
- The preview is a GET (the tree in the ``definition`` query parameter, at most
  :data:`MAX_DEFINITION` characters) so that a viewer, who may not POST in this area, can
  preview too. It answers a fragment: the count and the first :data:`PREVIEW_MEMBERS`
  members (read in one batch, each linked to its profile), or the parser's message and the
  path of the value at fault (status 422).
- The preview and the save read the JSON text through one function,
  :func:`decode_definition`: any text (bad JSON, nesting too deep for the decoder) is a
  422 with a message, never a traceback.
- A bad form (bad JSON, a tree that does not parse, an empty or taken name) re-renders the
  builder with the user's input and the message, status 422 (409 for a taken name): the
  user never loses what they built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.contacts import get_contacts
from courriel.marketing.lists import list_names
from courriel.marketing.segments import service
from courriel.marketing.segments.parse import parse_segment, to_json
from courriel.web.app import Services
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.render import page

__all__ = ["MAX_DEFINITION", "PREVIEW_MEMBERS", "ROUTES", "decode_definition"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

# A preview URL stays under ~8 KB (request-line limits of proxies); the form has no limit
# of its own beyond the parser's (200 conditions, depth 10).
MAX_DEFINITION = 7_500
PREVIEW_MEMBERS = 20
EMPTY_TREE = '{"kind": "all", "conditions": []}'


def _not_found(request: Request[Any, Any, Any], message: str) -> Response[str]:
    return page(request, "error.html", status=404, title="Segment not found", message=message)


def decode_definition(raw: str | None, *, field: str) -> Any:
    """The JSON value of a definition's text, for :func:`parse_segment` or the service.

    Args:
        raw: the text from the query string or the form.
        field: what an error names: ``""`` (the tree's root) for the preview, whose
            fields are paths in the tree; ``"definition"`` for the form.

    Raises:
        InvalidInput: no text (or ``null``), not JSON, or nested too deep to decode.
    """
    if not raw or not raw.strip():
        raise InvalidInput("the segment has no definition", field=field)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", field=field) from None
    except RecursionError:
        # json.loads recurses once per level: ~1,000 levels of [[[…]]] exhaust the stack,
        # far below MAX_DEFINITION. The parser allows depth 10, so say so.
        raise InvalidInput("the definition is nested too deep", field=field) from None
    if value is None:  # update() would read None as "unchanged"
        raise InvalidInput("the segment has no definition", field=field)
    return value


async def _list_choices(services: Services) -> str:
    """The lists a ``list`` condition may name, as JSON for the builder's select."""
    async with services.db.read() as conn:
        lists = await list_names(conn)  # names only: no member is counted
    return json.dumps([{"id": item.id, "name": item.name} for item in lists])


async def _builder(
    request: Request[Any, Any, Any],
    services: Services,
    *,
    segment_id: int | None,
    name: str,
    definition: str,
    status: int = 200,
    error: str = "",
    field: str | None = None,
) -> Response[str]:
    admin = require_session(request).admin
    return page(
        request,
        "segments/builder.html",
        status=status,
        active="segments",
        title=name or "New segment",
        segment_id=segment_id,
        segment_name=name,
        definition=definition,
        lists_json=await _list_choices(services),
        can_write=admin.at_least("marketer"),
        error=error,
        field=field,
    )


@get("/segments", **allow("marketing"))
async def segments_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Every saved segment by name, each with a Count button (nothing is counted on load)."""
    admin = require_session(request).admin
    return page(
        request,
        "segments/list.html",
        active="segments",
        title="Segments",
        segments=await service.list(services.db),
        can_write=admin.at_least("marketer"),
        saved=request.query_params.get("saved", ""),
        deleted=request.query_params.get("deleted", ""),
    )


@get("/segments/{segment_id:int}/count", **allow("marketing"))
async def segment_count(
    request: Request[Any, Any, Any], services: Services, segment_id: int
) -> Response[str]:
    """A fragment: how many contacts a saved segment selects now."""
    try:
        total = await service.count(services.db, segment_id, now=services.clock())
    except NotFound:
        return _not_found(request, f"There is no segment {segment_id}.")
    return page(request, "segments/count.html", total=total)


@get("/segments/new", **allow("marketing"))
async def new_segment(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The builder with an empty tree ("all of": every contact)."""
    return await _builder(request, services, segment_id=None, name="", definition=EMPTY_TREE)


@get("/segments/{segment_id:int}", **allow("marketing"))
async def edit_segment(
    request: Request[Any, Any, Any], services: Services, segment_id: int
) -> Response[str]:
    """The builder over a saved segment's tree."""
    try:
        segment = await service.get(services.db, segment_id)
    except NotFound:
        return _not_found(request, f"There is no segment {segment_id}.")
    return await _builder(
        request,
        services,
        segment_id=segment.id,
        name=segment.name,
        definition=json.dumps(to_json(segment.definition)),
    )


@get("/segments/preview", **allow("marketing"))
async def preview(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """A fragment: the count and first members of the tree in ``?definition=``, or its error."""
    raw = request.query_params.get("definition")
    try:
        if raw is not None and len(raw) > MAX_DEFINITION:
            raise InvalidInput(
                f"the definition is longer than {MAX_DEFINITION:,} characters: save it to count it",
                field="",
            )
        node = parse_segment(decode_definition(raw, field=""))
    except InvalidInput as exc:
        return page(
            request, "segments/preview.html", status=422, error=str(exc), field=exc.field or ""
        )
    now = services.clock()
    total = await service.count(services.db, node, now=now)
    ids = await service.members(services.db, node, limit=PREVIEW_MEMBERS, now=now)
    async with services.db.read() as conn:
        members = await get_contacts(conn, ids)  # one batch; a contact deleted since is left out
    return page(request, "segments/preview.html", total=total, members=members, error="")


async def _save(
    request: Request[Any, Any, Any],
    services: Services,
    data: dict[str, str],
    segment_id: int | None,
) -> Response[Any]:
    name = str(data.get("name", ""))
    definition = str(data.get("definition", ""))
    now = services.clock()
    try:
        tree = decode_definition(definition, field="definition")
        # The service parses the tree and names a bad value "definition/<path>", as the API.
        if segment_id is None:
            saved = await service.create(services.db, name=name, definition=tree, now=now)
        else:
            saved = await service.update(
                services.db, segment_id, name=name, definition=tree, now=now
            )
    except (InvalidInput, AlreadyExists) as exc:
        # The form again with the reason: a bad value (422, the field it names) or a
        # name another segment has (409).
        taken = isinstance(exc, AlreadyExists)
        return await _builder(
            request,
            services,
            segment_id=segment_id,
            name=name,
            definition=definition,
            status=409 if taken else 422,
            error=str(exc),
            field="name" if taken else getattr(exc, "field", None) or "",
        )
    except NotFound:
        return _not_found(request, f"There is no segment {segment_id}.")
    return Redirect(path=f"/segments?saved={saved.id}", status_code=303)


@post("/segments", **allow("marketing"))
async def create_segment(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Save a new segment; back to the list (or the builder with the error, 422/409)."""
    return await _save(request, services, data, None)


@post("/segments/{segment_id:int}", **allow("marketing"))
async def update_segment(
    request: Request[Any, Any, Any], services: Services, segment_id: int, data: Form
) -> Response[Any]:
    """Rename a segment and replace its tree; back to the list (or the builder, 422/409)."""
    return await _save(request, services, data, segment_id)


@post("/segments/{segment_id:int}/delete", **allow("marketing"))
async def delete_segment(
    request: Request[Any, Any, Any], services: Services, segment_id: int
) -> Response[Any]:
    """Delete a saved segment (its contacts are untouched); back to the list."""
    try:
        await service.delete(services.db, segment_id)
    except NotFound:
        return _not_found(request, f"There is no segment {segment_id}.")
    return Redirect(path="/segments?deleted=1", status_code=303)


ROUTES: Sequence[Any] = [
    segments_page,
    segment_count,
    new_segment,
    edit_segment,
    preview,
    create_segment,
    update_segment,
    delete_segment,
]
