"""The logged-in user's own page: who they are, their role, and changing their password."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from courriel.errors import InvalidInput
from courriel.web.app import Services
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.admins import set_password, verify_login
from courriel.web.dashboard.render import page

__all__ = ["ROUTES"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/settings/me", **allow("session"))
async def me(request: Request[Any, Any, Any]) -> Response[str]:
    """The user's own page."""
    return page(request, "settings/me.html", title="Your account", active="")


@post("/settings/me/password", **allow("session"))
async def change_password(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Change the user's password after checking the current one."""
    admin = require_session(request).admin
    current = await verify_login(
        services.db,
        services.passwords,
        email=admin.email,
        password=str(data.get("current", "")),
        now=services.clock(),
    )
    if current is None:
        return page(
            request,
            "settings/me.html",
            status=422,
            title="Your account",
            error="The current password is wrong.",
        )
    try:
        await set_password(services.db, services.passwords, admin.email, str(data.get("new", "")))
    except InvalidInput as exc:
        return page(request, "settings/me.html", status=422, title="Your account", error=str(exc))
    return page(request, "settings/me.html", title="Your account", done="Password changed.")


ROUTES = [me, change_password]
