"""The logged-in user's own page: who they are, their role, and changing their password.

Invariants:
- The current password is checked like a login is: throttled per email and client address
  (:func:`~courriel.web.dashboard.sessions.throttled_for`), a wrong one counted as a failed
  login; the check is not a login, so ``last_login_at`` stays.
- A changed password ends every other session of the user; this one stays.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from courriel.errors import InvalidInput
from courriel.web.app import Services
from courriel.web.clientip import client_ip
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.admins import check_password, set_password
from courriel.web.dashboard.render import page
from courriel.web.dashboard.sessions import (
    clear_failures,
    end_sessions,
    record_failure,
    throttled_for,
)

__all__ = ["ROUTES"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _me(request: Request[Any, Any, Any], *, status: int = 200, **context: Any) -> Response[str]:
    return page(request, "settings/me.html", status=status, title="Your account", **context)


@get("/settings/me", **allow("session"))
async def me(request: Request[Any, Any, Any]) -> Response[str]:
    """The user's own page."""
    return _me(request)


@post("/settings/me/password", **allow("session"))
async def change_password(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Change the user's password after checking the current one; end other sessions."""
    session = require_session(request)
    email = session.admin.email
    now = services.clock()
    ip = client_ip(request, services.trusted_proxies) or "unknown"
    wait = await throttled_for(services.db, ip=ip, email=email, now=now)
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        return _me(
            request,
            status=429,
            error=f"Too many wrong passwords. Try again in {minutes} minute(s).",
        )
    current = str(data.get("current", ""))[:1024]
    if not await check_password(services.db, services.passwords, email=email, password=current):
        await record_failure(services.db, ip=ip, email=email, now=now)
        return _me(request, status=422, error="The current password is wrong.")
    await clear_failures(services.db, email=email)
    try:
        admin = await set_password(
            services.db, services.passwords, email, str(data.get("new", ""))[:1024]
        )
    except InvalidInput as exc:
        return _me(request, status=422, error=str(exc))
    ended = await end_sessions(services.db, admin.id, keep=session.id)
    done = "Password changed."
    if ended:
        done += f" {ended} other session(s) ended."
    return _me(request, done=done)


ROUTES = [me, change_password]
