"""What the mail-server, suppression and integrations pages share: guards, forms, errors.

Invariants:
- :func:`guarded` is :func:`~courriel.web.dashboard.access.allow` (whose handlers make
  every error an HTML page: NotFound 404, InvalidInput 422, …) plus one more: a node
  started without the mail store or blob store (:class:`ServiceMissing`) gets a 503 page
  that says so. Forms with bad input re-render themselves (422) where they can.
- Service objects are taken from ``services`` only through :func:`need`, so a missing
  one is a clear page, never an ``AttributeError`` on ``None``.
- A notice after a redirect is chosen by a key (``?done=added``) from the page's own
  fixed texts (:func:`notice`): the URL never carries the text, so nobody can craft a
  link whose page says "Domain X removed.".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body

from courriel.web.dashboard.access import EXCEPTION_HANDLERS, allow
from courriel.web.dashboard.render import page

__all__ = ["Form", "ServiceMissing", "field", "guarded", "need", "notice"]

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


def notice(request: Request[Any, Any, Any], texts: Mapping[str, str]) -> str:
    """The text of the ``?done=`` key among ``texts`` ("" for none or an unknown key)."""
    return texts.get(request.query_params.get("done") or "", "")


def _missing(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    message = f"This node was started without its {exc}: the page cannot work here."
    return page(request, "error.html", status=503, title="Not available", message=message)


def guarded(area: str) -> dict[str, Any]:
    """Route-decorator keyword arguments: ``allow(area)`` plus the 503 page."""
    options = allow(area)
    options["exception_handlers"] = {**EXCEPTION_HANDLERS, ServiceMissing: _missing}
    return options
