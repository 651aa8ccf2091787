"""``/tracker``: the storefronts of the on-site tracker, their public keys and snippet.

Owns the routes under ``/tracker`` (NAV key ``tracker``, area ``marketing``): every role
reads, marketers and owners add and remove sites. Calls
:func:`~courriel.integrations.tracker.add_site`, :func:`~courriel.integrations.tracker.list_sites`
and :func:`~courriel.integrations.tracker.remove_site`, as ``courriel tracker
add-site|list|remove-site`` does.

Invariants:
- A site key is public (it sits in the storefront's HTML), so the list shows each site's
  key and snippet to every role; nothing secret is on these pages.
- Bad input (a bad or taken name, a bad origin) re-renders the list with the user's input
  and the service's message, status 422; nothing is stored.
- Origins are typed one per line (or separated by spaces or commas); none allows any.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput
from courriel.integrations.tracker import TrackerSite, add_site, list_sites, remove_site
from courriel.web.app import Services
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, notice

__all__ = ["ROUTES", "snippet"]

_NOTICES = {"removed": "Site removed: its key no longer works."}

_SEPARATORS = re.compile(r"[\s,]+")
MAX_ORIGINS = 20  # origins accepted from one form


def snippet(public_url: str, site: TrackerSite) -> str:
    """The HTML to paste in every storefront page (docs/tracker.md, "Add the snippet")."""
    base = public_url.rstrip("/")
    return (
        "<script>\n"
        "  window.courriel = window.courriel || [];\n"
        '  ["identify", "track"].forEach(function (m) {\n'
        "    courriel[m] = courriel[m] || function () {\n"
        "      courriel.push([m].concat([].slice.call(arguments)));\n"
        "    };\n"
        "  });\n"
        "</script>\n"
        f'<script src="{base}/t/tracker.js" data-site="{site.public_key}" async></script>'
    )


def _origins(text: str) -> tuple[str, ...]:
    found = tuple(o for o in _SEPARATORS.split(text) if o)
    if len(found) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} origins per site", field="origin")
    return found


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    sites = await list_sites(services.db)
    for key in ("error", "done", "site_name", "origins"):
        context.setdefault(key, "")
    return page(
        request,
        "tracker/list.html",
        status=status,
        active="tracker",
        title="Tracker",
        sites=[(site, snippet(services.public_url, site)) for site in sites],
        **context,
    )


@get("/tracker", **guarded("marketing"))
async def tracker_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The tracker sites with their keys and snippets (and, for marketers, the add form)."""
    return await _list_page(request, services, done=notice(request, _NOTICES))


@post("/tracker", **guarded("marketing"))
async def add_tracker_site(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Register a storefront; the answer shows its key and the snippet to paste."""
    name = field(data, "name", limit=128)
    typed = field(data, "origins", limit=8192)
    try:
        site = await add_site(services.db, name, origins=_origins(typed), now=services.clock())
    except (InvalidInput, AlreadyExists) as exc:
        return await _list_page(
            request, services, status=422, error=str(exc), site_name=name, origins=typed
        )
    return page(
        request,
        "tracker/added.html",
        status=201,
        active="tracker",
        title=f"Site {site.name} added",
        site=site,
        snippet=snippet(services.public_url, site),
    )


@post("/tracker/{name:str}/remove", **guarded("marketing"))
async def remove_tracker_site(services: Services, name: FromPath[str]) -> Response[Any]:
    """Remove a site: its key stops working at once (its events stay)."""
    await remove_site(services.db, name)
    return Redirect(path="/tracker?done=removed", status_code=303)


ROUTES = [tracker_page, add_tracker_site, remove_tracker_site]
