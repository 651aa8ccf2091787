"""REST API v1: one module per resource; :data:`ROUTES` lists their handlers.

Conventions every module follows: JSON bodies; list endpoints page by id cursor
(``?after=<id>&limit=100`` → ``{"data": [...], "next": "<cursor>" | null}``, see
:mod:`.common`); each handler declares the scope it needs with
:func:`courriel.web.auth.requires`.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from courriel.web.api.v1 import (
    campaigns,
    contacts,
    events,
    lists,
    messages,
    orders,
    products,
    segments,
    suppression,
    templates,
)

__all__ = ["ROUTES"]

ROUTES: list[ControllerRouterHandler] = [
    *contacts.ROUTES,
    *lists.ROUTES,
    *segments.ROUTES,
    *events.ROUTES,
    *products.ROUTES,
    *orders.ROUTES,
    *suppression.ROUTES,
    *messages.ROUTES,
    *templates.ROUTES,
    *campaigns.ROUTES,
]
