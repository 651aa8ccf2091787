"""Fixtures of the HTTP tests: the app over a fresh database, an httpx client, API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from courriel.marketing.apikeys import create_key
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app


@dataclass
class Clock:
    """A settable clock (the app reads it through WebServices.clock)."""

    now: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def services(database: Database, clock: Clock, mailer: RecordingMailer) -> WebServices:
    return WebServices(
        db=database,
        public_url="https://mail.shop.test",
        links=LinkSigner(b"k" * 32, clock=clock),
        mailer=mailer,
        clock=clock,
    )


@pytest.fixture
async def client(services: WebServices) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


MakeKey = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def make_key(database: Database) -> MakeKey:
    """Make a key with the given scopes; returns the Authorization header for it."""
    counter = iter(range(1, 1000))

    async def make(*scopes: str, name: str | None = None) -> dict[str, str]:
        key_name = name or f"test-{next(counter)}"
        _, secret = await create_key(database, key_name, scopes or ("*",))
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
async def auth(make_key: MakeKey) -> dict[str, str]:
    """Headers with a key granting every scope."""
    return await make_key("*", name="all")


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """Check an RFC 9457 problem document; returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body
