"""Dashboard access: login, sessions, CSRF, roles, rate limiting, logout."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from litestar import get
from litestar.exceptions import NotFoundException
from tests.integration.web.dashboard.conftest import PASSWORD, Users, log_in, login_csrf

from courriel.web.app import create_app
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.admins import list_admins


async def test_login_sets_a_session_and_redirects_to_next(users: Users) -> None:
    email = await users.add("viewer")
    client = users.client()
    anonymous = await client.get("/settings/me")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/settings/me"
    form = await client.get("/login?next=/settings/me")
    response = await client.post(
        "/login",
        data={
            "email": email.upper(),
            "password": PASSWORD,
            "_csrf": login_csrf(form.text),
            "next": "/settings/me",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/me"
    cookie = response.headers["set-cookie"]
    assert "courriel_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/settings/me")
    assert page.status_code == 200 and email in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", "x"])
async def test_next_is_never_an_open_redirect(users: Users, target: str) -> None:
    email = await users.add("viewer")
    client = users.client()
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "_csrf": login_csrf(form.text), "next": target},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_wrong_password_and_unknown_user_get_the_same_answer(users: Users) -> None:
    email = await users.add("owner")
    client = users.client()
    wrong = await log_in(client, email, "not the password")
    unknown = await log_in(client, "nobody@shop.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert "courriel_session" not in wrong.headers.get("set-cookie", "")


async def test_login_form_needs_its_csrf_cookie(users: Users) -> None:
    email = await users.add("owner")
    client = users.client()
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "_csrf": "forged", "next": "/"}
    )
    assert response.status_code == 403
    assert "courriel_session" not in response.headers.get("set-cookie", "")


async def test_a_malformed_login_form_gets_an_html_page(users: Users) -> None:
    client = users.client()
    response = await client.post(
        "/login",
        content="email=a@shop.test&email=b@shop.test&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("text/html")
    assert "courriel_session" not in response.headers.get("set-cookie", "")


async def test_failed_logins_are_rate_limited_per_email(users: Users) -> None:
    email = await users.add("owner")
    client = users.client()
    for _ in range(5):
        assert (await log_in(client, email, "wrong password!")).status_code == 401
    refused = await log_in(client, email)  # the right password, too late
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.text
    users.services.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    assert (await log_in(client, email)).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(users: Users) -> None:
    browser = await users.login("owner")
    response = await browser.client.post(
        "/settings/me/password", data={"current": PASSWORD, "new": "another long one"}
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    wrong = await browser.client.post(
        "/settings/me/password",
        data={"_csrf": "x" + browser.csrf[1:], "current": PASSWORD, "new": "another long one"},
    )
    assert wrong.status_code == 403
    ok = await browser.post(
        "/settings/me/password", {"current": PASSWORD, "new": "another long one"}
    )
    assert ok.status_code == 200 and "Password changed." in ok.text
    header = await browser.client.post(
        "/settings/me/password",
        data={"current": "another long one", "new": "a third long one"},
        headers={"X-CSRF-Token": browser.csrf},
    )
    assert header.status_code == 200


async def test_logout_ends_the_session(users: Users) -> None:
    browser = await users.login("viewer")
    stolen = dict(browser.client.cookies)
    response = await browser.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    again = users.client()
    again.cookies.update(stolen)
    assert (await again.get("/settings/me")).status_code == 303


async def test_htmx_requests_without_a_session_get_hx_redirect(users: Users) -> None:
    client = users.client()
    response = await client.get("/settings/me", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/settings/me"


async def test_sessions_expire_when_idle(users: Users) -> None:
    browser = await users.login("owner")
    users.services.clock.advance(timedelta(hours=13))  # type: ignore[attr-defined]
    assert (await browser.get("/settings/me")).status_code == 303


def test_every_dashboard_route_is_guarded(users: Users) -> None:
    """Every route outside the API and public prefixes carries the dashboard guard."""
    public = (
        "/api/",
        "/hooks/",
        "/t/",
        "/u/",
        "/o/",
        "/c/",
        "/p/",
        "/v/",
        "/assets",
        "/.well-known/",
        "/mail/",
    )
    unguarded = []
    for route in users.app.routes:
        if route.path.startswith(public) or route.path in ("/login", "/api/v1/openapi.json"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.handler_name.endswith("options_handler"):
                continue  # Litestar's automatic OPTIONS answer
            if "dashboard_area" not in handler.opt:
                unguarded.append((route.path, handler.handler_name))
    assert unguarded == []


async def test_a_password_change_ends_the_users_other_sessions(users: Users) -> None:
    browser = await users.login("marketer")
    other = users.client()  # the same user on another device (or a stolen cookie)
    assert (await log_in(other, browser.email)).status_code == 303
    someone_else = await users.login("marketer")
    changed = await browser.post(
        "/settings/me/password", {"current": PASSWORD, "new": "a brand new password"}
    )
    assert changed.status_code == 200 and "1 other session(s) ended." in changed.text
    assert (await browser.get("/settings/me")).status_code == 200  # this one stays
    assert (await other.get("/settings/me")).status_code == 303  # to the login page
    assert (await someone_else.get("/settings/me")).status_code == 200


async def test_the_current_password_check_is_throttled_and_is_no_login(users: Users) -> None:
    browser = await users.login("viewer")
    before = next(u for u in await list_admins(users.services.db) if u.email == browser.email)
    users.services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    for _ in range(5):
        wrong = await browser.post(
            "/settings/me/password", {"current": "a guess of mine", "new": "whatever long"}
        )
        assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    right = await browser.post(
        "/settings/me/password", {"current": PASSWORD, "new": "whatever long"}
    )
    assert right.status_code == 429 and "Too many wrong passwords" in right.text
    assert (await log_in(users.client(), browser.email)).status_code == 429  # shared count
    users.services.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    ok = await browser.post("/settings/me/password", {"current": PASSWORD, "new": "whatever long"})
    assert ok.status_code == 200 and "Password changed." in ok.text
    after = next(u for u in await list_admins(users.services.db) if u.email == browser.email)
    assert after.last_login_at == before.last_login_at  # checking a password is not a login


async def test_a_refused_role_is_answered_before_the_body_is_read(users: Users) -> None:
    """A viewer's multipart POST gets 403 without the server pulling the upload."""
    viewer = await users.login("viewer")
    pulled: list[int] = []
    boundary = "b0und4ry"

    async def upload() -> AsyncIterator[bytes]:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n'
            f"{viewer.csrf}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\nemail\r\n'
        )
        pulled.append(1)
        yield head.encode()
        for _ in range(64):
            pulled.append(1)
            yield b"x@shop.test\r\n" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await viewer.client.post(
        "/contacts/import",
        content=upload(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 403
    assert "your role can read this page but not change it" in response.text
    assert pulled == []


async def test_a_marketer_still_needs_the_csrf_token(users: Users) -> None:
    marketer = await users.login("marketer")
    response = await marketer.client.post("/segments/1/delete", data={"_csrf": "forged"})
    assert response.status_code == 403 and "did not come from this site" in response.text


TOO_BIG = "9223372036854775808"  # 2**63: overflows a BIGINT on both engines


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", f"/contacts/{TOO_BIG}"),
        ("GET", f"/campaigns/{TOO_BIG}"),
        ("GET", f"/segments/{TOO_BIG}"),
        ("GET", f"/templates/{TOO_BIG}/edit"),
        ("GET", f"/server/queue/{TOO_BIG}"),
        ("GET", "/segments/0"),
        ("POST", f"/segments/{TOO_BIG}/delete"),
        ("POST", f"/contacts/{TOO_BIG}/forget"),
        ("POST", f"/server/queue/{TOO_BIG}/retry"),
    ],
)
async def test_out_of_range_ids_get_the_404_page(users: Users, method: str, url: str) -> None:
    owner = await users.login("owner")
    if method == "GET":
        response = await owner.get(url)
    else:
        response = await owner.post(url)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "there is no such page" in response.text


async def test_dashboard_errors_are_html_pages(users: Users) -> None:
    owner = await users.login("owner")
    repeated = await owner.client.post(
        "/settings/users/role",
        content=f"_csrf={owner.csrf}&email=a@shop.test&email=b@shop.test&role=viewer",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code in (400, 422), repeated.text
    assert repeated.headers["content-type"].startswith("text/html")
    assert 'class="notice error"' in repeated.text and "<h1>" in repeated.text
    bad_cursor = await owner.get("/campaigns?after=abc")
    assert bad_cursor.status_code in (400, 422)
    assert bad_cursor.headers["content-type"].startswith("text/html")
    unknown_key = await owner.post("/settings/keys/nope/revoke")
    assert unknown_key.status_code == 404
    assert unknown_key.headers["content-type"].startswith("text/html")
    assert "no API key" in unknown_key.text


async def test_litestar_and_unexpected_errors_are_pages_and_a_logged_traceback(
    users: Users, caplog: pytest.LogCaptureFixture
) -> None:
    """Routes mounted for this test only, behind the real guard: Litestar's own errors and
    an unexpected one become HTML pages; the traceback goes to the log, not the page."""

    @get("/settings/me/boom", **allow("session"))
    async def boom() -> None:
        raise RuntimeError("the disk caught fire")

    @get("/settings/me/typed", **allow("session"))
    async def typed(n: int) -> str:
        return str(n)

    @get("/settings/me/gone", **allow("session"))
    async def gone() -> None:
        raise NotFoundException("that page went away")

    app = create_app(users.services, extra_routes=[boom, typed, gone])
    email = await users.add("viewer")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="https://testserver",
    ) as client:
        assert (await log_in(client, email)).status_code == 303
        with caplog.at_level(logging.ERROR):
            response = await client.get("/settings/me/boom?secret=token123")
        bad_type = await client.get("/settings/me/typed?n=abc")
        went = await client.get("/settings/me/gone")
    assert bad_type.status_code == 400 and bad_type.headers["content-type"].startswith("text/html")
    assert "n: " in bad_type.text and 'class="notice error"' in bad_type.text
    assert went.status_code == 404 and "that page went away" in went.text
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text and "fire" not in response.text
    logged = [r for r in caplog.records if "/settings/me/boom" in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "token123" not in caplog.text


# Every dashboard route (path template) and its access area. A new route fails the test
# below until it is listed here: deciding who may use it is part of adding it.
ROUTE_AREAS: dict[str, str] = {
    "/": "marketing",
    "/campaigns": "marketing",
    "/campaigns/audience-count": "marketing",
    "/campaigns/new": "marketing",
    "/campaigns/{campaign_id:int}": "marketing",
    "/campaigns/{campaign_id:int}/cancel": "marketing",
    "/campaigns/{campaign_id:int}/pause": "marketing",
    "/campaigns/{campaign_id:int}/progress": "marketing",
    "/campaigns/{campaign_id:int}/resume": "marketing",
    "/campaigns/{campaign_id:int}/send": "marketing",
    "/contacts": "marketing",
    "/contacts/export": "marketing",
    "/contacts/import": "marketing",
    "/contacts/import/{job_id:str}": "marketing",
    "/contacts/new": "marketing",
    "/contacts/{contact_id:int}": "marketing",
    "/contacts/{contact_id:int}/data.json": "marketing",
    "/contacts/{contact_id:int}/edit": "marketing",
    "/contacts/{contact_id:int}/forget": "marketing",
    "/contacts/{contact_id:int}/lists": "marketing",
    "/contacts/{contact_id:int}/lists/{list_id:int}/remove": "marketing",
    "/integrations/{name:str}/remove": "settings",
    "/lists": "marketing",
    "/lists/{list_id:int}": "marketing",
    "/lists/{list_id:int}/count": "marketing",
    "/lists/{list_id:int}/delete": "marketing",
    "/lists/{list_id:int}/members": "marketing",
    "/lists/{list_id:int}/members/{contact_id:int}/remove": "marketing",
    "/logout": "session",
    "/segments": "marketing",
    "/segments/new": "marketing",
    "/segments/preview": "marketing",
    "/segments/{segment_id:int}": "marketing",
    "/segments/{segment_id:int}/count": "marketing",
    "/segments/{segment_id:int}/delete": "marketing",
    "/server/accounts": "server",
    "/server/accounts/{address:str}/password": "server",
    "/server/accounts/{address:str}/remove": "server",
    "/server/aliases": "server",
    "/server/aliases/remove": "server",
    "/server/domains": "server",
    "/server/domains/{name:str}": "server",
    "/server/domains/{name:str}/check": "server",
    "/server/domains/{name:str}/remove": "server",
    "/server/queue": "server",
    "/server/queue/{message_id:int}": "server",
    "/server/queue/{message_id:int}/drop": "server",
    "/server/queue/{message_id:int}/retry": "server",
    "/settings": "settings",
    "/settings/keys": "settings",
    "/settings/keys/{name:str}/revoke": "settings",
    "/settings/me": "session",
    "/settings/me/password": "session",
    "/settings/users": "settings",
    "/settings/users/remove": "settings",
    "/settings/users/role": "settings",
    "/shop/orders": "marketing",
    "/shop/orders/{order_id:int}": "marketing",
    "/shop/products": "marketing",
    "/shop/products/{product_id:int}": "marketing",
    "/suppression": "marketing",
    "/suppression/remove": "marketing",
    "/templates": "marketing",
    "/templates/new": "marketing",
    "/templates/{template_id:int}": "marketing",
    "/templates/{template_id:int}/delete": "marketing",
    "/templates/{template_id:int}/edit": "marketing",
    "/templates/{template_id:int}/preview": "marketing",
    "/templates/{template_id:int}/test": "marketing",
    "/tracker": "marketing",
    "/tracker/{name:str}/remove": "marketing",
}
# Paths whose handlers differ: (path, handler name) -> area.
HANDLER_AREAS = {
    ("/integrations", "integrations_page"): "marketing",  # every role reads
    ("/integrations", "add_shop"): "settings",  # the shop's secret is the owner's
}


def _expected_area(path: str, handler: str) -> str | None:
    return HANDLER_AREAS.get((path, handler), ROUTE_AREAS.get(path))


def test_every_dashboard_route_has_its_expected_area(users: Users) -> None:
    """Pins each route's area: a server route given ``allow("marketing")`` fails here."""
    wrong = []
    for route in users.app.routes:
        for handler in getattr(route, "route_handlers", []):
            area = handler.opt.get("dashboard_area")
            if area is None:
                continue
            expected = _expected_area(route.path, handler.handler_name)
            if area != expected:
                wrong.append((route.path, handler.handler_name, area, expected))
    assert wrong == []
