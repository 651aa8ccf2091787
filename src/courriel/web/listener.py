"""The HTTP listener of a node, built for :class:`courriel.app.Node` (its ``http_factory``).

``web`` sits above ``app`` in the layers, so the node cannot import the web application;
the commands that start a node (``courriel serve``, the test helpers) hand it
:func:`http_listener` instead.
"""

from __future__ import annotations

from courriel.app import Services
from courriel.campaigning import template_shop
from courriel.dns.resolver import DnsResolver
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.links import LinkSigner
from courriel.marketing.ports import Mailer
from courriel.marketing.recommend import Recommender
from courriel.storage.models import utcnow
from courriel.web.app import WebServices, create_app
from courriel.web.clientip import ProxyTrust
from courriel.web.server import HttpServer

__all__ = ["http_listener"]


def http_listener(services: Services, mailer: Mailer, links: LinkSigner) -> HttpServer:
    """The HTTP server (API, webhooks, tracker, ``/u/`` pages) of these services."""
    config = services.loaded.config
    web = WebServices(
        db=services.db,
        public_url=config.http.public_url.rstrip("/"),
        links=links,
        mailer=mailer,
        clock=utcnow,
        trusted_proxies=ProxyTrust.parse(config.http.trusted_proxies),
        shop_name=config.shop.name,
        shop_address=config.shop.address,
        attribution_window=config.tracking.attribution_window,
        renderer_factory=renderer_factory(template_shop(config)),
        recommender=Recommender(services.db, utcnow),
        shop=template_shop(config),
        open_pixel=config.tracking.open_pixel,
        feedback_sender=config.campaigns.feedback_id or config.server.hostname,
        mailstore=services.mailstore,
        blobs=services.blobs,
        resolver=DnsResolver(nameservers=config.dns.nameservers, timeout=config.dns.timeout),
        hostname=config.server.hostname,
    )
    return HttpServer(create_app(web))
