"""Fixtures of the dashboard's HTTP tests: logged-in clients of each role.

``users.login("marketer")`` makes a dashboard user of that role (a cheap argon2id
hasher, so tests stay fast) and returns a :class:`Browser`: an httpx client over the app
that has logged in through ``POST /login`` like a browser (cookies kept), plus the CSRF
token of its session, read from the page as a browser's form would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from courriel.mailstore.passwords import Passwords
from courriel.web.app import WebServices, create_app
from courriel.web.dashboard.admins import create_admin

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def cheap_passwords() -> Passwords:
    """argon2id with tiny costs: the same code path, milliseconds per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


@pytest.fixture
def services(services: WebServices) -> WebServices:
    """The web services with a cheap password hasher."""
    return replace(services, passwords=cheap_passwords())


@dataclass
class Browser:
    """A logged-in client and its session's CSRF token."""

    client: httpx.AsyncClient
    csrf: str
    email: str

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(
        self, url: str, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A form POST with the session's CSRF token (like a page's form)."""
        return await self.client.post(url, data={"_csrf": self.csrf, **(data or {})}, **kwargs)


def login_csrf(html: str) -> str:
    """The ``_csrf`` hidden field of a page's first form."""
    found = _CSRF.search(html)
    assert found, "no _csrf field in the page"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """GET /login then POST it, as a browser does (returns the POST's response)."""
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={"email": email, "password": password, "_csrf": login_csrf(form.text), "next": "/"},
    )


class Users:
    """Makes dashboard users and logged-in browsers over one app."""

    def __init__(self, services: WebServices) -> None:
        self.services = services
        self.app = create_app(services)
        self.clients: list[httpx.AsyncClient] = []
        self.count = 0

    def client(self) -> httpx.AsyncClient:
        """A new anonymous client (own cookie jar)."""
        transport = httpx.ASGITransport(app=self.app)
        client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        self.clients.append(client)
        return client

    async def add(self, role: str, email: str | None = None) -> str:
        self.count += 1
        address = email or f"{role}{self.count}@shop.test"
        await create_admin(
            self.services.db,
            self.services.passwords,
            email=address,
            password=PASSWORD,
            role=role,
            now=self.services.clock(),
        )
        return address

    async def login(self, role: str = "owner") -> Browser:
        email = await self.add(role)
        client = self.client()
        response = await log_in(client, email)
        assert response.status_code == 303, response.text
        page = await client.get("/settings/me")
        csrf = login_csrf(page.text)
        return Browser(client=client, csrf=csrf, email=email)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def users(services: WebServices) -> AsyncIterator[Users]:
    made = Users(services)
    try:
        yield made
    finally:
        await made.close()
