"""Dashboard access: login, sessions, CSRF, roles, rate limiting, logout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.integration.web.dashboard.conftest import PASSWORD, Users, log_in, login_csrf


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
