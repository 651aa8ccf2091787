"""RFC 9457 problem documents: the only shape an HTTP error of courriel takes.

Owns the mapping from :mod:`courriel.errors` (and Litestar's own HTTP exceptions) to
``application/problem+json`` responses, and the exception handlers the app installs.

Invariants:
- A problem document carries ``type``, ``title``, ``status`` and ``detail``; ``field``
  names the offending input when one field is at fault and ``errors`` lists every
  ``{field, detail}`` when several are.
- Nothing internal leaves: an unexpected exception becomes a generic 500 whose traceback
  is logged here and never sent; storage errors are described as "internal error".
- The log names the route template, never the request's path or query (they may carry
  link tokens), nor its headers or body (API keys, webhook payloads).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from courriel.errors import AlreadyExists, AuthError, InvalidInput, NotFound

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "FieldError",
    "Forbidden",
    "ProblemDocument",
    "problem",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# RFC 9457 §4.2.1: "about:blank" means the title is the HTTP status phrase.
_TITLES: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FieldError(msgspec.Struct, kw_only=True):
    """One offending input field (for the OpenAPI description of problems)."""

    field: str
    detail: str


class ProblemDocument(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The shape of every error response (RFC 9457 §3), described in the OpenAPI document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


class Forbidden(HTTPException):
    """The credentials are valid but lack the scope a route needs (HTTP 403).

    Attributes:
        scope: the scope that was missing, put in the ``WWW-Authenticate`` challenge.
    """

    status_code = 403

    def __init__(self, scope: str) -> None:
        super().__init__(detail=f"this API key lacks the scope {scope!r}")
        self.scope = scope


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Response[dict[str, Any]]:
    """Build one RFC 9457 problem response.

    Args:
        status: the HTTP status code.
        detail: a human-readable explanation of this occurrence (RFC 9457 §3.1.4).
        field: the offending input field, when one is at fault (extension member).
        errors: every ``{field, detail}`` pair when several inputs are at fault.
        headers: extra response headers (``WWW-Authenticate``, ``Retry-After``).
        title: overrides the status phrase.

    Returns:
        A response with media type ``application/problem+json``.
    """
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = [dict(e) for e in errors]
    return Response(
        content=body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _invalid_input(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, InvalidInput)
    field = exc.field
    errors = [{"field": field, "detail": str(exc)}] if field else None
    return problem(422, str(exc), field=field, errors=errors)


def _not_found(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return problem(404, str(exc) or "not found")


def _already_exists(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return problem(409, str(exc) or "already exists")


def _auth_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # RFC 6750 §3: a 401 carries the Bearer challenge.
    detail = str(exc) or "missing or invalid API key"
    challenge = 'Bearer realm="courriel"'
    if "invalid" in detail or "revoked" in detail:
        challenge += ', error="invalid_token"'
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def _validation(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, ValidationException)
    errors = _validation_errors(exc.extra)
    if not errors:
        return problem(400, _clean_detail(exc.detail))
    first = errors[0]
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    # A body that decoded but holds bad values is 422; a bad query/path parameter is 400.
    status = 422 if all(e.get("source") == "body" for e in errors) else 400
    clean = [{"field": e["field"], "detail": e["detail"]} for e in errors]
    return problem(status, detail, field=first["field"], errors=clean)


def _validation_errors(extra: Any) -> list[dict[str, str]]:
    if not isinstance(extra, list):
        return []
    found: list[dict[str, str]] = []
    for item in extra:
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message", "invalid value"))
        source = str(item.get("source", ""))
        field = _field_path(item.get("key"), message)
        found.append({"field": field, "detail": message, "source": source})
    return found


_NAMED_FIELD = re.compile(r"(?:unknown|required) field `([^`]+)`")


def _field_path(key: Any, message: str) -> str:
    """A JSON-pointer-like path (``consent/0/channel``) from Litestar's error key.

    Litestar names the body ``data`` and nested fields ``consent[0].channel``; msgspec names
    an unknown or missing field only in its message ("Object contains unknown field `x`").
    """
    parts: list[str] = []
    if isinstance(key, str) and key and key != "data":
        parts = [p for p in re.split(r"[.\[\]]+", key) if p]
    named = _NAMED_FIELD.search(message)
    if named:
        parts.append(named.group(1))
    return "/".join(parts) if parts else "body"


def _clean_detail(detail: str) -> str:
    # Litestar says "Validation failed for POST /path"; the client knows its request.
    return detail if detail and not detail.startswith("Validation failed") else "bad request"


def _http_exception(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, Forbidden):
        # RFC 6750 §3.1: insufficient_scope names the scope the request needs.
        headers["WWW-Authenticate"] = (
            f'Bearer realm="courriel", error="insufficient_scope", scope="{exc.scope}"'
        )
    elif isinstance(exc, NotAuthorizedException) or status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="courriel"')
    detail = exc.detail if status < 500 else "internal error"
    if isinstance(exc.__cause__, SerializationException):
        detail = f"malformed JSON: {detail}"
    return problem(status, detail or _TITLES.get(status, "error"), headers=headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # The route template (/u/confirm/{token}), never the concrete path: paths carry secrets
    # (signed link tokens, webhook names) that must not reach the log. Query strings too.
    route = request.scope.get("path_template") or "(no route)"
    log.error("unhandled error in %s %s", request.method, route, exc_info=exc)
    return problem(500, "internal error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InvalidInput: _invalid_input,
    NotFound: _not_found,
    AlreadyExists: _already_exists,
    AuthError: _auth_error,
    ValidationException: _validation,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
