"""Who may open which dashboard page: sessions, roles, CSRF, and the login/logout pages.

Usage on a page handler::

    @get("/contacts", **allow("marketing"))            # GET: any role that reads marketing
    @post("/contacts/import", **allow("marketing"))    # POST: a role that writes it, + CSRF

Areas and roles (docs/dashboard.md):

============ ================== ==================
area         read (GET, HEAD)   write (other verbs)
============ ================== ==================
marketing    viewer and up      marketer and up
server       owner              owner
settings     owner              owner
session      viewer and up      viewer and up
============ ================== ==================

Invariants:
- Every dashboard route but ``/login`` carries the guard of :func:`allow`: no session →
  a redirect to ``/login?next=<path>`` (htmx requests get 401 with ``HX-Redirect``); a
  role below the route's → 403 page. Nothing else decides access.
- The guard's order: session, then role (it needs no body, so a refused POST is never
  read), then int path parameters (outside 1..2**63-1 → 404 page, :data:`MAX_ID`), then
  CSRF. Every unsafe method (POST, PUT, PATCH, DELETE) must present the session's CSRF
  token, as the ``_csrf`` form field or the ``X-CSRF-Token`` header, compared in constant
  time; a missing or wrong token → 403, before the handler runs. The login form, which
  has no session yet, uses a double-submit cookie instead.
- Errors on a dashboard route are HTML pages, never problem JSON nor a traceback
  (:data:`EXCEPTION_HANDLERS`): InvalidInput → 422 with its message, NotFound → 404,
  AlreadyExists → 409, Litestar's validation and HTTP errors → their status, anything
  else → a generic 500 page whose traceback is logged with the route template only.
- ``next`` after login is only ever a local path (``/…``, never ``//host``): no open redirect.
- The session cookie is ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when
  ``http.public_url`` is https. Passwords and tokens are never logged.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect
from litestar.types import Guard

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.web.app import Services
from courriel.web.auth import SERVICES_STATE_KEY
from courriel.web.clientip import client_ip
from courriel.web.dashboard.admins import Admin, verify_login
from courriel.web.dashboard.ids import MAX_ID
from courriel.web.dashboard.render import NAV, Section, html_response, page, render
from courriel.web.dashboard.sessions import (
    Session,
    clear_failures,
    csrf_matches,
    end_session,
    load_session,
    record_failure,
    start_session,
    throttled_for,
)

__all__ = [
    "AREAS",
    "COOKIE",
    "EXCEPTION_HANDLERS",
    "MAX_ID",
    "ROUTES",
    "LoginRequired",
    "PageForbidden",
    "allow",
    "current_session",
    "require_session",
    "safe_next",
    "visible_sections",
]

log = logging.getLogger(__name__)

COOKIE = "courriel_session"
LOGIN_CSRF_COOKIE = "courriel_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed here",
           409: "Already there", 413: "Too large", 422: "Cannot use this", 429: "Too many requests",
           500: "Server error", 503: "Not available"}  # fmt: skip
# area -> (role needed to read, role needed to write)
AREAS: dict[str, tuple[str, str]] = {
    "marketing": ("viewer", "marketer"),
    "server": ("owner", "owner"),
    "settings": ("owner", "owner"),
    "session": ("viewer", "viewer"),  # the user's own session (logout, own password)
}


class LoginRequired(HTTPException):
    """No live session: the page handler sends the browser to the login page."""

    status_code = 401


class PageForbidden(HTTPException):
    """The user's role may not do this, or the CSRF token is missing or wrong."""

    status_code = 403


def current_session(request: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    """The session the guard loaded for this request, if any."""
    session = getattr(request.state, "dashboard_session", None)
    return session if isinstance(session, Session) else None


def require_session(request: ASGIConnection[Any, Any, Any, Any]) -> Session:
    """The session of a guarded request (the guard guarantees there is one)."""
    session = current_session(request)
    if session is None:
        raise LoginRequired()
    return session


def visible_sections(admin: Admin | None) -> list[Section]:
    """The navigation entries ``admin`` may open."""
    if admin is None:
        return []
    return [s for s in NAV if admin.at_least(AREAS[s.area][0])]


async def _csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("x-csrf-token")
    if header:
        return header
    if isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await connection.form()
            value = form.get("_csrf")
            return value if isinstance(value, str) else None
    return None


def _check_ids(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Refuse (404) an int path parameter no row can have: ids are 1..2**63-1.

    Without this, ``/campaigns/9223372036854775808`` overflows the database driver (a 500
    on both engines) in whichever handler reads it first.
    """
    for value in connection.path_params.values():
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= MAX_ID:
            raise NotFound("there is no such page")


def _guard(area: str) -> Guard:
    read_role, write_role = AREAS[area]

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        services = connection.app.state[SERVICES_STATE_KEY]
        session = await load_session(
            services.db, connection.cookies.get(COOKIE), now=services.clock()
        )
        if session is None:
            raise LoginRequired()
        connection.state.dashboard_session = session
        safe = connection.scope.get("method", "GET") in SAFE_METHODS
        # The role first: it needs no body, so a refused POST is never read (a viewer's
        # 2 GiB "import" is answered 403 before the server spools a byte of it).
        if not session.admin.at_least(read_role):
            raise PageForbidden(detail="your role cannot open this page")
        if not safe and not session.admin.at_least(write_role):
            raise PageForbidden(detail="your role can read this page but not change it")
        _check_ids(connection)
        if not safe and not csrf_matches(session.csrf_token, await _csrf_token(connection)):
            raise PageForbidden(detail="the form has expired or did not come from this site")

    return guard


def allow(area: str) -> dict[str, Any]:
    """Route-decorator keyword arguments: the dashboard guard of ``area``, HTML errors.

    Raises:
        ValueError: ``area`` is not one of :data:`AREAS` (a programming error).
    """
    if area not in AREAS:
        raise ValueError(f"unknown dashboard area {area!r}")
    return {
        "guards": [_guard(area)],
        "include_in_schema": False,
        "opt": {"dashboard_area": area},
        "exception_handlers": EXCEPTION_HANDLERS,
    }


def safe_next(value: str | None) -> str:
    """A local path to go to after login ("/" when ``value`` is not one)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _login_required(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?next={quote(target, safe='/')}"
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=401, headers={"HX-Redirect": location})
    return Redirect(path=location, status_code=303)


def _forbidden(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    detail = getattr(exc, "detail", "") or "forbidden"
    return page(request, "error.html", status=403, title="Not allowed", message=detail)


def _error_page(
    request: Request[Any, Any, Any], status: int, message: str, headers: Any = None
) -> Response[str]:
    title = _TITLES.get(status, "Error")
    extra = {str(k): str(v) for k, v in dict(headers or {}).items()}
    return page(request, "error.html", status=status, title=title, message=message, headers=extra)


def _invalid_input(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return _error_page(request, 422, str(exc) or "This value cannot be used.")


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return _error_page(request, 404, str(exc) or "There is no such page.")


def _already_exists(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return _error_page(request, 409, str(exc) or "It exists already.")


def _validation(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    # Litestar's own parsing: a repeated form field, a query value of the wrong type. Its
    # messages name the field and the expected type, never the value sent.
    extra = getattr(exc, "extra", None)
    items = [i for i in extra if isinstance(i, dict)] if isinstance(extra, list) else []
    found = [f"{i.get('key') or 'value'}: {i.get('message', 'invalid')}" for i in items]
    body_only = bool(items) and all(i.get("source") == "body" for i in items)
    message = "; ".join(found) or "The request has a value this page cannot read."
    return _error_page(request, 422 if body_only else 400, message)


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", "") or "")
    if status >= 500 or not detail:
        detail = _TITLES.get(status, "Error") if status < 500 else "Something went wrong."
    return _error_page(request, status, detail, getattr(exc, "headers", None))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    # As web/problems.py does for the API: the route template, never the path or query
    # (they may carry addresses or tokens), nor the body; the traceback stays in the log.
    route = request.scope.get("path_template") or "(no route)"
    log.error("unhandled error in dashboard %s %s", request.method, route, exc_info=exc)
    message = "Something went wrong on the server. It has been logged; please try again."
    return _error_page(request, 500, message)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    LoginRequired: _login_required,
    PageForbidden: _forbidden,
    InvalidInput: _invalid_input,
    NotFound: _not_found,
    AlreadyExists: _already_exists,
    ValidationException: _validation,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""Every dashboard route's errors as HTML pages (they override the app's problem JSON)."""


def _secure(services: Any) -> bool:
    return str(services.public_url).startswith("https://")


def _login_page(
    *, next_path: str, token: str, email: str = "", error: str = "", status: int = 200
) -> Response[str]:
    html = render("login.html", next=next_path, login_csrf=token, email=email, error=error)
    return html_response(html, status=status)


@get("/login", include_in_schema=False, sync_to_thread=False, exception_handlers=EXCEPTION_HANDLERS)
def login_form(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The login form, with a fresh double-submit CSRF cookie."""
    token = secrets.token_urlsafe(32)
    response = _login_page(next_path=safe_next(request.query_params.get("next")), token=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(services),
    )
    return response


@post("/login", include_in_schema=False, status_code=303, exception_handlers=EXCEPTION_HANDLERS)
async def login(
    request: Request[Any, Any, Any],
    services: Services,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Check the form; on success start a session and go to ``next``."""
    email = str(data.get("email", ""))[:320]
    password = str(data.get("password", ""))[:1024]
    next_path = safe_next(data.get("next"))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not csrf_matches(cookie_token, data.get("_csrf")):
        return _login_page(
            next_path=next_path,
            token=cookie_token,
            email=email,
            error="The form expired. Please try again.",
            status=403,
        )
    now = services.clock()
    ip = client_ip(request, services.trusted_proxies) or "unknown"
    wait = await throttled_for(services.db, ip=ip, email=email, now=now)
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        return _login_page(
            next_path=next_path,
            token=cookie_token,
            email=email,
            error=f"Too many failed logins. Try again in {minutes} minute(s).",
            status=429,
        )
    admin = await verify_login(
        services.db, services.passwords, email=email, password=password, now=now
    )
    if admin is None:
        await record_failure(services.db, ip=ip, email=email, now=now)
        return _login_page(
            next_path=next_path,
            token=cookie_token,
            email=email,
            error="Wrong email or password.",
            status=401,
        )
    await clear_failures(services.db, email=email)
    token, _ = await start_session(services.db, admin, now=now)
    response: Response[Any] = Redirect(path=next_path, status_code=303)
    response.set_cookie(
        COOKIE, token, path="/", httponly=True, samesite="lax", secure=_secure(services)
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@post("/logout", status_code=303, **allow("session"))
async def logout(request: Request[Any, Any, Any], services: Services) -> Response[Any]:
    """End the session (the guard checked its CSRF token) and go to the login page."""
    await end_session(services.db, require_session(request).id)
    response: Response[Any] = Redirect(path="/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


ROUTES: Sequence[Any] = [login_form, login, logout]
