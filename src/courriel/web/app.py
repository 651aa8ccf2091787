"""The HTTP application: the services handlers use, the app factory, error mapping.

Owns :class:`WebServices` (everything a route handler may use) and :func:`create_app`.

How a handler gets the services: every route handler (in ``web/api/v1/*``, ``web/public.py``,
``web/hooks.py``, ``web/tracker.py``) declares a parameter named ``services`` typed
:data:`Services` (``NamedDependency[WebServices]``); the app registers a dependency of that
name, so::

    from litestar.params import FromPath
    from courriel.web.app import Services

    @post("/hooks/shopify/{name:str}")
    async def shopify(request: Request, name: FromPath[str], services: Services) -> Response[...]:
        async with services.db.write() as conn:
            ...

(A bare ``services: WebServices`` works too, but Litestar 2.23+ warns that inferred
dependencies stop working in Litestar 3.)

The name ``WebServices`` is in the app's signature namespace, so a module may import it
under ``TYPE_CHECKING`` only. Errors: raise :mod:`courriel.errors` exceptions (or a Litestar
``HTTPException``); :mod:`courriel.web.problems` turns every one into RFC 9457 problem JSON.

Route collection: :data:`courriel.web.routes.ROUTES` lists every handler of the product
(the API, ``/u/`` public pages, the webhook and tracker routes). ``create_app`` takes them
all, plus ``extra_routes`` (tests of one module may pass its handlers; a handler already
present is not mounted twice). The routes module is imported when ``create_app`` runs, not
at import time, because route modules import :class:`WebServices` from here; a broken route
module therefore fails ``create_app`` loudly.

Invariants:
- Request bodies are capped at :data:`MAX_BODY` (1 MB); larger ones get a 413 problem.
- The OpenAPI document is served at ``/api/v1/openapi.json`` with a bearer security scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import BaseRoute
from litestar.types import ControllerRouterHandler

# Imported at run time, not under TYPE_CHECKING: Litestar (msgspec) resolves the
# annotations of WebServices when it checks a handler's ``services`` argument.
from courriel.dns.resolver import Resolver
from courriel.mailstore.passwords import Passwords
from courriel.mailstore.service import MailStore
from courriel.marketing.campaigns.attribution import DEFAULT_WINDOW
from courriel.marketing.campaigns.sender import Recommender, RendererFactory
from courriel.marketing.links import LinkSigner
from courriel.marketing.ports import Mailer
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.web.auth import SERVICES_STATE_KEY
from courriel.web.clientip import ProxyTrust
from courriel.web.problems import EXCEPTION_HANDLERS

__all__ = ["MAX_BODY", "Services", "WebServices", "create_app"]

MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class WebServices:
    """What HTTP handlers may use; built once by the composition root.

    Attributes:
        db: the database.
        public_url: the base of every link put in mail (``http.public_url``), no trailing slash.
        links: signs and verifies tokens in links (double opt-in confirmation, unsubscribe).
        mailer: sends mail through the delivery queue (confirmation mails).
        clock: the current time, timezone-aware UTC (injected so tests control it).
        sender: the From address of mail the web edge causes (double opt-in confirmations);
            empty means ``noreply@<host of public_url>``.
        trusted_proxies: reverse proxies whose ``X-Forwarded-For`` names the client
            (``http.trusted_proxies``); read it through :func:`courriel.web.clientip.client_ip`.
        shop_name: the shop's name (``shop.name``) on the unsubscribe and preference pages;
            empty means "this shop".
        shop_address: the shop's postal address (``shop.address``), which sending a
            campaign requires (CAN-SPAM footer); empty refuses ``POST /campaigns/{id}/send``.
        attribution_window: ``tracking.attribution_window``, for orders stored from webhooks.
        renderer_factory: the campaign sender's template renderers, for ``/v/`` (view in
            browser); None renders with a shop of ``shop_name`` and ``shop_address`` only.
        recommender: the contact's recommendations on ``/v/`` pages; None: none.
    """

    db: Database
    public_url: str
    links: LinkSigner
    mailer: Mailer
    clock: Callable[[], datetime]
    sender: str = ""
    trusted_proxies: ProxyTrust = field(default_factory=ProxyTrust)
    shop_name: str = ""
    shop_address: str = ""
    attribution_window: timedelta = DEFAULT_WINDOW
    renderer_factory: RendererFactory | None = None
    recommender: Recommender | None = None
    # What transactional mail is built with: the ``shop`` templates see (shop.*; empty:
    # a shop of shop_name and shop_address), tracking.open_pixel, and the Feedback-ID
    # sender (campaigns.feedback_id or the hostname; empty: no Feedback-ID).
    shop: Mapping[str, str] = field(default_factory=dict)
    open_pixel: bool = True
    feedback_sender: str = ""
    # The dashboard (web/dashboard): its users' password hasher (argon2id; tests pass a
    # cheap one), and what its mail-server pages administer. None: the page says the node
    # was started without it (only the composition root and tests build WebServices).
    passwords: Passwords = field(default_factory=Passwords)
    mailstore: MailStore | None = None
    blobs: BlobStore | None = None
    resolver: Resolver | None = None
    hostname: str = ""

    @property
    def template_shop(self) -> Mapping[str, str]:
        """The ``shop`` of templates: ``shop``, else what the name and address say."""
        return self.shop or {"name": self.shop_name, "address": self.shop_address}

    @property
    def mail_sender(self) -> str:
        """The From address of confirmation mail (``sender`` or a no-reply default)."""
        if self.sender:
            return self.sender
        host = urlsplit(self.public_url).hostname or "localhost"
        return f"noreply@{host}"


Services: TypeAlias = NamedDependency[WebServices]
"""The annotation of a handler's ``services`` parameter."""


class _OpenApiRouter(Router):
    """Serves the OpenAPI JSON under ``/api/v1`` without Litestar's catch-all HTML 404.

    Litestar adds a ``{path}/{name}`` page for unknown documentation paths; under
    ``/api/v1`` it would answer every unknown API path with HTML instead of problem JSON.
    """

    def register(self, value: ControllerRouterHandler) -> list[BaseRoute]:
        if isinstance(value, HTTPRouteHandler) and (
            value.handler_name == "handle_schema_path_not_found"
        ):
            return []
        return super().register(value)


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="courriel API",
        version="1",
        path="/api/v1",
        openapi_router=_OpenApiRouter("/api/v1", route_handlers=[], include_in_schema=False),
        # Only the JSON document: /api/v1/openapi.json.
        render_plugins=[JsonRenderPlugin(path="/openapi.json")],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key made by `courriel apikey create`.",
                )
            }
        ),
    )


def _unique(handlers: Sequence[ControllerRouterHandler]) -> list[ControllerRouterHandler]:
    seen: set[int] = set()
    out: list[ControllerRouterHandler] = []
    for handler in handlers:
        if id(handler) not in seen:
            seen.add(id(handler))
            out.append(handler)
    return out


def create_app(
    services: WebServices,
    *,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    debug: bool = False,
) -> Litestar:
    """Build the Litestar application over ``services``.

    Args:
        services: injected into every handler that declares ``services: WebServices``.
        extra_routes: more handlers to mount (deduplicated against the product's routes).
        debug: Litestar debug mode (never in production: it adds tracebacks to logs only,
            problem documents stay generic).

    Returns:
        The ASGI application.
    """
    from courriel.web.routes import ROUTES

    def provide_services() -> WebServices:
        return services

    namespace: dict[str, Any] = {"WebServices": WebServices, "Services": Services}
    return Litestar(
        route_handlers=_unique([*ROUTES, *extra_routes]),
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=_openapi(),
        request_max_body_size=MAX_BODY,
        signature_namespace=namespace,
        state=State({SERVICES_STATE_KEY: services}),
        debug=debug,
        logging_config=None,
    )
