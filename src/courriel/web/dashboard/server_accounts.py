"""``/server/accounts``: mailbox accounts, listed per domain, added, re-passworded, removed.

Calls the mail store as ``courriel account add|list|passwd|remove`` does. Passwords come
only in POST bodies, are never logged and never put back into a page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.web.app import Services
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, need, notice

__all__ = ["ROUTES"]

_NOTICES = {
    "added": "Account added.",
    "removed": "Account removed with its mail.",
    "password": "Password changed.",
}


async def _list_page(
    request: Request[Any, Any, Any],
    services: Services,
    *,
    domain: str = "",
    status: int = 200,
    **context: Any,
) -> Response[str]:
    store = need(services.mailstore, "mail store")
    try:
        accounts = await store.list_accounts(domain or None)
    except (InvalidInput, NotFound):
        accounts = []
    context.setdefault("address", "")
    context.setdefault("error", "")
    context.setdefault("done", "")
    return page(
        request,
        "server/accounts.html",
        status=status,
        active="accounts",
        title="Accounts",
        accounts=accounts,
        domains=await store.list_domains(),
        domain=domain,
        **context,
    )


@get("/server/accounts", **guarded("server"))
async def accounts_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The accounts (of one domain with ``?domain=``) and the form to add one."""
    domain = request.query_params.get("domain", "").strip().lower()[:255]
    return await _list_page(request, services, domain=domain, done=notice(request, _NOTICES))


@post("/server/accounts", **guarded("server"))
async def add_account(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Create an account with its password (its domain must be local)."""
    address = field(data, "address", limit=320)
    password = str(data.get("password", ""))[:1024]
    try:
        if not password:
            raise InvalidInput("give the account a password", field="password")
        await need(services.mailstore, "mail store").add_account(address, password)
    except (InvalidInput, AlreadyExists, NotFound) as exc:
        return await _list_page(request, services, status=422, error=str(exc), address=address)
    return Redirect(path="/server/accounts?done=added", status_code=303)


@post("/server/accounts/{address:str}/password", **guarded("server"))
async def change_password(
    request: Request[Any, Any, Any], services: Services, address: FromPath[str], data: Form
) -> Response[Any]:
    """Replace an account's password."""
    password = str(data.get("password", ""))[:1024]
    try:
        if not password:
            raise InvalidInput("the new password is empty", field="password")
        await need(services.mailstore, "mail store").set_password(address, password)
    except InvalidInput as exc:
        return await _list_page(request, services, status=422, error=f"{address}: {exc}")
    return Redirect(path="/server/accounts?done=password", status_code=303)


@post("/server/accounts/{address:str}/remove", **guarded("server"))
async def remove_account(services: Services, address: FromPath[str]) -> Response[Any]:
    """Remove an account with all its mail."""
    await need(services.mailstore, "mail store").remove_account(address)
    return Redirect(path="/server/accounts?done=removed", status_code=303)


ROUTES = [accounts_page, add_account, change_password, remove_account]
