"""Public pages a person reaches from a mail: ``/u/confirm/{token}`` (double opt-in).

``GET`` only shows a page with a button; ``POST`` confirms. Mail scanners and link
previews fetch links before the person sees them, so a GET must never subscribe anyone.

Invariants:
- These pages answer HTML, never problem JSON: a person reads them. A bad, expired or
  cancelled link is a 400 page that says so and nothing more (no list or address).
- Every value put in the page is HTML-escaped.
- The IP recorded in the consent proof is the client's as :func:`courriel.web.clientip.client_ip`
  resolves it: the connecting peer, or behind a trusted reverse proxy (``http.trusted_proxies``)
  the rightmost untrusted ``X-Forwarded-For`` hop; a forwarded header from anyone else is ignored.
"""

from __future__ import annotations

import html
from typing import Any

from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.lists import CONFIRM_MAX_AGE, CONFIRM_PURPOSE, confirm_subscription
from courriel.web.app import Services
from courriel.web.clientip import client_ip

__all__ = ["ROUTES"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    content = _PAGE.format(title=html.escape(title), body=body)
    return Response(
        content,
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _invalid() -> Response[str]:
    return _page(
        "This link cannot be used",
        "<p>The confirmation link is not valid, has expired, or the subscription was "
        "cancelled. Subscribe again to get a new link.</p>",
        status=400,
    )


@get("/u/confirm/{token:str}", include_in_schema=False)
async def confirm_page(services: Services, token: FromPath[str]) -> Response[str]:
    """Show the confirmation button (checks the link, changes nothing)."""
    try:
        services.links.verify(CONFIRM_PURPOSE, token, max_age=CONFIRM_MAX_AGE)
    except InvalidInput:
        return _invalid()
    action = html.escape(f"/u/confirm/{token}", quote=True)
    return _page(
        "Confirm your subscription",
        f'<form method="post" action="{action}">'
        "<p>Press the button to confirm that you want to receive our emails.</p>"
        '<button type="submit">Confirm my subscription</button></form>',
    )


@post("/u/confirm/{token:str}", include_in_schema=False, status_code=200)
async def confirm_action(
    services: Services, token: FromPath[str], request: Request[Any, Any, Any]
) -> Response[str]:
    """Confirm the subscription the link names, recording the person's IP as proof."""
    ip = client_ip(request, services.trusted_proxies)
    try:
        name = await confirm_subscription(services.db, services.links, token, ip, services.clock())
    except (InvalidInput, NotFound):
        return _invalid()
    return _page(
        "Subscription confirmed",
        f"<p>Thank you: you are now subscribed to {html.escape(name)}.</p>",
    )


ROUTES: list[ControllerRouterHandler] = [confirm_page, confirm_action]
