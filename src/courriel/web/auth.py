"""Bearer API-key authentication and per-route scopes for the REST API.

Usage on a route handler (the keyword arguments add the guard and the OpenAPI security
requirement)::

    @get("/api/v1/contacts", **requires("contacts:read"))
    async def search(services: WebServices) -> ...: ...

Invariants:
- Missing or malformed ``Authorization``, unknown or revoked key → 401 with a
  ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3); a live key without the route's
  scope → 403 ``insufficient_scope`` (RFC 6750 §3.1). The key is never logged.
- The verified key is put in ``request.state.api_key`` for handlers that want its name.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Guard

from courriel.errors import AuthError
from courriel.marketing.apikeys import SCOPES, ApiKeyInfo, verify_key
from courriel.web.problems import PROBLEM_JSON, Forbidden, ProblemDocument

__all__ = ["SERVICES_STATE_KEY", "bearer_token", "current_key", "requires"]

_PROBLEM_RESPONSES = {
    status: ResponseSpec(
        data_container=ProblemDocument,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )
    for status, description in (
        (401, "Missing, unknown or revoked API key"),
        (403, "The API key lacks the scope of this route"),
        (422, "Invalid input; `field` names it"),
    )
}

# create_app stores the WebServices in app.state under this key (guards get no DI).
SERVICES_STATE_KEY = "courriel_services"


def bearer_token(header: str | None) -> str:
    """The credentials of an ``Authorization: Bearer <token>`` header.

    Raises:
        AuthError: the header is missing or is not a Bearer credential.
    """
    if not header:
        raise AuthError("missing API key: send Authorization: Bearer <key>")
    # RFC 9110 §11.1: the auth-scheme is case-insensitive; RFC 6750 §2.1: "Bearer" 1*SP token.
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("malformed Authorization header: expected Bearer <key>")
    return token


def _guard_for(scope: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        services = connection.app.state[SERVICES_STATE_KEY]
        token = bearer_token(connection.headers.get("authorization"))
        info = await verify_key(services.db, token, now=services.clock())
        if info is None:
            raise AuthError("invalid or revoked API key")
        if not info.allows(scope):
            raise Forbidden(scope)
        connection.state.api_key = info

    return guard


def requires(scope: str) -> dict[str, Any]:
    """Route-decorator keyword arguments that demand a key granting ``scope``.

    Raises:
        ValueError: ``scope`` is not a known scope (a programming error, caught at import).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {
        "guards": [_guard_for(scope)],
        "security": [{"bearer": []}],
        "opt": {"scope": scope},
        "responses": _PROBLEM_RESPONSES,
    }


def current_key(state: Any) -> ApiKeyInfo | None:
    """The key a guard verified for this request (``request.state``), if any."""
    info = getattr(state, "api_key", None)
    return info if isinstance(info, ApiKeyInfo) else None
