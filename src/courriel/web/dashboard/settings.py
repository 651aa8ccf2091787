"""Settings (owner only): API keys made and revoked, and the dashboard's users.

The same functions as ``courriel apikey …`` (marketing/apikeys.py) and ``courriel admin
…`` (web/dashboard/admins.py). A new API key is shown once, on the page that answers its
creation; only its prefix is shown afterwards.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.apikeys import ALL_SCOPES, SCOPES, create_key, list_keys, revoke_key
from courriel.web.app import Services
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.admins import ROLES, create_admin, list_admins, remove_admin, set_role
from courriel.web.dashboard.render import page

__all__ = ["ROUTES"]

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _settings(
    request: Request[Any, Any, Any], services: Any, *, status: int = 200, **context: Any
) -> Response[str]:
    return page(
        request,
        "settings/index.html",
        status=status,
        active="settings",
        title="Settings",
        keys=await list_keys(services.db),
        users=await list_admins(services.db),
        scopes=sorted(SCOPES),
        roles=ROLES,
        **context,
    )


@get("/settings", **allow("settings"))
async def settings_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """API keys and dashboard users."""
    return await _settings(request, services)


def _scopes(data: dict[str, Any]) -> list[str]:
    chosen = data.get("scopes", [])
    scopes = [chosen] if isinstance(chosen, str) else list(chosen)
    return [ALL_SCOPES] if data.get("all_scopes") else scopes


@post("/settings/keys", **allow("settings"))
async def add_key(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Make an API key; the page shows its secret once."""
    form = await request.form()
    data = {"name": form.get("name", ""), "scopes": form.getall("scopes", [])}
    if form.get("all_scopes"):
        data["all_scopes"] = "1"
    try:
        info, secret = await create_key(
            services.db, str(data["name"]).strip(), _scopes(data), now=services.clock()
        )
    except (InvalidInput, AlreadyExists) as exc:
        return await _settings(request, services, status=422, key_error=str(exc))
    return await _settings(request, services, new_key=secret, new_key_name=info.name)


@post("/settings/keys/{name:str}/revoke", **allow("settings"))
async def revoke(
    request: Request[Any, Any, Any], services: Services, name: FromPath[str]
) -> Response[str]:
    """Revoke an API key (it never verifies again)."""
    try:
        live = await revoke_key(services.db, name, now=services.clock())
    except NotFound as exc:
        return await _settings(request, services, status=404, key_error=str(exc))
    done = f"API key {name} revoked." if live else f"API key {name} was revoked already."
    return await _settings(request, services, done=done)


@post("/settings/users", **allow("settings"))
async def add_user(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Add a dashboard user with a role and a first password."""
    try:
        user = await create_admin(
            services.db,
            services.passwords,
            email=str(data.get("email", "")),
            password=str(data.get("password", "")),
            role=str(data.get("role", "")),
            now=services.clock(),
        )
    except (InvalidInput, AlreadyExists) as exc:
        return await _settings(request, services, status=422, user_error=str(exc))
    return await _settings(request, services, done=f"{user.email} added ({user.role}).")


@post("/settings/users/role", **allow("settings"))
async def change_role(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Give a user another role (the last owner keeps theirs)."""
    try:
        user = await set_role(services.db, str(data.get("email", "")), str(data.get("role", "")))
    except (InvalidInput, NotFound) as exc:
        return await _settings(request, services, status=422, user_error=str(exc))
    return await _settings(request, services, done=f"{user.email} is now {user.role}.")


@post("/settings/users/remove", **allow("settings"))
async def remove_user(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[str]:
    """Remove a user and their sessions (not yourself, not the last owner)."""
    email = str(data.get("email", ""))
    if email.strip().lower() == require_session(request).admin.email:
        return await _settings(
            request, services, status=422, user_error="you cannot remove yourself"
        )
    try:
        await remove_admin(services.db, email)
    except (InvalidInput, NotFound) as exc:
        return await _settings(request, services, status=422, user_error=str(exc))
    return await _settings(request, services, done=f"{email.strip().lower()} removed.")


ROUTES = [settings_page, add_key, revoke, add_user, change_role, remove_user]
