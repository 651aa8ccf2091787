"""Fixtures of the tracker tests: the Litestar app over a test database, an httpx client
speaking ASGI to it, a controllable clock, and a registered storefront."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar

from courriel.integrations.tracker import TrackerSite, add_site
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.web import tracker as tracker_web
from courriel.web.app import WebServices, create_app

SHOP = "https://shop.example"
CLIENT_IP = "203.0.113.5"


@dataclass
class FakeClock:
    """The injected clock: time moves only when a test says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class NoMail:
    """The Mailer port for routes that must never send mail: any call fails the test."""

    async def send(
        self, *, sender: str, recipient: str, message: bytes, transactional: bool = True
    ) -> None:
        raise AssertionError(f"the tracker sent mail to {recipient}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(database: Database, clock: FakeClock) -> Litestar:
    services = WebServices(
        db=database,
        public_url="https://mail.shop.example",
        links=LinkSigner(b"tracker-test-key" * 2, clock=clock),
        mailer=NoMail(),
        clock=clock,
    )
    return create_app(services, extra_routes=tracker_web.ROUTES)


def make_client(app: Litestar, ip: str = CLIENT_IP) -> httpx.AsyncClient:
    """An HTTP client whose requests come from ``ip``."""
    transport = httpx.ASGITransport(app=cast(Any, app), client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://mail.shop.example")


@pytest.fixture
def client_from(app: Litestar) -> Callable[[str], httpx.AsyncClient]:
    """Make clients with other addresses (rate limits are per client address)."""
    return lambda ip: make_client(app, ip)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as http:
        yield http


@pytest.fixture
async def site(database: Database, clock: FakeClock) -> TrackerSite:
    """A storefront that accepts calls from https://shop.example only."""
    return await add_site(database, "shop", origins=(SHOP,), now=clock())
