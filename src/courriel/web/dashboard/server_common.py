"""What the mail-server, suppression and integrations pages share: guards, forms, errors.

Invariants:
- :func:`guarded` is :func:`~courriel.web.dashboard.access.allow` plus two HTML error
  pages: a :class:`~courriel.errors.NotFound` from a service becomes a 404 page, and a
  node started without the mail store or blob store (:class:`ServiceMissing`) a 503 page
  that says so. Bad input is not handled here: each page re-renders its own form (422).
- Service objects are taken from ``services`` only through :func:`need`, so a missing
  one is a clear page, never an ``AttributeError`` on ``None``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body

from courriel.errors import NotFound
from courriel.web.dashboard.access import EXCEPTION_HANDLERS, allow
from courriel.web.dashboard.render import page

__all__ = ["Form", "ServiceMissing", "field", "guarded", "need"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
"""A URL-encoded form body (the dashboard's forms)."""

T = TypeVar("T")


class ServiceMissing(Exception):
    """The node was started without a service this page needs (mail store, blobs)."""


def need(service: T | None, what: str) -> T:
    """``service``, or :class:`ServiceMissing` naming ``what`` when it is None."""
    if service is None:
        raise ServiceMissing(what)
    return service


def field(data: dict[str, str], name: str, *, limit: int = 1024) -> str:
    """A form field as a stripped string of at most ``limit`` characters ("" if absent)."""
    return str(data.get(name, "")).strip()[:limit]


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return page(request, "error.html", status=404, title="Not found", message=str(exc))


def _missing(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    message = f"This node was started without its {exc}: the page cannot work here."
    return page(request, "error.html", status=503, title="Not available", message=message)


def guarded(area: str) -> dict[str, Any]:
    """Route-decorator keyword arguments: ``allow(area)`` plus the 404/503 pages."""
    options = allow(area)
    options["exception_handlers"] = {
        **EXCEPTION_HANDLERS,
        NotFound: _not_found,
        ServiceMissing: _missing,
    }
    return options
