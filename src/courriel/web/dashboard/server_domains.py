"""``/server/domains``: local domains, their DNS records and a live check of DNS (owner).

Calls what ``courriel domain add|list|remove|dns`` calls: the mail store for the domains,
:mod:`courriel.delivery.dkimkeys` for the DKIM keys, the records and their check.

Invariants:
- Adding a domain also gives it its DKIM keys (``ensure_keys``), as the CLI does; the
  domain page never writes (a domain without keys shows no DKIM record until re-added
  or ``courriel domain dns`` runs).
- The live check is a separate htmx fragment, so the page never waits on DNS; a resolver
  failure (timeout, SERVFAIL, none configured) reads "could not check", never a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.delivery.dkimkeys import RecordCheck, check_records, dns_records, ensure_keys
from courriel.errors import AlreadyExists, DnsError, InvalidInput, NotFound
from courriel.web.app import Services
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded, need, notice

__all__ = ["ROUTES"]

_NOTICES = {"removed": "Domain removed: mail to it is no longer accepted."}
_LABELS = {
    "OK": "published",
    "MISSING": "missing",
    "DIFFERENT": "different",
    "ERROR": "could not check",
}


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    domains = await need(services.mailstore, "mail store").list_domains()
    context.setdefault("domain_name", "")
    return page(
        request,
        "server/domains.html",
        status=status,
        active="domains",
        title="Domains",
        domains=domains,
        **context,
    )


@get("/server/domains", **guarded("server"))
async def domains_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Every local domain and the form to add one."""
    return await _list_page(request, services, done=notice(request, _NOTICES))


@post("/server/domains", **guarded("server"))
async def add_domain(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Make a domain local and give it DKIM keys; then show its records."""
    name = field(data, "name", limit=260)
    try:
        info = await need(services.mailstore, "mail store").add_domain(name)
    except (InvalidInput, AlreadyExists) as exc:
        return await _list_page(request, services, status=422, error=str(exc), domain_name=name)
    await ensure_keys(services.db, info.name, today=services.clock().date())
    return Redirect(path=f"/server/domains/{quote(info.name)}?added=1", status_code=303)


async def _records(services: Services, name: str) -> list[Any]:
    try:
        return await dns_records(services.db, name, hostname=services.hostname or "localhost")
    except InvalidInput as exc:  # not a domain name: no such page
        raise NotFound(f"no local domain {name!r}") from exc


@get("/server/domains/{name:str}", **guarded("server"))
async def domain_page(
    request: Request[Any, Any, Any], services: Services, name: FromPath[str]
) -> Response[str]:
    """One domain: the DNS records to publish, and a placeholder the live check fills."""
    records = await _records(services, name)
    domain = records[0].name
    return page(
        request,
        "server/domain.html",
        active="domains",
        title=f"Domain {domain}",
        domain=domain,
        records=records,
        hostname=services.hostname or "localhost",
        added=bool(request.query_params.get("added")),
        error="",
    )


@get("/server/domains/{name:str}/check", **guarded("server"))
async def domain_check(
    request: Request[Any, Any, Any], services: Services, name: FromPath[str]
) -> Response[str]:
    """What DNS says now about each record (an htmx fragment; a full page without htmx)."""
    records = await _records(services, name)
    checks: list[RecordCheck] = []
    problem = ""
    if services.resolver is None:
        problem = "this node has no DNS resolver configured"
    else:
        try:
            checks = await check_records(services.resolver, records)
        except DnsError as exc:
            problem = str(exc)
    return page(
        request,
        "server/domain_check.html",
        active="domains",
        title=f"DNS check of {records[0].name}",
        domain=records[0].name,
        checks=checks,
        problem=problem,
        labels=_LABELS,
    )


@post("/server/domains/{name:str}/remove", **guarded("server"))
async def remove_domain(
    request: Request[Any, Any, Any], services: Services, name: FromPath[str], data: Form
) -> Response[Any]:
    """Stop accepting mail for a domain (refused while in use, unless forced)."""
    force = field(data, "force") == "yes"
    store = need(services.mailstore, "mail store")
    try:
        await store.remove_domain(name, force=force)
    except InvalidInput as exc:
        records = await _records(services, name)
        return page(
            request,
            "server/domain.html",
            status=422,
            active="domains",
            title=f"Domain {records[0].name}",
            domain=records[0].name,
            records=records,
            hostname=services.hostname or "localhost",
            added=False,
            error=str(exc),
        )
    return Redirect(path="/server/domains?done=removed", status_code=303)


ROUTES = [domains_page, add_domain, domain_page, domain_check, remove_domain]
