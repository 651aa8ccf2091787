"""Public routes of campaign mail: ``/o/`` open pixel, ``/c/`` click, ``/u/`` unsubscribe,
``/p/`` preference centre, ``/v/`` view in browser (thin: what they record and render is
:mod:`courriel.marketing.campaigns`'s).

Tokens are :class:`courriel.marketing.campaigns.tokens.Links` tokens, signed with the
fleet's link key (``WebServices.links``); nothing is looked up before the MAC matched.

Invariants:
- **No open redirect.** ``/c/`` redirects only to the http(s) URL inside a valid token; a
  tampered, foreign or unsigned token is a 400 problem, never a redirect.
- **GET never unsubscribes** (mail scanners and link previews fetch every link). ``POST
  /u/<token>`` does, whatever its body: RFC 8058 §3.2 one-click POSTs carry the body
  ``List-Unsubscribe=One-Click`` and no cookie, and the form's own POST carries no CSRF
  token either; the signed token is the authorisation.
- Pages a person reads are HTML (Jinja, autoescaped), never problem JSON; a bad link is a
  400 page that names nothing. A valid link whose rows are gone (campaign deleted,
  contact forgotten) still gets its page or redirect and records nothing.
- The pixel and redirects are ``Cache-Control: no-store, private`` so that every fetch
  reaches us; pages are ``no-store`` and send no Referer.
- ``/v/`` answers the copy's own HTML under a Content-Security-Policy that loads images
  and inline styles only (no script, no frame, no form, no plugin), never cached nor
  indexed; it is rendered without the open pixel, so a view is never counted as an open.
- The IP recorded (consent proof, prefetch detection) is
  :func:`courriel.web.clientip.client_ip`'s. Nothing here is rate limited: the routes only
  accept MAC-checked tokens, every write is idempotent or a counter, and the tracker's
  per-client limiter would break clicks from large NATs and Gmail's image proxy.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.preferences import (
    PreferenceChange,
    Preferences,
    apply_preferences,
    load_preferences,
)
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.campaigns.sender import SenderSettings
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.campaigns.tracking import record_click, record_open, unsubscribe
from courriel.marketing.campaigns.view import render_copy_html
from courriel.marketing.lists import OptIn, send_outbox
from courriel.web.app import Services, WebServices
from courriel.web.clientip import client_ip
from courriel.web.problems import problem

__all__ = ["PIXEL", "ROUTES"]

_Req = Request[Any, Any, Any]
# The smallest transparent GIF: 1x1, one-colour palette, transparency extension (43 octets).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = {"Cache-Control": "no-store, private"}
_PAGE_HEADERS = {
    "Cache-Control": "no-store, private",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

_TEMPLATES = {
    "base": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
button{font-size:1.1rem;padding:.6rem 1.2rem}label{display:block;margin:.4rem 0}</style>
</head><body><h1>{{ title }}</h1>{% block body %}{% endblock %}</body></html>
""",
    "invalid": """{% extends "base" %}{% block body %}
<p>This link is not valid. Use the link in the most recent email you received.</p>
{% endblock %}""",
    "unsubscribe": """{% extends "base" %}{% block body %}
<form method="post" action="{{ action }}">
{% if email %}<p>Unsubscribe <strong>{{ email }}</strong> from {{ shop }}'s emails?</p>
{% else %}<p>Unsubscribe from {{ shop }}'s emails?</p>{% endif %}
<button type="submit">Unsubscribe</button></form>
<p><a href="{{ preferences }}">Choose which emails you get instead</a></p>
{% endblock %}""",
    "unsubscribed": """{% extends "base" %}{% block body %}
<p>{% if email %}<strong>{{ email }}</strong> will{% else %}You will{% endif %}
no longer receive marketing emails from {{ shop }}.</p>
<p><a href="{{ preferences }}">Manage your preferences</a></p>
{% endblock %}""",
    "preferences": """{% extends "base" %}{% block body %}
{% if saved %}<p role="status">Your preferences are saved.</p>{% endif %}
<form method="post" action="{{ action }}"><p>Emails to <strong>{{ prefs.email }}</strong></p>
<label><input type="checkbox" name="email" value="on"{% if prefs.email_on %} checked{% endif %}>
Marketing emails from {{ shop }}</label>
{% if prefs.sms_status is not none %}<label><input type="checkbox" name="sms" value="on"
{% if prefs.sms_status in ("subscribed", "pending") %} checked{% else %} disabled{% endif %}>
Text messages</label>{% endif %}
{% if prefs.lists %}<fieldset><legend>Lists</legend>{% for item in prefs.lists %}
<label><input type="checkbox" name="list" value="{{ item.list_id }}"
{% if item.status in ("subscribed", "pending") %} checked{% endif %}> {{ item.name }}
{% if item.status == "pending" %}(awaiting your confirmation){% endif %}</label>
{% endfor %}</fieldset>{% endif %}
<button type="submit">Save</button></form>
{% endblock %}""",
    "view_gone": """{% extends "base" %}{% block body %}
<p>{% if transactional %}This message cannot be shown in a browser: {{ shop }} does not keep
a copy of account and order emails once they are sent. The email itself has everything it
said.{% else %}This email is no longer available.{% endif %}</p>
{% endblock %}""",
    "gone": """{% extends "base" %}{% block body %}
<p>There is nothing left to manage for this email: you receive no more mail from {{ shop }}
through it.</p>{% endblock %}""",
}
_ENV = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _links(services: WebServices) -> Links:
    return Links(services.links, services.public_url)


def _shop(services: WebServices) -> str:
    return services.shop_name or "this shop"


def _page(name: str, title: str, status: int = 200, **values: Any) -> Response[str]:
    content = _ENV.get_template(name).render(title=title, **values)
    return Response(content, status_code=status, media_type=MediaType.HTML, headers=_PAGE_HEADERS)


def _invalid() -> Response[str]:
    return _page("invalid", "This link cannot be used", status=400)


def _read(services: WebServices, purpose: str, token: str) -> tuple[Ref, dict[str, object]] | None:
    try:
        return _links(services).read(purpose, token)
    except InvalidInput:
        return None


# -- open and click ---------------------------------------------------------------------


@get("/o/{token:str}", include_in_schema=False)
async def open_pixel(services: Services, token: FromPath[str], request: _Req) -> Response[Any]:
    """The open pixel: a transparent GIF, recorded as an open (or an MPP prefetch)."""
    read = _read(services, "open", token)
    if read is None:
        return problem(400, "the link is not valid", field="token")
    ip = client_ip(request, services.trusted_proxies)
    agent = request.headers.get("user-agent")
    await record_open(services.db, read[0], user_agent=agent, ip=ip, now=services.clock())
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


@get("/c/{token:str}", include_in_schema=False)
async def click(services: Services, token: FromPath[str], request: _Req) -> Response[Any]:
    """Record a click and redirect (302) to the signed target."""
    read = _read(services, "click", token)
    if read is None:
        return problem(400, "the link is not valid", field="token")
    ref, payload = read
    target = str(payload["u"])  # Links.read checked it is an http(s) URL
    ip = client_ip(request, services.trusted_proxies)
    agent = request.headers.get("user-agent")
    await record_click(services.db, ref, target, user_agent=agent, ip=ip, now=services.clock())
    return Response(
        b"", status_code=302, headers={**_NO_STORE, "Location": target, "Referrer-Policy": "origin"}
    )


# -- unsubscribe ------------------------------------------------------------------------


async def _email_of(services: WebServices, ref: Ref) -> str | None:
    async with services.db.read() as conn:
        try:
            who = await conn.run_sync(lambda c: stats.recipient(c, ref))
        except NotFound:
            return None
    return who.email


@get("/u/{token:str}", include_in_schema=False)
async def unsubscribe_page(services: Services, token: FromPath[str]) -> Response[str]:
    """Ask to confirm (changes nothing: scanners fetch links)."""
    read = _read(services, "unsubscribe", token)
    if read is None:
        return _invalid()
    ref = read[0]
    return _page(
        "unsubscribe",
        "Unsubscribe",
        action=f"/u/{token}",
        email=await _email_of(services, ref),
        shop=_shop(services),
        preferences=_links(services).preferences_url(ref),
    )


async def _one_click(request: _Req) -> bool:
    # Any body unsubscribes (even one that does not parse): only the proof's method differs.
    try:
        form = await request.form()
    except Exception:
        return False
    return str(form.get("List-Unsubscribe", "")) == "One-Click"


@post("/u/{token:str}", include_in_schema=False, status_code=200)
async def unsubscribe_action(
    services: Services, token: FromPath[str], request: _Req
) -> Response[str]:
    """Unsubscribe: the RFC 8058 one-click POST and the confirmation form's POST."""
    read = _read(services, "unsubscribe", token)
    if read is None:
        return _invalid()
    ref = read[0]
    # RFC 8058 §3.1: the one-click body is exactly "List-Unsubscribe=One-Click".
    method = "one_click" if await _one_click(request) else "unsubscribe_link"
    ip = client_ip(request, services.trusted_proxies)
    who = await unsubscribe(services.db, ref, method=method, ip=ip, now=services.clock())
    return _page(
        "unsubscribed",
        "You are unsubscribed",
        email=None if who is None else who.email,
        shop=_shop(services),
        preferences=_links(services).preferences_url(ref),
    )


# -- preference centre ------------------------------------------------------------------


def _preferences_page(
    services: WebServices, token: str, prefs: Preferences | None, *, saved: bool = False
) -> Response[str]:
    if prefs is None:
        return _page("gone", "Your preferences", shop=_shop(services))
    return _page(
        "preferences",
        "Your preferences",
        action=f"/p/{token}",
        prefs=prefs,
        shop=_shop(services),
        saved=saved,
    )


@get("/p/{token:str}", include_in_schema=False)
async def preferences_page(services: Services, token: FromPath[str]) -> Response[str]:
    """The contact's lists and channels, as a form."""
    read = _read(services, "preferences", token)
    if read is None:
        return _invalid()
    async with services.db.read() as conn:
        prefs = await load_preferences(conn, read[0])
    return _preferences_page(services, token, prefs)


async def _change(request: _Req) -> PreferenceChange:
    form = await request.form()
    ticked: set[int] = set()
    for value in form.getall("list", []):
        text = str(value)
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise InvalidInput("not one of your lists", field="lists")
        ticked.add(int(text))
    return PreferenceChange(
        email=form.get("email") == "on", sms=form.get("sms") == "on", lists=frozenset(ticked)
    )


@post("/p/{token:str}", include_in_schema=False, status_code=200)
async def preferences_action(
    services: Services, token: FromPath[str], request: _Req
) -> Response[str]:
    """Apply the form (one transaction), then send any list confirmation mail."""
    read = _read(services, "preferences", token)
    if read is None:
        return _invalid()
    ip = client_ip(request, services.trusted_proxies)
    optin = OptIn(links=services.links, public_url=services.public_url, sender=services.mail_sender)
    outbox: list[Any] = []
    try:
        change = await _change(request)
        async with services.db.write() as conn:
            prefs = await apply_preferences(
                conn, read[0], change, ip=ip, now=services.clock(), optin=optin, outbox=outbox
            )
    except InvalidInput:
        return _invalid()
    await send_outbox(services.mailer, outbox)
    return _preferences_page(services, token, prefs, saved=True)


# -- view in browser -------------------------------------------------------------------

# Mail HTML needs images (any https/http host, inline data) and inline styles; nothing else
# may load or run: no script, frame, form target, plugin or base URL.
_VIEW_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https: data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_VIEW_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": _VIEW_CSP,
}


def _view_settings(services: WebServices) -> SenderSettings:
    return SenderSettings(
        open_pixel=False, shop_name=services.shop_name, shop_address=services.shop_address
    )


@get("/v/{token:str}", include_in_schema=False)
async def view_in_browser(services: Services, token: FromPath[str]) -> Response[str]:
    """The copy's HTML, rendered again as the sender did (without the open pixel)."""
    read = _read(services, "view", token)
    if read is None:
        return _invalid()
    ref = read[0]
    factory = services.renderer_factory or renderer_factory(
        {"name": services.shop_name, "address": services.shop_address}
    )
    content = await render_copy_html(
        services.db,
        ref,
        links=_links(services),
        renderer_factory=factory,
        recommender=services.recommender,
        settings=_view_settings(services),
        now=services.clock(),
    )
    if content is None:
        title = "This email cannot be shown"
        transactional = ref.kind == "t"
        return _page("view_gone", title, 404, shop=_shop(services), transactional=transactional)
    # Litestar adds "; charset=utf-8" to text media types.
    return Response(content, media_type=MediaType.HTML, headers=_VIEW_HEADERS)


ROUTES: list[ControllerRouterHandler] = [
    open_pixel,
    click,
    unsubscribe_page,
    unsubscribe_action,
    preferences_page,
    preferences_action,
    view_in_browser,
]
