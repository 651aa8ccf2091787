"""Public tracker routes: ``/t/tracker.js`` and the identify/track endpoints (thin).

Owns the HTTP side of the on-site tracker: serving the snippet, the CORS protocol, the
per-request checks (site key, origin, size, content type, rate) and the status codes.
What a call stores is :mod:`courriel.integrations.tracker`'s business.

Invariants:
- The site key travels in the query string (``?site=KEY``), so a CORS preflight, which
  carries no body, is checked against the same site as the request it announces.
- ``Access-Control-Allow-Origin`` is the request's own origin once it is allowed, never
  ``*`` on the endpoints; no cookie is read or set, so credentials are never allowed.
  A request from an origin the site does not list gets 403 and no CORS header.
- Bodies over 8 KiB get 413 without being read past the limit.
- The rate limiter lives in the application's state (one per app; tests may put their
  own under :data:`STATE_KEY` before the first request).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from litestar import Litestar, Request, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput
from courriel.integrations.tracker import (
    MAX_BODY,
    RateLimiter,
    TrackerSite,
    find_site,
    identify,
    origin_allowed,
    parse_identify,
    parse_track,
    track,
)
from courriel.web.app import Services, WebServices
from courriel.web.clientip import client_ip
from courriel.web.problems import problem

__all__ = ["ROUTES", "STATE_KEY", "TrackerState"]

STATE_KEY = "courriel.tracker"
_JS_TYPE = "application/javascript; charset=utf-8"
_BODY_TYPES = ("application/json", "text/plain")  # text/plain: sendBeacon, no preflight
# Chromium caps Access-Control-Max-Age at 2 hours.
_PREFLIGHT_MAX_AGE = "7200"
_SITE_CHALLENGE = 'SiteKey realm="courriel tracker"'
_Req = Request[Any, Any, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerState:
    """Per-application state of the tracker routes."""

    limiter: RateLimiter  # keyed by "<site key> <client address>" (web.clientip)


def _state(app: Litestar, services: WebServices) -> TrackerState:
    state = app.state.get(STATE_KEY)
    if state is None:
        # 60 requests a minute with bursts of 20, per site key and client address.
        clock = services.clock
        state = TrackerState(limiter=RateLimiter(clock=lambda: clock().timestamp()))
        app.state[STATE_KEY] = state
    assert isinstance(state, TrackerState)
    return state


# -- the snippet ------------------------------------------------------------------------


@cache
def _snippet() -> tuple[bytes, str]:
    body = files("courriel.web").joinpath("static/tracker.js").read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@get("/t/tracker.js", include_in_schema=False, sync_to_thread=False)
def tracker_js(request: _Req) -> Response[bytes]:
    """The storefront snippet, cacheable for an hour (revalidated by its ETag)."""
    body, etag = _snippet()
    headers = {
        "Cache-Control": "public, max-age=3600",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # Public and cookie-free: a page may load it with crossorigin/SRI.
        "Access-Control-Allow-Origin": "*",
    }
    # RFC 9110 §13.1.2: a matching If-None-Match makes a GET answer 304.
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=_JS_TYPE, headers=headers)


# -- the endpoints ----------------------------------------------------------------------


def _cors(origin: str | None) -> dict[str, str]:
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


async def _site_for(request: _Req, services: WebServices) -> TrackerSite | None:
    key = request.query_params.get("site", "")
    return await find_site(services.db, key) if key else None


def _refused_site(origin: str | None) -> Response[dict[str, Any]]:
    # RFC 9110 §15.5.2: a 401 carries a challenge; the scheme names what is expected.
    headers = {**_cors(origin), "WWW-Authenticate": _SITE_CHALLENGE}
    return problem(401, "missing or unknown site key", field="site", headers=headers)


def _refused_origin() -> Response[dict[str, Any]]:
    return problem(403, "this origin is not allowed for this site", headers={"Vary": "Origin"})


@route(
    ["/t/v1/identify", "/t/v1/track"],
    http_method=[HttpMethod.OPTIONS],
    include_in_schema=False,
)
async def preflight(request: _Req, services: Services) -> Response[Any]:
    """Answer a CORS preflight for the site in the query string."""
    origin = request.headers.get("origin")
    site = await _site_for(request, services)
    if site is None:
        return _refused_site(origin)
    if not origin_allowed(site, origin):
        return _refused_origin()
    headers = {
        **_cors(origin),
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
    }
    return Response(None, status_code=204, headers=headers)


async def _read_body(request: _Req) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (never read past it)."""
    length = request.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _checked(
    request: _Req, services: WebServices
) -> tuple[TrackerSite, bytes, dict[str, str]] | Response[Any]:
    """Apply the endpoint checks in order; a Response is the refusal to send."""
    origin = request.headers.get("origin")
    site = await _site_for(request, services)
    if site is None:
        return _refused_site(origin)
    if not origin_allowed(site, origin):
        return _refused_origin()
    cors = _cors(origin)
    client = client_ip(request, services.trusted_proxies) or "unknown"
    wait = _state(request.app, services).limiter.take(f"{site.public_key} {client}")
    if wait > 0:
        # RFC 6585 §4: 429 with Retry-After in whole seconds.
        retry = {**cors, "Retry-After": str(max(1, math.ceil(wait)))}
        return problem(429, "too many tracker calls; retry later", headers=retry)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _BODY_TYPES:
        detail = "send application/json or text/plain"
        return problem(415, detail, headers={**cors, "Accept-Post": "application/json"})
    body = await _read_body(request)
    if body is None:
        return problem(413, f"body larger than {MAX_BODY} bytes", headers=cors)
    return site, body, cors


def _invalid(exc: InvalidInput, cors: dict[str, str]) -> Response[dict[str, Any]]:
    # A body that is not a JSON object is 400; a field with a bad value is 422.
    if exc.field is None:
        return problem(400, str(exc), headers=cors)
    errors = [{"field": exc.field, "detail": str(exc)}]
    return problem(422, str(exc), field=exc.field, errors=errors, headers=cors)


@post("/t/v1/identify", include_in_schema=False)
async def identify_route(request: _Req, services: Services) -> Response[Any]:
    """``courriel.identify(profile)``: upsert the contact, merge the browser into it."""
    checked = await _checked(request, services)
    if isinstance(checked, Response):
        return checked
    _site, body, cors = checked
    try:
        await identify(services.db, parse_identify(body), now=services.clock())
    except InvalidInput as exc:
        return _invalid(exc, cors)
    return Response(None, status_code=204, headers=cors)


@post("/t/v1/track", include_in_schema=False)
async def track_route(request: _Req, services: Services) -> Response[Any]:
    """``courriel.track(name, properties)``: append the event for the browser."""
    checked = await _checked(request, services)
    if isinstance(checked, Response):
        return checked
    site, body, cors = checked
    try:
        await track(services.db, site, parse_track(body), now=services.clock())
    except InvalidInput as exc:
        return _invalid(exc, cors)
    return Response(None, status_code=204, headers=cors)


ROUTES: list[ControllerRouterHandler] = [tracker_js, preflight, identify_route, track_route]
