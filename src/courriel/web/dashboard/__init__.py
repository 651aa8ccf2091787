"""The web dashboard: server-rendered pages (Jinja2 + htmx) over the same services as the API.

Owns every route outside ``/api``, ``/hooks``, ``/t``, ``/u``, ``/o``, ``/c``, ``/p``,
``/v``, ``/.well-known`` and ``/mail``: the login page, the overview at ``/`` and each
section of :data:`~courriel.web.dashboard.render.NAV`, plus its static files under
``/assets/`` (its own CSS and JS, and the npm libraries vendored by tools/build_assets.py).

Route collection: every module of this package that defines ``ROUTES`` contributes its
handlers (so a new page module needs no edit here); :func:`collect_routes` returns their
union plus the static files router. It runs when the app is built (web/routes.py), never
on import: ``courriel admin …`` imports ``admins`` and ``sessions`` from this package and
must not load every page module (Litestar handlers, Jinja) to do so. Handlers call the
marketing, delivery and mailstore services directly, the same functions the REST API
and the CLI call, never copies of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__all__ = ["collect_routes"]


def collect_routes() -> list[Any]:
    """Every dashboard route handler, and the router of its static files under /assets."""
    from litestar.static_files import create_static_files_router

    from courriel.web.dashboard.render import STATIC

    routes: list[Any] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        routes.extend(getattr(module, "ROUTES", ()))
    routes.append(
        create_static_files_router(
            path="/assets",
            directories=[STATIC],
            include_in_schema=False,
            cache_control=None,
            name="dashboard-assets",
        )
    )
    return routes
