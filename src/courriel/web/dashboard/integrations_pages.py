"""``/integrations``: connected shops, their webhook address, the last webhooks received.

Reading is the marketing area (every role); connecting or removing a shop is the owner's
(the ``settings`` area), as the secret lets anyone post orders and contacts.

Calls :mod:`courriel.integrations.registry`, as ``courriel integration add|list|remove``
does. The secret is shown once, on the page that answers the POST that made it (never in
a URL, a redirect or a log), with the webhook address to give the shop. Left empty, the
secret is generated (32 random bytes, URL-safe base64): WooCommerce accepts any secret;
Shopify signs with the app's client secret, which the owner pastes instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput
from courriel.integrations.registry import (
    KINDS,
    Integration,
    Receipt,
    add_integration,
    list_integrations,
    list_receipts,
    remove_integration,
)
from courriel.web.app import Services
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, notice

__all__ = ["RECEIPTS", "ROUTES"]

RECEIPTS = 10  # webhooks shown per shop
_NOTICES = {"removed": "Shop disconnected: its webhooks are refused now; its orders stay."}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Shop:
    integration: Integration
    hook_url: str
    receipts: list[Receipt]


def _hook_url(services: Services, integration: Integration) -> str:
    return f"{services.public_url.rstrip('/')}{integration.hook_path()}"


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    shops = [
        _Shop(
            integration=i,
            hook_url=_hook_url(services, i),
            receipts=await list_receipts(services.db, i.name, limit=RECEIPTS),
        )
        for i in await list_integrations(services.db)
    ]
    for key in ("error", "done", "shop_name", "kind"):
        context.setdefault(key, "")
    return page(
        request,
        "integrations/list.html",
        status=status,
        active="integrations",
        title="Integrations",
        shops=shops,
        kinds=KINDS,
        **context,
    )


@get("/integrations", **guarded("marketing"))
async def integrations_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The connected shops with their last webhooks (and, for the owner, the add form)."""
    return await _list_page(request, services, done=notice(request, _NOTICES))


@post("/integrations", **guarded("settings"))
async def add_shop(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Connect a shop; the answer shows its secret and webhook address, once."""
    kind = field(data, "kind", limit=32)
    name = field(data, "name", limit=64)
    entered = field(data, "secret", limit=2048)
    secret = entered or secrets.token_urlsafe(32)
    try:
        added = await add_integration(services.db, kind, name, secret, now=services.clock())
    except (InvalidInput, AlreadyExists) as exc:
        return await _list_page(
            request, services, status=422, error=str(exc), shop_name=name, kind=kind
        )
    return page(
        request,
        "integrations/added.html",
        status=201,
        active="integrations",
        title=f"Shop {added.name} connected",
        shop=added,
        hook_url=_hook_url(services, added),
        secret=added.secret,
        generated=not entered,
    )


@post("/integrations/{name:str}/remove", **guarded("settings"))
async def remove_shop(services: Services, name: FromPath[str]) -> Response[Any]:
    """Disconnect a shop (its orders and products stay)."""
    await remove_integration(services.db, name)
    return Redirect(path="/integrations?done=removed", status_code=303)


ROUTES = [integrations_page, add_shop, remove_shop]
