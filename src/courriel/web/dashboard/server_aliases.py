"""``/server/aliases``: aliases and ``@domain`` catch-alls and where they deliver (owner).

Calls the mail store as ``courriel alias add|list|remove`` does. The alias travels in the
form body, not the path, because a catch-all (``@domain``) is not a path segment one
would want to read.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.web.app import Services
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, need, notice

__all__ = ["ROUTES", "split_targets"]

_SEPARATORS = re.compile(r"[\s,;]+")
_NOTICES = {"added": "Alias saved.", "removed": "Removed.", "target": "Target removed."}


def split_targets(text: str) -> list[str]:
    """The addresses of a targets field: separated by commas, semicolons or white space."""
    return [t for t in _SEPARATORS.split(text) if t]


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    aliases = await need(services.mailstore, "mail store").list_aliases()
    for key in ("alias", "targets", "error", "done"):
        context.setdefault(key, "")
    return page(
        request,
        "server/aliases.html",
        status=status,
        active="aliases",
        title="Aliases",
        aliases=aliases,
        **context,
    )


@get("/server/aliases", **guarded("server"))
async def aliases_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Every alias with its targets, and the form to add one."""
    return await _list_page(request, services, done=notice(request, _NOTICES))


@post("/server/aliases", **guarded("server"))
async def add_alias(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Deliver mail for an alias (or a catch-all) to its targets."""
    alias = field(data, "alias", limit=320)
    targets = field(data, "targets", limit=16384)
    try:
        if not split_targets(targets):
            raise InvalidInput("give at least one target address", field="targets")
        await need(services.mailstore, "mail store").add_alias(alias, split_targets(targets))
    except (InvalidInput, AlreadyExists, NotFound) as exc:
        return await _list_page(
            request, services, status=422, error=str(exc), alias=alias, targets=targets
        )
    return Redirect(path="/server/aliases?done=added", status_code=303)


@post("/server/aliases/remove", **guarded("server"))
async def remove_alias(services: Services, data: Form) -> Response[Any]:
    """Remove an alias, or only one of its targets."""
    alias = field(data, "alias", limit=320)
    target = field(data, "target", limit=320) or None
    await need(services.mailstore, "mail store").remove_alias(alias, target)
    done = "removed" if target is None else "target"
    return Redirect(path=f"/server/aliases?done={done}", status_code=303)


ROUTES = [aliases_page, add_alias, remove_alias]
