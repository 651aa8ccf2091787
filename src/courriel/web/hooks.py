"""The shop webhook endpoints: ``POST /hooks/shopify/{name}`` and ``/hooks/woocommerce/{name}``.

Owns the HTTP edge of :mod:`courriel.integrations.webhooks`: it hands the raw body and the
headers to the pipeline and turns the outcome into a response. Successes are
``{"status": …, "detail": …}`` JSON with 200; failures are RFC 9457 problem documents
(401 bad signature, 400 malformed JSON or unknown topic, 404 unknown integration, 413
body too large, 422 a bad field, named in ``field``).

Invariants: the body is read raw (it is what the shop signed) and never logged; the
routes take bodies up to :data:`courriel.integrations.webhooks.MAX_BODY` plus one byte, so
the pipeline itself answers the 413 (with a log line).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from courriel.integrations.shopify import SHOPIFY
from courriel.integrations.webhooks import MAX_BODY, ShopAdapter, WebhookOutcome, handle_webhook
from courriel.integrations.woocommerce import WOOCOMMERCE
from courriel.web.app import Services, WebServices
from courriel.web.problems import problem

__all__ = ["ROUTES", "shopify_hook", "woocommerce_hook"]


def _answer(outcome: WebhookOutcome) -> Response[dict[str, Any]]:
    if outcome.status >= 400:
        return problem(outcome.status, outcome.detail, field=outcome.field)
    return Response(
        content={"status": outcome.result, "detail": outcome.detail}, status_code=outcome.status
    )


async def _handle(
    request: Request[Any, Any, Any], adapter: ShopAdapter, name: str, services: WebServices
) -> Response[dict[str, Any]]:
    body = await request.body()
    headers = {key: value for key, value in request.headers.items()}
    outcome = await handle_webhook(
        services.db,
        adapter,
        name,
        headers,
        body,
        now=services.clock(),
        attribution_window=services.attribution_window,
    )
    return _answer(outcome)


@post(
    "/hooks/shopify/{name:str}",
    status_code=200,
    request_max_body_size=MAX_BODY + 1,
    include_in_schema=False,
)
async def shopify_hook(
    request: Request[Any, Any, Any], name: FromPath[str], services: Services
) -> Response[dict[str, Any]]:
    """A Shopify webhook for the integration ``name``."""
    return await _handle(request, SHOPIFY, name, services)


@post(
    "/hooks/woocommerce/{name:str}",
    status_code=200,
    request_max_body_size=MAX_BODY + 1,
    include_in_schema=False,
)
async def woocommerce_hook(
    request: Request[Any, Any, Any], name: FromPath[str], services: Services
) -> Response[dict[str, Any]]:
    """A WooCommerce webhook (or its creation ping) for the integration ``name``."""
    return await _handle(request, WOOCOMMERCE, name, services)


ROUTES: list[ControllerRouterHandler] = [shopify_hook, woocommerce_hook]
