"""Every route handler of the product, in one list the app factory mounts.

Owns the assembly only: the REST API v1 (:mod:`courriel.web.api.v1`), the public ``/u/``
pages (:mod:`courriel.web.public`), the shop webhooks (:mod:`courriel.web.hooks`), the
tracker (:mod:`courriel.web.tracker`) and the dashboard's pages, collected from its
modules by :func:`courriel.web.dashboard.collect_routes` when this module is imported
(the app factory), not when the dashboard package is. A module that fails to import
fails the app: nothing here is optional.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from courriel.web import dashboard, hooks, public, tracker, tracking
from courriel.web.api.v1 import ROUTES as API_V1

__all__ = ["ROUTES"]

ROUTES: list[ControllerRouterHandler] = [
    *API_V1,
    *public.ROUTES,
    *hooks.ROUTES,
    *tracker.ROUTES,
    *tracking.ROUTES,
    *dashboard.collect_routes(),
]
