"""HTML pages of the dashboard: one Jinja environment, the layout's context, the navigation.

Usage in a page module (see docs/dashboard.md, "Adding a page")::

    @get("/contacts", **allow("marketing"))
    async def contacts_page(request: Request, services: Services) -> Response[str]:
        return page(request, "contacts/list.html", active="contacts", contacts=rows)

Invariants:
- Autoescaping is on for every template (.html): data is never trusted as HTML. These are
  the dashboard's own files, not users' email templates (those run in the sandbox of
  :mod:`courriel.marketing.templates`).
- Every page gets ``admin`` (the logged-in user), ``csrf_token`` (forms put it in a hidden
  ``_csrf`` field; htmx sends it as ``X-CSRF-Token``, set once on ``<body>``), ``nav`` (the
  sections this user's role may open), ``active`` and ``assets_ok`` (False when the
  vendored browser libraries were not built: the layout says how to build them).
- Pages answer ``text/html; charset=utf-8`` with ``Cache-Control: no-store`` (they hold
  personal data) and a Content-Security-Policy that allows scripts and styles from this
  origin only, no inline script (page code lives in ``static/``); a page that needs more
  (the email editor's canvas) passes its own ``Content-Security-Policy`` in ``headers``.
  Two allowances in :data:`CSP` are deliberate: ``img-src https:``, because product
  images in templates, previews and the editor come from the shop's own image host, and
  ``style-src 'unsafe-inline'``, because GrapesJS and the compiled MJML set inline
  ``style`` attributes; neither lets a script run (``script-src 'self'`` stays strict).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Request, Response

__all__ = ["NAV", "STATIC", "Section", "assets_ok", "environment", "page", "render"]

STATIC = Path(__file__).resolve().parent / "static"
VENDOR_FILES = (
    "htmx.min.js",
    "chart.umd.min.js",
    "grapes.min.js",
    "grapes.min.css",
    "grapesjs-mjml.min.js",
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; font-src 'self' data:; frame-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)


@dataclass(frozen=True, slots=True)
class Section:
    """One entry of the navigation: its key, path, label and the access area it is in."""

    key: str
    path: str
    label: str
    area: str  # "marketing" | "server" | "settings" (see access.py)


NAV: tuple[Section, ...] = (
    Section("overview", "/", "Overview", "marketing"),
    Section("contacts", "/contacts", "Contacts", "marketing"),
    Section("lists", "/lists", "Lists", "marketing"),
    Section("segments", "/segments", "Segments", "marketing"),
    Section("templates", "/templates", "Templates", "marketing"),
    Section("campaigns", "/campaigns", "Campaigns", "marketing"),
    Section("products", "/shop/products", "Products", "marketing"),
    Section("orders", "/shop/orders", "Orders", "marketing"),
    Section("integrations", "/integrations", "Integrations", "marketing"),
    Section("tracker", "/tracker", "Tracker", "marketing"),
    Section("suppression", "/suppression", "Suppression", "marketing"),
    Section("domains", "/server/domains", "Domains", "server"),
    Section("accounts", "/server/accounts", "Accounts", "server"),
    Section("aliases", "/server/aliases", "Aliases", "server"),
    Section("queue", "/server/queue", "Queue", "server"),
    Section("settings", "/settings", "Settings", "settings"),
)


@cache
def environment() -> Environment:
    """The dashboard's Jinja environment (templates in ``web/dashboard/templates``)."""
    env = Environment(
        loader=PackageLoader("courriel.web.dashboard", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{int(n or 0):,}"
    env.filters["percent"] = lambda x: f"{100 * float(x or 0):.1f} %"
    env.filters["money"] = lambda minor, currency="": (
        f"{int(minor or 0) / 100:,.2f}{' ' + currency if currency else ''}"
    )
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "—"
    return env


def assets_ok() -> bool:
    """Were the vendored browser libraries built (tools/build_assets.py)?"""
    vendor = STATIC / "vendor"
    return all((vendor / name).is_file() for name in VENDOR_FILES)


def render(name: str, **context: Any) -> str:
    """A template rendered with ``context`` only (fragments for htmx, mail bodies)."""
    return environment().get_template(name).render(**context)


def page(
    request: Request[Any, Any, Any],
    name: str,
    *,
    status: int = 200,
    active: str = "",
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """A full page or fragment for the logged-in user of ``request``.

    Args:
        request: the request (its state carries the session the guard loaded).
        name: the template, relative to ``web/dashboard/templates``.
        status: the HTTP status.
        active: the NAV key to highlight.
        headers: more response headers (e.g. ``HX-Trigger``).
        context: the template's own variables.
    """
    from courriel.web.dashboard.access import current_session, visible_sections

    session = current_session(request)
    admin = session.admin if session else None
    html = render(
        name,
        admin=admin,
        csrf_token=session.csrf_token if session else "",
        nav=visible_sections(admin),
        active=active,
        assets_ok=assets_ok(),
        htmx=request.headers.get("hx-request") == "true",
        **context,
    )
    return html_response(html, status=status, headers=headers)


def html_response(
    html: str, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response[str]:
    """An HTML response with the dashboard's security headers."""
    all_headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    all_headers.update(headers or {})
    return Response(
        content=html, status_code=status, media_type="text/html; charset=utf-8", headers=all_headers
    )
